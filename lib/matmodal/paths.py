"""File names derived from record ids, safely."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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


def read_json_object(path: Path, unreadable: str = "treated as missing") -> dict[str, Any] | None:
    """The JSON object stored at ``path``, or None when the file is absent.

    A file that is truncated, not JSON or not an object (a process killed while writing it)
    is also None, with one warning naming the file, the problem and ``unreadable`` (what the
    caller does about it, e.g. "an unfinished run: it is redone").
    """
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("%s is unreadable (%s: %s); %s", path, type(error).__name__, error, unreadable)
        return None
    if not isinstance(data, dict):
        log.warning("%s holds a %s, not an object; %s", path, type(data).__name__, unreadable)
        return None
    return data


def machine_neutral(text: str, project: Path, home: Path | None = None) -> str:
    """``text`` with the project folder written as ``.`` and the home folder as ``~``: outputs
    that print a resolved path (a dataset folder, a checkpoint in the cache) say nothing of the
    machine or user that ran them."""
    text = text.replace(str(project.resolve()), ".")
    home = home or Path.home()
    return text.replace(str(home.resolve()), "~") if str(home.resolve()) != "/" else text
