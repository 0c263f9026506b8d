"""One typed settings object for the whole project.

Machine-level paths and knobs live here and can be set from the environment with the
``MATMODAL_`` prefix (e.g. ``MATMODAL_MIRROR_DIR=../shared/mirror``), from the CLI
(``matmodal --mirror DIR ...``) or from a notebook through :func:`matmodal.setup`.
Profile-dependent values (epochs, image sizes, seeds, ...) live in ``notebooks/profiles.yaml``
alone (validated by :mod:`matmodal.profiles`); artefact paths come from :attr:`Settings.layout`.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matmodal.layout import Layout


class Profile(StrEnum):
    """Run profiles (see DESIGN.md): how big the job is."""

    quick = "quick"  # real mirror data, every step, small images/few epochs, one seed (CPU)
    full = "full"  # every combination x target x >=3 seeds, full sizes (GPU)
    paper = "paper"  # full + the papers' pretrained hub backbones


def _default_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "matmodal"


class Settings(BaseSettings):
    """Project settings; environment variables ``MATMODAL_<FIELD>`` override the defaults."""

    model_config = SettingsConfigDict(env_prefix="MATMODAL_", extra="ignore")

    mirror_dir: Path | None = Field(
        default=None,
        description="local mirror of the remote sources (layout: see ../shared/mirror/README.md); "
        "when set, no network access is attempted",
    )
    cache_dir: Path = Field(default_factory=_default_home, description="downloads and caches")
    output_dir: Path = Field(default=Path("outputs"), description="datasets, runs, tables")
    figures_dir: Path = Field(default=Path("paper_figures"), description="published figures")
    profile: Profile = Profile.quick
    seed: int = 0
    n_jobs: int = Field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def layout(self) -> Layout:
        """Where this profile's artefacts live (datasets, runs, scores, figures, notebooks)."""
        return Layout.from_settings(self)

    def dataset_dir(self, name: str) -> Path:
        """Folder of one aligned dataset (table, manifest, assets): ``Layout.dataset_dir``."""
        return self.layout.dataset_dir(name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
