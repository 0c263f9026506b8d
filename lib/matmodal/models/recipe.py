"""Training recipes per modality and the costa2025 study's run list (AutoMM grid + baselines + fusion).

A recipe is a mapping of :class:`~matmodal.models.run_spec.RunConfig` fields, one per modality,
set in ``notebooks/profiles.yaml`` (``04_training.recipe``), e.g.::

    recipe:
      tabular: {epochs: 60, learning_rate: 0.003, tabular_layers: 3, tabular_width: 256, dropout: 0.2, patience: 15}
      text:    {epochs: 15, learning_rate: 0.001, patience: 5}
      image:   {epochs: 10, learning_rate: 0.001, patience: 5}

A run with several modalities takes the tabular values, then the text ones, then the image ones
(the heavier tower's epochs and learning rate win; the tabular MLP's shape is kept).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from matmodal.models.baselines import STRONG_FEATURES
from matmodal.models.run_spec import (
    COMBINATIONS,
    MODALITIES,
    RunConfig,
    combination_name,
    parse_combination,
)

log = logging.getLogger(__name__)

RECIPE_KEYS = ("epochs", "learning_rate", "tabular_layers", "tabular_width", "dropout", "patience", "batch_size",
               "image_size", "max_text_len", "validation_fraction")
_CONFIG_FIELDS = {f.name for f in fields(RunConfig)}


def check_recipe(recipe: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise on an unknown modality or recipe key (one line naming it)."""
    for modality, values in recipe.items():
        if modality not in MODALITIES:
            raise ValueError(f"recipe: unknown modality {modality!r} (known: {', '.join(MODALITIES)})")
        unknown = sorted(set(values) - set(RECIPE_KEYS))
        if unknown:
            raise ValueError(f"recipe.{modality}: unknown key(s) {unknown} (known: {', '.join(RECIPE_KEYS)})")


def recipe_for(modalities: Sequence[str], recipe: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The RunConfig fields of a run on ``modalities`` (tabular, then text, then image values)."""
    check_recipe(recipe)
    chosen = parse_combination(modalities)
    merged: dict[str, Any] = {}
    for modality in ("tabular", "text", "image"):
        if modality in chosen:
            merged.update(recipe.get(modality, {}))
    return merged


def study_configs(
    dataset: str, targets: Sequence[str], seeds: Sequence[int], *, base: Mapping[str, Any],
    combinations: Sequence[str | Sequence[str]] = COMBINATIONS, recipe: Mapping[str, Mapping[str, Any]] | None = None,
    available_features: Sequence[str] = (), strong_features: Sequence[str] = STRONG_FEATURES,
    control_features: Sequence[str] = ("magpie",), fusion: Sequence[str] = (),
    fusion_combinations: Sequence[str | Sequence[str]] = (), fusion_recipe: Mapping[str, Any] | None = None,
    log_targets: Sequence[str] = (), automm_log_targets: Sequence[str] = (), ensembles: Sequence[str] = (),
) -> list[RunConfig]:
    """Seed by seed, per target: ``mean``; ``gbm`` on the tabular features (``base["features"]``);
    ``gbm`` on ``strong_features`` (CHGNet + Magpie) and on ``control_features`` (no CHGNet) when
    built and different; the fusion families; then the AutoMM combinations with their recipe.
    ``log_targets`` get ``target_transform="log10"`` in the baselines and fusion runs,
    ``automm_log_targets`` in the AutoMM runs (AutoMM standardises labels itself; on validation
    log10 did not help it, see docs/training.md). ``ensembles`` (``"gbm:tabular|automm:tabular+text"``,
    :mod:`matmodal.models.ensemble`) come last, after their members."""
    base = {k: v for k, v in base.items() if k in _CONFIG_FIELDS}
    features = tuple(base.get("features", ()))
    extra_gbm = []
    for chosen in (tuple(strong_features), tuple(control_features)):
        missing = [f for f in chosen if f not in available_features]
        if not chosen or set(chosen) == set(features or available_features) or chosen in extra_gbm:
            continue
        if missing:
            log.warning("no GBM row on %s: featuriser(s) %s not built in %s", "+".join(chosen), missing, dataset)
            continue
        extra_gbm.append(chosen)
    configs: list[RunConfig] = []
    for seed in seeds:
        for target in targets:
            shared = {**base, "seed": seed, "target_transform": "log10" if target in log_targets else "none"}
            configs.append(RunConfig(dataset, target, ("tabular",), model="mean", **shared))
            configs.append(RunConfig(dataset, target, ("tabular",), model="gbm", **shared))
            configs += [RunConfig(dataset, target, ("tabular",), model="gbm", **{**shared, "features": f})
                        for f in extra_gbm]
            configs += [RunConfig(dataset, target, combination_name(c), model=family,
                                  **{**shared, **(fusion_recipe or {})})
                        for family in fusion for c in fusion_combinations]
            automm = {**shared, "target_transform": "log10" if target in automm_log_targets else "none"}
            configs += [RunConfig(dataset, target, parse_combination(c), **{**automm, **recipe_for(c, recipe or {})})
                        for c in combinations]
            configs += [RunConfig(dataset, target, ("tabular",), model="ensemble",
                                  **{**shared, "extra": (("ensemble.members", spec),)}) for spec in ensembles]
    return configs
