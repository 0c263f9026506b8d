"""One typed settings object for the whole project.

Every path and knob lives here and can be set from the environment with the
``MATMODAL_`` prefix (e.g. ``MATMODAL_MIRROR_DIR=../shared/mirror``), from the CLI
(``matmodal --mirror DIR ...``) or from a notebook's ``parameters`` cell.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Profile(StrEnum):
    """Run profiles (see DESIGN.md): how big the job is."""

    quick = "quick"  # real mirror data, every step, small images/few epochs, one seed (CPU)
    full = "full"  # every combination x target x >=3 seeds, full sizes (GPU)
    paper = "paper"  # full + the papers' pretrained hub backbones


class ProfileSettings(BaseModel):
    """Sizes that depend on the run profile."""

    image_size: int = Field(description="rendered image edge (px)")
    epochs: int = Field(description="training epochs per run")
    seeds: tuple[int, ...] = Field(description="random seeds of the grid")
    robocrys_limit: int | None = Field(
        description="max structures described by robocrys per dataset (None = all)"
    )


PROFILES: dict[Profile, ProfileSettings] = {
    Profile.quick: ProfileSettings(image_size=64, epochs=2, seeds=(0,), robocrys_limit=None),
    Profile.full: ProfileSettings(image_size=224, epochs=10, seeds=(0, 1, 2), robocrys_limit=None),
    Profile.paper: ProfileSettings(image_size=224, epochs=10, seeds=(0, 1, 2), robocrys_limit=None),
}


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
    def sizes(self) -> ProfileSettings:
        return PROFILES[self.profile]

    def dataset_dir(self, name: str) -> Path:
        """Folder of one aligned dataset (table, manifest, assets)."""
        return self.output_dir / "datasets" / name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
