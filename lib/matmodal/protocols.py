"""massa2024 §3 protocol: 85 % for 5-fold cross-validation, 15 % held-out test, several runs.

- the test split is fixed by ``split_seed`` (the same split as the costa2025 grid when
  :mod:`matmodal.splits` is present); each run reshuffles the folds and re-seeds the models;
- targets are standardised with the mean/std of the fold's *training* rows only;
- every fold trains each model family (early stopping on the fold's validation rows) and is
  scored on its training, validation and the test rows (R², RMSE, ... in the target's unit);
  ``test_ensemble`` scores the mean of the fold models' test predictions.

Model families are *trainers*: ``trainer(ctx) -> [StagePrediction]``, see :func:`clip_trainer`,
:func:`stacked_trainer` and :func:`mean_trainer`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold

from matmodal.manifest import Issue, Severity
from matmodal.metrics import regression_metrics
from matmodal.modalities.robocrys_levels import TextLevel, levels_from_description
from matmodal.models.torch_common import (
    Batch,
    Regressor,
    StageHistory,
    Standardizer,
    Tokenizer,
    TrainConfig,
    fit,
    load_images,
    predict,
    seed_everything,
)
from matmodal.splits import train_test_split_ids

ID = "material_id"
IMAGE = "image"  # the experiment's image column (copied from the first of IMAGE_COLUMNS)
TEXT_LEVELS = ("formula", "keywords", "all")
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "formula": ("text_formula", "text_composition", "formula"),
    "keywords": ("text_keywords",),
    "all": ("text_all", "text_robocrys"),
}
ALL_COLUMNS = TEXT_COLUMNS["all"]
IMAGE_COLUMNS = ("image_path", "ecd_image")  # rendered structure (costa2025, MP elastic), ECD slice (massa)

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


# --------------------------------------------------------------------------- splits


def cv_folds(train_ids: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n_folds`` (fit ids, validation ids) pairs; every id is in exactly one validation fold."""
    order = sorted(train_ids)
    kfold = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [([order[i] for i in fit_i], [order[i] for i in val_i]) for fit_i, val_i in kfold.split(order)]


# --------------------------------------------------------------------------- text levels


def keywords_text(formula: str, description: str | None) -> str | None:
    """massa2024's 'Keywords' level: the formula and robocrys' bond-length sentences."""
    if not isinstance(description, str) or not description:  # None or NaN: no robocrys text
        return None
    return levels_from_description(formula, description)[TextLevel.keywords]


