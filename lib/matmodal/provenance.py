"""Provenance records attached to every artifact (dataset, run, table)."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matmodal
from matmodal.config import Settings


def code_version() -> str:
    """Package version plus the git commit (with ``-dirty`` when uncommitted changes exist)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"], cwd=root,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"{matmodal.__version__}+{commit}"


def base(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The common provenance fields; never includes credentials."""
    return {
        "code_version": code_version(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "profile": settings.profile.value,
        "seed": settings.seed,
        "mirror_dir": str(settings.mirror_dir) if settings.mirror_dir else None,
        **extra,
    }
