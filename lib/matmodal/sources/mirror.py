"""The local mirror: a directory that stands in for the network.

Layout (the same as ``../shared/mirror``)::

    <mirror>/alexandria/*.json.bz2            Alexandria PBE 3D dump files
    <mirror>/materials_project/*.json         Materials Project extracts
    <mirror>/charge_density/...               volumetric data (CHGCAR, AECCAR, hdf5, npz)

Set it with ``MATMODAL_MIRROR_DIR`` or ``matmodal --mirror DIR``.
"""

from __future__ import annotations

from pathlib import Path

from matmodal.config import Settings, get_settings


class MissingDataError(FileNotFoundError):
    """Data that is neither in the mirror nor reachable: says what and how to provide it."""


def mirror_root(settings: Settings | None = None) -> Path | None:
    """The configured mirror directory, or ``None`` for online mode."""
    settings = settings or get_settings()
    return settings.mirror_dir


def mirror_file(section: str, name: str, settings: Settings | None = None) -> Path:
    """``<mirror>/<section>/<name>``; raises :class:`MissingDataError` when absent."""
    root = mirror_root(settings)
    if root is None:
        raise MissingDataError(
            f"{section}/{name} was asked for from the mirror, but no mirror is configured: "
            "set MATMODAL_MIRROR_DIR or pass --mirror DIR"
        )
    path = root / section / name
    if not path.exists():
        raise MissingDataError(
            f"{name} is not in the mirror ({path} does not exist); put the file there "
            f"(layout: <mirror>/{section}/{name}) or unset the mirror to download it"
        )
    return path


def offline_hint(what: str, env: str | None = None) -> str:
    """The standard advice appended to network errors."""
    extra = f", or set {env}" if env else ""
    return (
        f"could not reach the network to fetch {what}. Provide a local mirror with "
        f"MATMODAL_MIRROR_DIR=<dir> (or --mirror <dir>) holding the file{extra}; "
        "the expected layout is in ../shared/mirror/README.md"
    )