def _first_column(table: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((c for c in names if c in table.columns and table[c].notna().any()), None)


def level_texts(table: pd.DataFrame, level: str) -> pd.Series:
    """Texts of a level (``formula``, ``keywords``, ``all``); None where the row has none."""
    if level not in TEXT_LEVELS:
        raise ValueError(f"unknown text level {level!r} ({', '.join(TEXT_LEVELS)})")
    column = _first_column(table, TEXT_COLUMNS[level])
    if column is not None:
        return table[column].astype(object).where(table[column].notna(), None)
    full, formula = _first_column(table, ALL_COLUMNS), _first_column(table, TEXT_COLUMNS["formula"])
    if level == "keywords" and full and formula:
        return pd.Series([keywords_text(f, d) for f, d in zip(table[formula], table[full], strict=True)],
                         index=table.index, dtype=object)
    return pd.Series(None, index=table.index, dtype=object)


# --------------------------------------------------------------------------- experiment data


@dataclass
class Experiment:
    """The rows of one (dataset, target) experiment with every needed modality, and tensor caches."""

    dataset: str
    target: str
    table: pd.DataFrame
    texts: dict[str, list[str]]
    issues: list[Issue] = field(default_factory=list)
    _images: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)
    _tokens: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @property
    def ids(self) -> list[str]:
        return self.table[ID].tolist()

    @property
    def y(self) -> np.ndarray:
        return self.table[self.target].to_numpy(dtype=float)

    def images(self, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        key = (size, tuple(mean), tuple(std))
        if key not in self._images:
            self._images[key] = load_images(self.table[IMAGE].tolist(), size, mean, std)
        return self._images[key]

    def tokens(self, tokenizer: Tokenizer, level: str, max_length: int) -> dict[str, torch.Tensor]:
        key = (tokenizer.name, tokenizer.source, level, max_length)
        if key not in self._tokens:
            self._tokens[key] = tokenizer.encode(self.texts[level], max_length)
        ids, mask = self._tokens[key]
        return {"input_ids": ids, "attention_mask": mask}


def _missing(table: pd.DataFrame, target: str, levels: Sequence[str], image: bool,
             image_column: str | None) -> dict[str, pd.Series]:
    checks = {f"target {target} missing or NaN": ~np.isfinite(pd.to_numeric(table[target], errors="coerce"))}
    if image:
        paths = table[image_column] if image_column else pd.Series(None, index=table.index)
        checks["no image"] = ~paths.map(lambda p: isinstance(p, str) and Path(p).is_file())
    for level in levels:
        checks[f"no '{level}' text"] = level_texts(table, level).isna()
    return checks


def prepare(table: pd.DataFrame, target: str, text_levels: Sequence[str] = (), image: bool = True,
            dataset: str = "") -> Experiment:
    """Keep the rows with the target, the image (if needed) and every text level; note the others."""
    image_column = _first_column(table, IMAGE_COLUMNS)  # on the whole table: every row may be dropped
    checks = _missing(table, target, text_levels, image, image_column)
    dropped = pd.Series(False, index=table.index)
    issues = []
    for reason, bad in checks.items():
        new = bad & ~dropped
        issues += [Issue(i, "massa_protocol", Severity.dropped, reason, dataset) for i in table.loc[new, ID]]
        dropped |= bad
    kept = table.loc[~dropped].sort_values(ID).reset_index(drop=True)
    if image:
        kept[IMAGE] = kept[image_column] if image_column else pd.Series(dtype=object)
    texts = {level: level_texts(kept, level).tolist() for level in text_levels}
    return Experiment(dataset, target, kept, texts, issues)


# --------------------------------------------------------------------------- protocol


@dataclass
class FoldContext:
    """One fold of one run: row positions (into the experiment) and standardised targets."""

    experiment: Experiment
    run: int
    fold: int
    fit_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    scaler: Standardizer
    seed: int

    @property
    def y_std(self) -> torch.Tensor:
        return torch.tensor(self.scaler.transform(self.experiment.y), dtype=torch.float32)


@dataclass
class StagePrediction:
    """Standardised predictions for every row of the experiment from one model stage."""

    family: str
    stage: str  # image, text, image+text, clip, mean
    text_level: str
    pred: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


Trainer = Callable[[FoldContext], list[StagePrediction]]


@dataclass(frozen=True)
class ProtocolConfig:
    """Folds, runs, test fraction and seeds (split fixed by ``split_seed``; runs add to ``seed``)."""

    n_folds: int = 5
    runs: int = 1
    test_fraction: float = 0.15
    split_seed: int = 0
    seed: int = 0


def _positions(experiment: Experiment, ids: Sequence[str]) -> np.ndarray:
    where = {i: k for k, i in enumerate(experiment.ids)}
    return np.array(sorted(where[i] for i in ids), dtype=int)


def fold_contexts(experiment: Experiment, config: ProtocolConfig) -> list[FoldContext]:
    """Every (run, fold) of the protocol with its rows and its training-rows standardiser."""
    train_ids, test_ids = train_test_split_ids(experiment.ids, config.test_fraction, config.split_seed)
    test_idx = _positions(experiment, test_ids)
    contexts = []
    for run in range(config.runs):
        seed = config.seed + run
        for fold, (fit_ids, val_ids) in enumerate(cv_folds(train_ids, config.n_folds, seed)):
            fit_idx = _positions(experiment, fit_ids)
            scaler = Standardizer.fit(experiment.y[fit_idx])
            contexts.append(FoldContext(experiment, run, fold, fit_idx, _positions(experiment, val_ids),
                                        test_idx, scaler, seed * 1000 + fold))
    return contexts


def _score(ctx: FoldContext, p: StagePrediction) -> list[dict[str, Any]]:
    y, pred = ctx.experiment.y, ctx.scaler.inverse(p.pred)
    rows = []
    for split, idx in (("train", ctx.fit_idx), ("val", ctx.val_idx), ("test", ctx.test_idx)):
        rows.append({"dataset": ctx.experiment.dataset, "target": ctx.experiment.target, "family": p.family,
                     "stage": p.stage, "text_level": p.text_level, "run": ctx.run, "fold": ctx.fold,
                     "split": split, "n": len(idx), **regression_metrics(y[idx], pred[idx]),
                     **{k: v for k, v in p.info.items() if k != "family"}})  # the trainer names the family
    return rows


def _ensemble(scores: pd.DataFrame, test_preds: dict[tuple, list[np.ndarray]], experiment: Experiment,
              test_idx: np.ndarray) -> pd.DataFrame:
    """``test_ensemble`` rows: the mean of the fold models' test predictions per run."""
    rows = []
    keys = ["family", "stage", "text_level", "run"]
    for key, preds in test_preds.items():
        first = scores[(scores[keys] == pd.Series(key, index=keys)).all(axis=1)].iloc[0].to_dict()
        metrics = regression_metrics(experiment.y[test_idx], np.mean(preds, axis=0))
        rows.append({**first, "fold": -1, "split": "test_ensemble", "n": len(test_idx), **metrics})
    return pd.DataFrame(rows)


def run_protocol(experiment: Experiment, trainers: dict[str, Trainer], config: ProtocolConfig,
                 log: Callable[[str], None] = print) -> pd.DataFrame:
    """Scores (one row per run × fold × family stage × split) of every trainer on every fold."""
    rows: list[dict[str, Any]] = []
    test_preds: dict[tuple, list[np.ndarray]] = {}
    contexts = fold_contexts(experiment, config)
    for ctx in contexts:
        for name, trainer in trainers.items():
            start = time.perf_counter()
            predictions = trainer(ctx)
            for p in predictions:
                rows += _score(ctx, p)
                key = (p.family, p.stage, p.text_level, ctx.run)
                test_preds.setdefault(key, []).append(ctx.scaler.inverse(p.pred)[ctx.test_idx])
            log(f"{experiment.dataset}/{experiment.target} run {ctx.run} fold {ctx.fold} {name}: "
                f"{time.perf_counter() - start:.1f} s")
    scores = pd.DataFrame(rows)
    extra = _ensemble(scores, test_preds, experiment, contexts[0].test_idx)
    return pd.concat([scores, extra], ignore_index=True)


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
        from matmodal.models.efficientnet import RESAMPLE
        from matmodal.models.stacked import build_image_backbone
        from matmodal.models.torch_common import IMAGENET_MEAN, IMAGENET_STD

        def compute(paths: list[str]) -> tuple[np.ndarray, dict]:
            model, info = build_image_backbone(spec)
            model.eval()
            with torch.no_grad():
                out = [model(load_images(paths[i:i + self.batch_size], spec.image_size, IMAGENET_MEAN,
                                         IMAGENET_STD, resample=RESAMPLE)).numpy()
                       for i in range(0, len(paths), self.batch_size)]
            return np.concatenate(out), info

        return self._get(spec, experiment.table[IMAGE].tolist(), compute)

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
        out = [StagePrediction(family, "image", "", pred, {**_flat_info(image), **info})]
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


def validation_search(experiment: Experiment, candidates: dict[str, dict[str, Trainer]], config: ProtocolConfig,
                      log: Callable[[str], None] = print) -> pd.DataFrame:
    """Hyper-parameter search on the validation folds of the training split: mean ± sd over
    folds × runs of the validation R²/RMSE/MAE per (candidate, family, stage, text level).

    The test rows are scored by :func:`run_protocol` but dropped here before anything is
    summarised, so no choice made from this table can have seen them; the training fits never
    see them either (they are neither fitting nor validation rows).
    """
    frames = []
    for name, trainers in candidates.items():
        start = time.perf_counter()
        frame = run_protocol(experiment, trainers, config, log=lambda m: None)
        frames.append(frame[frame.split == "val"].assign(candidate=name))
        log(f"{name}: {time.perf_counter() - start:.0f} s")
    scores = pd.concat(frames, ignore_index=True)
    keys = ["candidate", "family", "stage", "text_level"]
    stats = scores.groupby(keys)[["r2", "rmse", "mae"]].agg(["mean", "std"])
    stats.columns = [f"val_{m}_{s if s == 'mean' else 'sd'}" for m, s in stats.columns]
    return stats.reset_index().sort_values(["family", "stage", "val_r2_mean"], ascending=[True, True, False])


FAMILIES = ("clip", "stacked", "stacked_random", "clip_towers", "clip_towers_unaligned", "clip_towers_random")
"""Model families of a massa study: ``clip`` = massa2024's CLIP (small, random init offline),
``stacked`` = the stacked model, ``clip_towers`` = CLIP-style on pretrained locked towers,
aligned; ``*_unaligned`` skips the alignment; ``*_random`` = the same on random-init towers."""


def random_init(spec: Any) -> Any:
    """The same backbone spec, randomly initialised (an image or text spec)."""
    return replace(spec, pretrained=False) if hasattr(spec, "pretrained") else replace(spec, checkpoint=None)


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
              log: Callable[[str], None] = print) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every (dataset, target, text level) experiment of a massa study: scores and skipped experiments.

    Stacked families run at every level of ``text_levels``; CLIP families at ``clip_text_level``
    (the first of ``text_levels`` when too few rows have it). The mean baseline is kept once.
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
                experiment = prepare(table, target, [level], dataset=name)
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


