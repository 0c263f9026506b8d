"""Where every artefact lives: the one place that builds output paths, keyed by profile.

::

    <output_dir>/datasets/<profile>/<dataset>/      table.parquet, manifest, provenance, assets
    <output_dir>/runs/<profile>/<dataset>/<run_id>/  one costa2025 grid run (config, result, predictions)
    <output_dir>/massa/<profile>/                   massa2024 protocol scores + provenance (notebook 07)
    <output_dir>/notebooks/<profile>/               executed notebooks (.ipynb + .html, run_all.sh)
    <figures_root>/../rendered_notebooks/<profile>/  the same HTML, committed for reviewers
    <figures_root>/<study>/<profile>/<dataset>/     tables and figures of one study on one dataset
    <figures_root>/<study>/<profile>/<dataset>_smoke/  the same for a smoke grid (1 seed, <= 1 epoch)
    <figures_root>/<study>/<profile>/               a study's cross-dataset tables (massa2024)
    <figures_root>/<study>/                         profile-independent figures (the paper's own numbers)

``figures_root`` is ``Settings.figures_dir`` (``paper_figures`` in the repository: the committed
``quick`` and ``full`` tables live there and are regenerated in place by ``run_all.sh``).
Notebooks and the CLI ask a :class:`Layout` and never join paths themselves.

A leaf module: it imports nothing of matmodal (``Settings.layout`` builds one from the settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUDIES = ("costa2025", "massa2024")
SMOKE_SUFFIX = "_smoke"
# profiles smoke-sized by definition: their folder already says so, their datasets get no suffix
SMOKE_PROFILES = ("quick",)


@dataclass(frozen=True)
class Layout:
    """Artefact paths of one profile under one output folder and one figures folder."""

    output_dir: Path
    figures_root: Path
    profile: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        object.__setattr__(self, "figures_root", Path(self.figures_root))
        object.__setattr__(self, "profile", str(getattr(self.profile, "value", self.profile)))
        if not self.profile or "/" in self.profile:
            raise ValueError(f"profile {self.profile!r} cannot name a folder")

    @classmethod
    def from_settings(cls, settings: Any) -> Layout:
        """The layout of a :class:`matmodal.config.Settings` (its output/figures dirs and profile)."""
        return cls(settings.output_dir, settings.figures_dir, settings.profile)

    def dataset_dir(self, name: str) -> Path:
        """Folder of one aligned dataset: ``<output>/datasets/<profile>/<name>``."""
        return self.output_dir / "datasets" / self.profile / str(name)

    @property
    def runs_root(self) -> Path:
        """Root of this profile's costa2025 grid: ``<output>/runs/<profile>`` (one folder per dataset)."""
        return self.output_dir / "runs" / self.profile

    def runs_dir(self, dataset: str) -> Path:
        """Runs of one dataset: ``<output>/runs/<profile>/<dataset>``."""
        return self.runs_root / str(dataset)

    @property
    def massa_scores_dir(self) -> Path:
        """massa2024 protocol scores and their provenance: ``<output>/massa/<profile>``."""
        return self.output_dir / "massa" / self.profile

    @property
    def rendered_notebooks_dir(self) -> Path:
        """Executed notebooks of ``run_all.sh``: ``<output>/notebooks/<profile>``."""
        return self.output_dir / "notebooks" / self.profile

    @property
    def published_notebooks_dir(self) -> Path:
        """Rendered HTML for reviewers, beside the figures: ``<figures_root>/../rendered_notebooks/<profile>``."""
        return self.figures_root.parent / "rendered_notebooks" / self.profile

    def study_dir(self, study: str) -> Path:
        """Profile-independent figures of a study (e.g. the paper's own heat map)."""
        if study not in STUDIES:
            raise ValueError(f"unknown study {study!r} (known: {', '.join(STUDIES)})")
        return self.figures_root / study

    def figures_dir(self, study: str, dataset: str | None = None, *, smoke: bool = False) -> Path:
        """Tables and figures: ``<figures_root>/<study>/<profile>[/<dataset>]``; ``smoke``: a grid
        that only shows the pipeline runs (one seed, at most one epoch) goes to ``<dataset>_smoke``
        so it is never read as a result (not in :data:`SMOKE_PROFILES`, whose name says it)."""
        folder = self.study_dir(study) / self.profile
        if not dataset:
            return folder
        suffix = SMOKE_SUFFIX if smoke and self.profile not in SMOKE_PROFILES else ""
        return folder / f"{dataset}{suffix}"

    def describe(self) -> dict[str, str]:
        """The main folders, for a notebook's first output and for provenance."""
        return {"profile": self.profile, "datasets": str(self.output_dir / "datasets" / self.profile),
                "runs": str(self.runs_root), "massa_scores": str(self.massa_scores_dir),
                "figures": str(self.figures_root), "notebooks": str(self.rendered_notebooks_dir),
                "published_notebooks": str(self.published_notebooks_dir)}
