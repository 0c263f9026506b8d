"""One setup call for every notebook: ``settings, layout = matmodal.setup(profile=..., ...)``.

It turns a notebook's parameters (strings, as papermill injects them) into typed
:class:`~matmodal.config.Settings` and their :class:`~matmodal.layout.Layout`, sets the offline
environment for the model hubs, and silences known library noise when :mod:`matmodal.quiet` exists.
Relative paths are resolved against the current directory (a notebook's own folder under papermill).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matmodal.config import Profile, Settings
from matmodal.layout import Layout


def _path(value: str | Path | None) -> Path | None:
    return Path(value).resolve() if value not in (None, "") else None


def setup(
    profile: str = "quick",
    mirror: str | Path | None = "",
    output_dir: str | Path = "outputs",
    *,
    figures_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
    quiet: bool = True,
) -> tuple[Settings, Layout]:
    """Typed settings and their layout. Empty ``mirror``/``cache_dir``/``figures_dir``: the defaults
    (no mirror: download; ``~/.cache/matmodal``; ``paper_figures`` beside ``output_dir``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        chosen = Profile(profile)
    except ValueError:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(p.value for p in Profile)})") from None
    output = _path(output_dir) or Path("outputs").resolve()
    fields: dict[str, Any] = {
        "mirror_dir": _path(mirror), "output_dir": output, "profile": chosen, "seed": int(seed),
        "figures_dir": _path(figures_dir) or output.parent / "paper_figures",
    }
    if _path(cache_dir):
        fields["cache_dir"] = _path(cache_dir)
    if n_jobs:
        fields["n_jobs"] = int(n_jobs)
    if quiet:
        _quiet()
    settings = Settings(**fields)
    return settings, settings.layout


def _quiet() -> None:
    try:
        from matmodal.quiet import quiet as silence  # engineer E's library-noise filters
    except ImportError:
        return
    silence()
