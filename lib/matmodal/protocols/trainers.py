"""massa2024 model families as trainers (``trainer(ctx) -> [StagePrediction]``): the mean baseline,
CLIP, the stacked model (fine-tuned or on frozen towers) and the CLIP-style model on locked towers;
the frozen-tower feature cache."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matmodal.models.torch_common import (
    Batch,
    Regressor,
    StageHistory,
    TrainConfig,
    fit,
    predict,
    seed_everything,
)
from matmodal.protocols.cv import FoldContext, StagePrediction, Trainer
from matmodal.protocols.experiment import IMAGE, Experiment

# --------------------------------------------------------------------------- trainers


def _history_info(histories: Sequence[StageHistory]) -> dict[str, Any]:
    return {"epochs": "+".join(str(h.epochs_run) for h in histories),
            "best_epochs": "+".join(str(h.best_epoch + 1) for h in histories),
            "wall_s": round(sum(h.wall_s for h in histories), 2),
            "n_trainable": max(h.n_trainable for h in histories),
            "curves": json.dumps([{"stage": h.stage, "train": h.train_loss, "val": h.val_loss} for h in histories])}


def _flat_info(model: Regressor) -> dict[str, Any]:
    """Scalar provenance fields (pretrained flags, sources) for the score rows."""
    return {k: v for k, v in model.provenance().items() if isinstance(v, str | bool | int | float)}


def _fit_predict(model: Regressor, tensors: Batch, ctx: FoldContext, train: TrainConfig,
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    histories = fit(model, {**tensors, "y": ctx.y_std}, ctx.fit_idx.tolist(), ctx.val_idx.tolist(), train,
                    ctx.seed)
    pred = predict(model, tensors, np.arange(len(ctx.experiment.ids)), train.batch_size)
    return pred, {**_history_info(histories), "train_config": repr(train.as_dict())}


def mean_trainer() -> Trainer:
    """The mean predictor: predicts the fold's training mean (0 in standardised units)."""

    def trainer(ctx: FoldContext) -> list[StagePrediction]:
        return [StagePrediction("baseline", "mean", "", np.zeros(len(ctx.experiment.ids)))]

    return trainer


def clip_trainer(spec: Any, train: TrainConfig, level: str = "all") -> Trainer:
    """CLIP + linear head (:mod:`matmodal.models.clip`) on images and the ``level`` texts."""
    from matmodal.models.clip import CLIP_MEAN, CLIP_STD, clip_regressor

    def trainer(ctx: FoldContext) -> list[StagePrediction]:
        seed_everything(ctx.seed)
        model, tokenizer = clip_regressor(spec)
        tensors = {"pixel_values": ctx.experiment.images(spec.image_size, CLIP_MEAN, CLIP_STD),
                   **ctx.experiment.tokens(tokenizer, level, spec.max_text_length)}
        pred, info = _fit_predict(model, tensors, ctx, train)
        return [StagePrediction("clip", "clip", level, pred, {**_flat_info(model), **info})]

    return trainer


