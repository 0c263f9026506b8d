"""massa2024 study planning: which backbones (profiles), which trainers per experiment, the
Table 2 trials, and the loop over every (dataset, target, text level) experiment (notebook 07)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from matmodal.models.torch_common import TrainConfig
from matmodal.protocols.cv import ProtocolConfig, Trainer, run_protocol
from matmodal.protocols.experiment import level_texts, prepare
from matmodal.protocols.trainers import (
    FAMILIES,
    FeatureCache,
    clip_trainer,
    mean_trainer,
    random_init,
    stacked_trainer,
    tower_clip_trainer,
)

# massa2024 Appendix Table 2: CLIP hyper-parameter trials (formation energy, ECD images) + paper scores.
TRIALS = pd.DataFrame(
    [("T#1", 16, 1.5e-4, 17, 32, 0.6373, 0.5873, 0.8476, 0.4127),
     ("T#2", 32, 1.5e-4, 50, 32, 0.9064, 0.2973, 0.7792, 0.4967),
     ("T#3", 16, 1.0e-4, 50, 32, 0.8548, 0.3670, 0.8942, 0.3438),
     ("T#4", 32, 1.5e-4, 50, 16, 0.8298, 0.4033, 0.6508, 0.6246),
     ("T#5", 16, 1.0e-4, 50, 16, 0.6988, 0.4990, 0.7123, 0.5670)],
    columns=["trial", "batch_size", "lr", "patience", "patch", "paper_val_r2", "paper_val_rmse",
             "paper_test_r2", "paper_test_rmse"],
).set_index("trial")


def trial_configs(base: TrainConfig, trials: pd.DataFrame = TRIALS) -> dict[str, tuple[TrainConfig, int]]:
    """massa2024 Table 2 trials as (train config, patch size): batch size, learning rate, patience."""
    out = {}
    for name, row in trials.iterrows():
        stages = tuple(replace(s, lr=float(row.lr)) if s.name == "full" else s for s in base.stages)
        out[str(name)] = (replace(base, stages=stages, batch_size=int(row.batch_size),
                                  patience=int(row.patience)), int(row.patch))
    return out


@dataclass(frozen=True)
class ModelSpecs:
    """The backbone specs of a run: CLIP, image regressor, text regressor, CLIP-style towers."""

    clip: Any
    image: Any
    text: Any
    towers: Any = None  # matmodal.models.clip.TowerClipSpec


def _image_spec(profile: str, image_size: int, small: bool, seed: int, cache_dir: Path | None) -> Any:
    """tiny CNN (``small``), else the resolved ``inception`` backbone: InceptionV3 (paper) or its
    offline substitute, the ImageNet EfficientNet-Lite0 of the PyPI wheel."""
    from matmodal.models.backbones import resolve_backbone
    from matmodal.models.efficientnet import TIMM_ARCH
    from matmodal.models.stacked import ImageSpec

    if small:
        return ImageSpec("tiny_cnn", image_size=image_size)
    backbone = resolve_backbone("inception", profile, seed=seed, cache_dir=cache_dir)
    checkpoint = backbone.checkpoint if backbone.pretrained else None
    if backbone.name == TIMM_ARCH:
        return ImageSpec("efficientnet_lite0", image_size=image_size, checkpoint=checkpoint)
    return ImageSpec("inception_v3", image_size=max(image_size, 75), checkpoint=checkpoint)


def model_specs(profile: str = "quick", image_size: int = 64, small: bool = True, max_text_length: int = 64,
                text_layers: int | None = None, seed: int = 0, towers: dict[str, Any] | None = None,
                cache_dir: Path | None = None, readout: dict[str, Any] | None = None) -> ModelSpecs:
    """Backbones from :func:`matmodal.models.backbones.resolve_backbone` for a run profile.

    ``small``: tiny CLIP towers and a tiny CNN (CPU); otherwise InceptionV3 (paper profile) or,
    offline, the pretrained EfficientNet-Lite0. The text regressor uses the resolved ``roberta``
    backbone (offline: the bundled pretrained MiniLM), cut to ``text_layers`` layers when given.
    ``towers``: fields of the CLIP-style :class:`~matmodal.models.clip.TowerClipSpec`.
    Non-pretrained resolutions become random init here. ``cache_dir``: where offline checkpoint
    folders are written (default: the settings' cache dir). ``readout``: ``dropout`` of both
    readouts and the frozen image features (``frozen_features``, ``flip_views`` of
    :class:`~matmodal.models.stacked.ImageSpec`).
    """
    from matmodal.models.backbones import resolve_backbone
    from matmodal.models.clip import ClipSpec, TowerClipSpec
    from matmodal.models.stacked import TextSpec

    def checkpoint(kind: str) -> str | None:
        backbone = resolve_backbone(kind, profile, seed=seed, cache_dir=cache_dir)
        return backbone.checkpoint if backbone.pretrained else None

    clip = ClipSpec(patch_size=32 if image_size >= 128 else 16, image_size=image_size,
                    checkpoint=checkpoint("clip"), width=64 if small else None,
                    max_text_length=min(max_text_length, 77))
    text = TextSpec("roberta-base", checkpoint=checkpoint("roberta"), max_length=max_text_length, layers=text_layers)
    readout = dict(readout or {})
    unknown = set(readout) - {"dropout", "frozen_features", "flip_views"}
    if unknown:
        raise ValueError(f"unknown readout settings {sorted(unknown)} (dropout, frozen_features, flip_views)")
    image = replace(_image_spec(profile, image_size, small, seed, cache_dir), **readout)
    text = replace(text, **{k: v for k, v in readout.items() if k == "dropout"})
    return ModelSpecs(clip, image, text, TowerClipSpec(**(towers or {})))


def study_trainers(families: Sequence[str], specs: ModelSpecs, level: str, train: TrainConfig, *,
                   stacked: bool, clip: bool, features: FeatureCache | None) -> dict[str, Trainer]:
    """The trainers of one experiment: the mean baseline, the stacked families (``stacked``) and
    the CLIP families (``clip``) of ``families`` on the ``level`` texts.

    ``features``: frozen towers for the stacked model (None: fine-tuned backbones); the tower
    CLIP families always run on cached frozen features (a fresh cache when None).
    """
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown model families {sorted(unknown)} (known: {', '.join(FAMILIES)})")
    trainers: dict[str, Trainer] = {"mean": mean_trainer()}
    cache = features if features is not None else FeatureCache()
    image, text = specs.image, specs.text
    if stacked and "stacked" in families:
        trainers["stacked"] = stacked_trainer(image, text, [level], train, features=features)
    if stacked and "stacked_random" in families:
        trainers["stacked_random"] = stacked_trainer(random_init(image), random_init(text), [level], train,
                                                     features=features, family="stacked_random")
    if clip and "clip" in families:
        trainers["clip"] = clip_trainer(specs.clip, train, level)
    towers = {"clip_towers": (specs.towers, image, text),
              "clip_towers_unaligned": (replace(specs.towers, align_epochs=0), image, text),
              "clip_towers_random": (specs.towers, random_init(image), random_init(text))}
    for family, (spec, image_spec, text_spec) in towers.items():
        if clip and family in families:
            trainers[family] = tower_clip_trainer(spec, image_spec, text_spec, level, train, cache, family)
    return trainers


def run_study(tables: dict[str, pd.DataFrame], targets: dict[str, Sequence[str]], families: Sequence[str],
              text_levels: Sequence[str], clip_text_level: str, specs: ModelSpecs, train: TrainConfig,
              protocol: ProtocolConfig, features: FeatureCache | None = None,
              log: Callable[[str], None] = print, formula_text: str = "symbols",
              ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every (dataset, target, text level) experiment of a massa study: scores and skipped experiments.

    Stacked families run at every level of ``text_levels``; CLIP families at ``clip_text_level``
    (the first of ``text_levels`` when too few rows have it). The mean baseline is kept once.
    ``formula_text``: how the Formula level is written (:func:`~matmodal.protocols.experiment.prepare`).
    """
    is_clip = [f for f in families if f.startswith("clip")]
    scores, skipped = [], []
    start = time.perf_counter()
    for name, table in tables.items():
        enough = level_texts(table, clip_text_level).notna().sum() > 2 * protocol.n_folds
        clip_level = clip_text_level if enough else text_levels[0]
        levels = dict.fromkeys([*text_levels, clip_level] if is_clip else text_levels)
        for target in targets[name]:
            for level in levels:
                experiment = prepare(table, target, [level], dataset=name, formula_text=formula_text)
                if len(experiment.ids) < 2 * protocol.n_folds + 2:
                    skipped.append({"dataset": name, "target": target, "text_level": level,
                                    "rows": len(experiment.ids),
                                    "reason": f"too few rows for {protocol.n_folds}-fold CV + test"})
                    continue
                trainers = study_trainers(families, specs, level, train, stacked=level in text_levels,
                                          clip=bool(is_clip) and level == clip_level, features=features)
                frame = run_protocol(experiment, trainers, protocol, log=lambda m: None)
                if level != next(iter(levels)):  # the mean baseline does not depend on the text level
                    frame = frame[frame.family != "baseline"]
                scores.append(frame)
                log(f"{name}/{target}/{level}: {len(experiment.ids)} rows, {time.perf_counter() - start:.0f} s so far")
    return (pd.concat(scores, ignore_index=True) if scores else pd.DataFrame()), skipped