def _image_spec(profile: str, image_size: int, small: bool, seed: int) -> Any:
    """tiny CNN (``small``), else the resolved ``inception`` backbone: InceptionV3 (paper) or its
    offline substitute, the ImageNet EfficientNet-Lite0 of the PyPI wheel."""
    from matmodal.models.backbones import resolve_backbone
    from matmodal.models.efficientnet import TIMM_ARCH
    from matmodal.models.stacked import ImageSpec

    if small:
        return ImageSpec("tiny_cnn", image_size=image_size)
    backbone = resolve_backbone("inception", profile, seed=seed)
    checkpoint = backbone.checkpoint if backbone.pretrained else None
    if backbone.name == TIMM_ARCH:
        return ImageSpec("efficientnet_lite0", image_size=image_size, checkpoint=checkpoint)
    return ImageSpec("inception_v3", image_size=max(image_size, 75), checkpoint=checkpoint)


def model_specs(profile: str = "quick", image_size: int = 64, small: bool = True, max_text_length: int = 64,
                text_layers: int | None = None, seed: int = 0, towers: dict[str, Any] | None = None) -> ModelSpecs:
    """Backbones from :func:`matmodal.models.backbones.resolve_backbone` for a run profile.

    ``small``: tiny CLIP towers and a tiny CNN (CPU); otherwise InceptionV3 (paper profile) or,
    offline, the pretrained EfficientNet-Lite0. The text regressor uses the resolved ``roberta``
    backbone (offline: the bundled pretrained MiniLM), cut to ``text_layers`` layers when given.
    ``towers``: fields of the CLIP-style :class:`~matmodal.models.clip.TowerClipSpec`.
    Non-pretrained resolutions become random init here.
    """
    from matmodal.models.backbones import resolve_backbone
    from matmodal.models.clip import ClipSpec, TowerClipSpec
    from matmodal.models.stacked import TextSpec

    def checkpoint(kind: str) -> str | None:
        backbone = resolve_backbone(kind, profile, seed=seed)
        return backbone.checkpoint if backbone.pretrained else None

    clip = ClipSpec(patch_size=32 if image_size >= 128 else 16, image_size=image_size,
                    checkpoint=checkpoint("clip"), width=64 if small else None,
                    max_text_length=min(max_text_length, 77))
    text = TextSpec("roberta-base", checkpoint=checkpoint("roberta"), max_length=max_text_length, layers=text_layers)
    return ModelSpecs(clip, _image_spec(profile, image_size, small, seed), text, TowerClipSpec(**(towers or {})))


