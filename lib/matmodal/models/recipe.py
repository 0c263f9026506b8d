"""Training recipes per modality and the costa2025 study's run list (AutoMM grid + baselines + fusion).

A recipe is a mapping of :class:`~matmodal.models.run_spec.RunConfig` fields, one per modality,
set in ``notebooks/profiles.yaml`` (``04_training.recipe``), e.g.::

    recipe:
      tabular: {epochs: 60, learning_rate: 0.003, tabular_layers: 3, tabular_width: 256, dropout: 0.2, patience: 15}
      text:    {name: frozen, towers: frozen, text_pooling: mean, epochs: 30, learning_rate: 0.003, patience: 30}
      image:   {name: frozen, towers: frozen, image_size: 64, epochs: 30, learning_rate: 0.003, patience: 30}

A run with several modalities takes the tabular values, then the text ones, then the image ones
(the heavier tower's epochs and learning rate win; the tabular MLP's shape is kept).

Besides :class:`RunConfig` fields a recipe may set AutoGluon MultiModal 1.6.3 optimiser options
(:data:`AUTOMM_OPTIONS`, passed to the predictor as ``optim.*`` hyperparameters through
``RunConfig.extra``), e.g. ``lr_choice: two_stages`` with ``lr_mult: 30``: the pretrained tower
trains at ``learning_rate`` and every layer AutoMM treats as new (the fusion MLP, its head and
the ``numerical_mlp`` tabular tower) at ``learning_rate × lr_mult``. ``name`` (letters and
digits) names the recipe in the run id and the table row (``RunConfig.recipe_name``), so runs
of a new recipe sit beside the old ones instead of clashing with them.
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

AUTOMM_OPTIONS = {  # recipe key -> AutoMM hyperparameter
    "lr_choice": "optim.lr_choice",  # two_stages | layerwise_decay (AutoMM's default) | single_stage
    "lr_mult": "optim.lr_mult",  # two_stages: new layers (fusion, head, numerical_mlp) train at lr × lr_mult
    "lr_decay": "optim.lr_decay",  # layerwise_decay: per-layer factor
    "peft": "optim.peft",  # bit_fit | norm_fit | lora | ...: only those tower parameters train
    "top_k": "optim.top_k",  # checkpoints kept (and averaged, see top_k_average_method)
    "top_k_average_method": "optim.top_k_average_method",  # best | uniform_soup | greedy_soup
    "warmup_steps": "optim.warmup_steps",  # fraction of the steps
    "text_pooling": "model.hf_text.pooling_mode",  # cls (AutoMM's default) | mean (how MiniLM was trained)
    "tower_pca": "matmodal.tower_pca",  # towers: cached: PCA components per tower vector, fit on training rows
}
# ``towers: frozen``: AutoMM's LoRA path with a layer filter that matches no layer, so no adapter is
# added and (with ``lr_choice: layerwise_decay``, AutoMM's default) only the layers it treats as new
# train (fusion MLP, head, numerical_mlp); the pretrained towers run forward only (no backward pass).
# ``towers: cached``: the same frozen towers, run once per material instead of once per epoch: their
# embeddings (:mod:`matmodal.models.embeddings`, cached on disk) enter AutoMM as numerical columns
# beside the tabular ones (:func:`matmodal.models.automm.cached_tower_inputs`).
TOWERS = {"finetune": {}, "frozen": {"optim.peft": "lora", "optim.lora.filter": ("^matmodal_frozen_tower$",),
                                     "optim.lr_choice": "layerwise_decay"},
          "cached": {"matmodal.towers": "cached"}}
RECIPE_KEYS = ("epochs", "learning_rate", "tabular_layers", "tabular_width", "dropout", "patience", "batch_size",
               "image_size", "max_text_len", "validation_fraction", "name", "towers", *AUTOMM_OPTIONS)
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
    """The RunConfig fields of a run on ``modalities`` (tabular, then text, then image values):
    ``name`` becomes ``recipe_name``, the :data:`AUTOMM_OPTIONS` become sorted ``extra`` entries."""
    check_recipe(recipe)
    chosen = parse_combination(modalities)
    merged: dict[str, Any] = {}
    for modality in ("tabular", "text", "image"):
        if modality in chosen:
            merged.update(recipe.get(modality, {}))
    options = {AUTOMM_OPTIONS[k]: merged.pop(k) for k in list(merged) if k in AUTOMM_OPTIONS}
    towers = merged.pop("towers", "finetune")
    if towers not in TOWERS:
        raise ValueError(f"recipe: towers must be one of {', '.join(TOWERS)}, got {towers!r}")
    options.update(TOWERS[towers])
    if "name" in merged:
        merged["recipe_name"] = str(merged.pop("name"))
    if options:
        merged["extra"] = tuple(sorted(options.items()))
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