class FeatureCache:
    """Frozen-tower features per (tower spec, input): computed once, shared by every fold and experiment.

    A frozen pretrained tower gives the same features whatever the fold, so the CPU cost of a
    backbone is paid once per image or text; random-init towers are seeded (``init_seed``) so
    their features are fixed too. Keys: ``repr`` of the spec + the image path or the text.
    """

    def __init__(self, init_seed: int = 0, batch_size: int = 32, path: Path | None = None) -> None:
        """``path``: a file the features persist in (loaded when it exists, rewritten when new ones
        are computed), so separate runs share one extraction; key it by the settings yourself."""
        self.init_seed, self.batch_size, self.path = init_seed, batch_size, path
        self._rows: dict[tuple[str, str], np.ndarray] = {}
        self._info: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            saved = torch.load(path, weights_only=False)  # our own cache file
            if saved["init_seed"] != init_seed:
                raise ValueError(f"feature cache {path} holds init seed {saved['init_seed']}, not {init_seed}")
            self._rows, self._info = saved["rows"], saved["info"]

    def _get(self, spec: Any, inputs: Sequence[str], compute: Callable[[list[str]], tuple[np.ndarray, dict]],
             ) -> tuple[torch.Tensor, dict[str, Any]]:
        key = repr(spec)
        todo = list(dict.fromkeys(x for x in inputs if (key, x) not in self._rows))
        if todo:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.init_seed)
                values, info = compute(todo)
            self._rows.update({(key, x): v for x, v in zip(todo, values, strict=True)})
            self._info[key] = info
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"init_seed": self.init_seed, "rows": self._rows, "info": self._info}, self.path)
        return torch.tensor(np.stack([self._rows[(key, x)] for x in inputs])), self._info[key]

    def images(self, experiment: Experiment, spec: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """``n × num_features`` pooled features of the experiment's images (``spec``: an ImageSpec)."""
        from matmodal.models.stacked import image_features

        return self._get(spec, experiment.table[IMAGE].tolist(),
                         lambda paths: image_features(spec, paths, self.batch_size))

    def texts(self, experiment: Experiment, spec: Any, level: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """``n × hidden`` mean-pooled frozen features of the ``level`` texts (``spec``: a TextSpec)."""
        from matmodal.models.stacked import text_embeddings

        return self._get(spec, experiment.texts[level],
                         lambda texts: text_embeddings(spec, texts, self.batch_size))


def _towers(ctx: FoldContext, image_spec: Any, text_spec: Any, level: str | None,
            features: FeatureCache | None) -> tuple[Regressor, Batch]:
    """The image (``level=None``) or ``level`` text regressor of a fold and the tensors it reads.

    ``features``: frozen towers (cached features, readout trained); None: fine-tuned backbones.
    """
    from matmodal.models.stacked import EmbeddingRegressor, ImageRegressor, TextRegressor
    from matmodal.models.torch_common import IMAGENET_MEAN, IMAGENET_STD

    seed_everything(ctx.seed)
    if features is not None:
        key = "image_features" if level is None else "text_features"
        values, info = (features.images(ctx.experiment, image_spec) if level is None
                        else features.texts(ctx.experiment, text_spec, level))
        spec = image_spec if level is None else text_spec
        return EmbeddingRegressor(key, values.shape[1], info, spec.dropout), {key: values}
    if level is None:
        return ImageRegressor(image_spec), {
            "pixel_values": ctx.experiment.images(image_spec.image_size, IMAGENET_MEAN, IMAGENET_STD)}
    text = TextRegressor(text_spec)
    return text, ctx.experiment.tokens(text.tokenizer, level, text_spec.max_length)


def stacked_trainer(image_spec: Any, text_spec: Any, levels: Sequence[str], train: TrainConfig,
                    stacked_train: TrainConfig | None = None, features: FeatureCache | None = None,
                    family: str = "stacked") -> Trainer:
    """massa2024's stages on one fold: image, then per text level: text, image+text (Fig. 2).

    ``features``: frozen towers whose cached features feed the readouts (see :class:`FeatureCache`);
    ``None``: the backbones are fine-tuned in the ``full`` stage.
    """
    from matmodal.models.stacked import StackedRegressor

    def trainer(ctx: FoldContext) -> list[StagePrediction]:
        image, pixels = _towers(ctx, image_spec, text_spec, None, features)
        pred, info = _fit_predict(image, pixels, ctx, train)
        # one experiment per text level (its rows: those with that level's text): the image stage is
        # that experiment's, so it keeps the level, as massa2024 Fig. 2 lists one image-only run per level
        out = [StagePrediction(family, "image", levels[0] if len(levels) == 1 else "", pred,
                               {**_flat_info(image), **info})]
        for level in levels:
            text, tokens = _towers(ctx, image_spec, text_spec, level, features)
            pred, info = _fit_predict(text, tokens, ctx, train)
            out.append(StagePrediction(family, "text", level, pred, {**_flat_info(text), **info}))
            both = StackedRegressor(copy.deepcopy(image), text, image_spec.dropout)
            pred, info = _fit_predict(both, {**pixels, **tokens}, ctx, stacked_train or train)
            out.append(StagePrediction(family, "image+text", level, pred, {**_flat_info(both), **info}))
        return out

    return trainer


def tower_clip_trainer(spec: Any, image_spec: Any, text_spec: Any, level: str, train: TrainConfig,
                       features: FeatureCache, family: str = "clip_towers") -> Trainer:
    """CLIP-style model on locked towers (:class:`matmodal.models.clip.TowerClipRegressor`).

    Per fold: projections aligned contrastively on the fitting rows' image–text pairs (the
    validation rows only measure retrieval; the test rows are never read), then the regression
    stages of ``train``. Stage name ``clip``; the alignment record goes in the score rows.
    """
    from matmodal.models.clip import TowerClipRegressor, align

    def trainer(ctx: FoldContext) -> list[StagePrediction]:
        images, image_info = features.images(ctx.experiment, image_spec)
        texts, text_info = features.texts(ctx.experiment, text_spec, level)
        seed_everything(ctx.seed)
        model = TowerClipRegressor(replace(spec, image_dim=images.shape[1], text_dim=texts.shape[1]),
                                   {**image_info, **text_info})
        tensors = {"image_features": images, "text_features": texts}
        aligned: dict[str, Any] = {}
        if spec.align_epochs:
            generator = torch.Generator().manual_seed(ctx.seed)
            aligned = align(model, tensors, torch.as_tensor(ctx.fit_idx), torch.as_tensor(ctx.val_idx), generator)
        pred, info = _fit_predict(model, tensors, ctx, train)
        record = {"aligned": bool(spec.align_epochs),
                  **{k: round(v, 4) for k, v in aligned.items() if isinstance(v, float)},
                  "align_curve": json.dumps(aligned.get("align_loss", []))}
        return [StagePrediction(family, "clip", level, pred, {**_flat_info(model), **info, **record})]

    return trainer


FAMILIES = ("clip", "stacked", "stacked_random", "clip_towers", "clip_towers_unaligned", "clip_towers_random")
"""Model families of a massa study: ``clip`` = massa2024's CLIP (small, random init offline),
``stacked`` = the stacked model, ``clip_towers`` = CLIP-style on pretrained locked towers,
aligned; ``*_unaligned`` skips the alignment; ``*_random`` = the same on random-init towers."""



def random_init(spec: Any) -> Any:
    """The same backbone spec, randomly initialised (an image or text spec)."""
    return replace(spec, pretrained=False) if hasattr(spec, "pretrained") else replace(spec, checkpoint=None)