DENSITY_NPZ = "charge_density/multimat_mp_total_density_32.npz"


def density_slice_table(mirror_dir: Path, out_dir: Path, n: int | None = None) -> pd.DataFrame:
    """A small real charge-density image table (an ECD stand-in while few (111) ECD images exist).

    Rows: materials of the mirror's ``multimat_mp_total_density_32.npz`` with a bulk modulus
    (``K_VRH_6059csv``, GPa) and a formula; image = the normalised middle z-slice of the real
    *total* density (not massa2024's differential (111) slice), viridis PNG; text = the formula.
    """
    from matmodal.modalities.ecd.image import save_png
    from matmodal.modalities.ecd.normalise import normalise

    data = np.load(mirror_dir / DENSITY_NPZ)
    k_vrh = data["K_VRH_6059csv"].astype(float)
    keep = np.flatnonzero(np.isfinite(k_vrh) & (data["formula_6059csv"] != ""))[:n]
    densities = data["total_density_32"]  # each npz access re-reads the whole array
    rows = []
    for i in keep:
        mid = str(data["material_id"][i])
        image = normalise(densities[i][:, :, densities.shape[-1] // 2])
        rows.append({ID: mid, "text_formula": str(data["formula_6059csv"][i]), "k_vrh": float(k_vrh[i]),
                     "image_path": str(save_png(image, out_dir / f"{mid}.png"))})
    return pd.DataFrame(rows)
