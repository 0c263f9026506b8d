"""File names derived from record ids, safely."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 120  # characters of a file name stem; file systems allow 255 bytes


def safe_name(record_id: str, suffix: str = "") -> str:
    """A file name for ``record_id`` that cannot leave its folder.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``; leading dots are removed; a name
    longer than ``MAX_NAME_CHARS`` is cut; when anything was changed, a short hash of the
    original id is appended so two different ids never share a file (e.g. ``../x`` and ``__x``).
    """
    if not record_id:
        raise ValueError("empty record id cannot name a file")
    cleaned = _UNSAFE.sub("_", record_id).lstrip(".") or "_"
    if cleaned != record_id or len(cleaned) > MAX_NAME_CHARS:
        digest = hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        cleaned = f"{cleaned[:80]}-{digest}"
    return cleaned + suffix


def inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing any result outside ``folder``."""
    target = (folder / name).resolve()
    if folder.resolve() not in target.parents:
        raise ValueError(f"{name!r} would escape {folder}")
    return target
