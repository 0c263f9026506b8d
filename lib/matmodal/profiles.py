"""The typed schema of ``notebooks/profiles.yaml``: the single source of profile values.

``profiles.yaml`` has one section per :class:`~matmodal.config.Profile` and, inside it, one mapping
per notebook stem. Each mapping is validated against that notebook's model below: an unknown
profile, notebook or parameter, or a value of the wrong type, fails with one line naming it.
``mirror``, ``output_dir``, ``seed`` and ``profile`` are passed to every notebook by the runner
and must not be repeated here. Fields left out keep the notebook's own default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from matmodal.config import Profile
from matmodal.datasets.registry import DatasetName
from matmodal.schema import TEXT_LEVELS

COMMON = ("mirror", "output_dir", "seed", "profile")  # passed to every notebook by the runner


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    def values(self) -> dict[str, Any]:
        """Only the parameters the YAML set (papermill injects these)."""
        return self.model_dump(mode="json", exclude_unset=True)


class DataUnderstanding(_Section):
    source: Literal["alexandria", "mp_elastic", "mp_summary"] | None = None
    sample_size: int | None = None


class DatasetConstruction(_Section):
    datasets: list[DatasetName] | None = None
    alexandria_sample: int | None = None  # 0: every entry
    mp_summary_sample: int | None = None  # 0: every row (34,738 on the mirror)
    robocrys_limit: int | None = None  # 0: every structure
    image_size: int | None = None  # px; 0: no images
    featurisers: list[Literal["potnet", "chgnet", "magpie"]] | None = None
    n_jobs: int | None = None
    cache_dir: str | None = None


class EcdSlicing(_Section):
    source: str | None = None
    plane: list[int] | None = None
    supercell: int | None = None
    grid: int | None = None  # points per axis
    regrid_method: Literal["pyrho", "fourier", "none"] | None = None
    normalisation: Literal["paper", "clip", "symlog"] | None = None
    pixels: int | None = None  # px
    build_dataset: bool | None = None
    any_lattice: bool | None = None
    robocrys: bool | None = None
    density_datasets: list[DatasetName] | None = None  # real-density massa datasets
    density_limit: int | None = None  # 0: every density
    density_robocrys: bool | None = None
    dft: bool | None = None  # compute a GPAW density and compare it with MP's (dft extra)
    dft_material: str | None = None
    dft_cutoff: float | None = None  # eV
    dft_kpoint_density: float | None = None  # per Å⁻¹
    grow_fcc: int | None = None  # GPAW densities for N FCC binaries without an MP density (0: off)
    grow_workers: int | None = None  # Ray workers (0: serial)
    cache_dir: str | None = None


class Training(_Section):
    datasets: list[str] | None = None
    targets: list[str] | None = None
    combinations: list[str] | None = None
    seeds: list[int] | None = None
    epochs: int | None = None
    max_rows: int | None = None  # 0: every labelled row
    image_size: int | None = None  # px
    text_column: Literal["text_composition", "text_robocrys"] | None = None
    tabular_model: Literal["numerical_mlp", "ft_transformer"] | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    parallel: int | None = None
    torch_threads: int | None = None
    keep_models: Literal["all", "first_seed", "none"] | None = None
    runs_dir: str | None = None
    features: list[Literal["potnet", "chgnet", "magpie"]] | None = None  # what tabular and GBM see
    strong_features: list[Literal["potnet", "chgnet", "magpie"]] | None = None  # the always-present GBM row
    control_features: list[Literal["potnet", "chgnet", "magpie"]] | None = None  # a GBM row without CHGNet
    recipe: dict[Literal["tabular", "text", "image"], dict[str, float | int | str]] | None = None  # per modality
    log_targets: list[str] | None = None  # fitted as log10, back-transformed for metrics
    fusion: list[Literal["fusion_gbm", "fusion_mlp", "fusion_late"]] | None = None
    fusion_combinations: list[str] | None = None
    fusion_recipe: dict[str, float | int | str] | None = None
    ensembles: list[str] | None = None  # "family:modalities|family:modalities" (mean of stored runs)


class Evaluation(_Section):
    datasets: list[str] | None = None
    figures_dir: str | None = None
    runs_dir: str | None = None


class MassaTraining(_Section):
    cache_dir: str | None = None
    datasets: list[str] | None = None
    targets: dict[str, list[str]] | None = None
    families: list[Literal["clip", "stacked", "stacked_random", "clip_towers", "clip_towers_unaligned",
                           "clip_towers_random"]] | None = None  # matmodal.protocols.FAMILIES
    towers: Literal["finetune", "frozen"] | None = None
    tower_clip: dict[str, int | float] | None = None  # TowerClipSpec fields
    feature_cache: str | None = None
    text_levels: list[Literal[TEXT_LEVELS]] | None = None
    clip_text_level: Literal[TEXT_LEVELS] | None = None
    formula_text: Literal["symbols", "words"] | None = None  # matmodal.protocols.FORMULA_TEXTS
    log_target: bool | None = None  # fitted as log10, back-transformed for metrics
    readout: dict[str, float | str | bool] | None = None  # dropout, frozen_features, flip_views
    folds: int | None = None
    runs: int | None = None
    head_epochs: int | None = None
    full_epochs: int | None = None
    batch_size: int | None = None
    lr_head: float | None = None
    lr_full: float | None = None
    patience: int | None = None
    image_size: int | None = None  # px
    small: bool | None = None
    max_text_length: int | None = None  # tokens
    text_layers: int | None = None
    max_rows: int | None = None
    robocrys_limit: int | None = None
    trials: list[str] | None = None
    device: str | None = None
    torch_threads: int | None = None


class MassaEvaluation(_Section):
    figures_dir: str | None = None
    datasets: list[str] | None = None
    stacked_dataset: str | None = None
    grid_dir: str | None = None


NOTEBOOKS: dict[str, type[_Section]] = {
    "01_data_understanding": DataUnderstanding,
    "02_dataset_construction": DatasetConstruction,
    "03_ecd_slicing": EcdSlicing,
    "04_training": Training,
    "05_evaluation": Evaluation,
    "06_heatmaps": Evaluation,
    "07_massa_training": MassaTraining,
    "08_massa_evaluation": MassaEvaluation,
}


class ProfileError(ValueError):
    """profiles.yaml (or a --set override) names something unknown or has a wrong type."""


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']} (got {first.get('input')!r})"


def validate_section(profile: str, stem: str, values: dict[str, Any] | None, origin: str = "profiles.yaml") -> dict[str, Any]:
    """The validated parameters of one notebook under one profile (only those set)."""
    if stem not in NOTEBOOKS:
        raise ProfileError(f"{origin}: {profile}.{stem}: unknown notebook (known: {', '.join(NOTEBOOKS)})")
    shared = sorted(set(values or {}) & set(COMMON))
    if shared:
        raise ProfileError(f"{origin}: {profile}.{stem}: {', '.join(shared)} is passed by the runner; remove it")
    try:
        return NOTEBOOKS[stem].model_validate(values or {}).values()
    except ValidationError as error:
        raise ProfileError(f"{origin}: {profile}.{stem}.{_first_error(error)}") from None


def load_profiles(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every profile's validated sections: ``{profile: {notebook stem: parameters}}``."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping of profiles, got {type(raw).__name__}")
    known = [p.value for p in Profile]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for profile, sections in raw.items():
        if profile not in known:
            raise ProfileError(f"{path}: unknown profile {profile!r} (known: {', '.join(known)})")
        out[profile] = {stem: validate_section(profile, stem, values, str(path))
                        for stem, values in (sections or {}).items()}
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"04_training.max_rows=40"`` -> ``("04_training", "max_rows", 40)`` (value read as YAML)."""
    target, sep, value = text.partition("=")
    stem, dot, key = target.partition(".")
    if not (sep and dot and stem and key):
        raise ProfileError(f"--set {text!r}: expected NOTEBOOK.PARAMETER=VALUE, e.g. 04_training.max_rows=40")
    return stem, key, yaml.safe_load(value)


def with_overrides(profile: str, sections: dict[str, dict[str, Any]], overrides: list[str]) -> dict[str, dict[str, Any]]:
    """``sections`` with ``--set`` overrides applied and validated again."""
    merged = {stem: dict(values) for stem, values in sections.items()}
    for text in overrides:
        stem, key, value = parse_override(text)
        merged.setdefault(stem, {})[key] = value
        merged[stem] = validate_section(profile, stem, merged[stem], f"--set {text}")
    return merged
