"""massa2024 §3 cross-validation loop: 85 % in folds, 15 % held-out test, several runs; scores of
every trainer on every fold, the fold-model ensemble, and the validation-only hyper-parameter search."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold

from matmodal.metrics import regression_metrics
from matmodal.models.torch_common import Standardizer
from matmodal.protocols.experiment import Experiment
from matmodal.splits import train_test_split_ids

# --------------------------------------------------------------------------- splits


def cv_folds(train_ids: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n_folds`` (fit ids, validation ids) pairs; every id is in exactly one validation fold."""
    order = sorted(train_ids)
    kfold = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [([order[i] for i in fit_i], [order[i] for i in val_i]) for fit_i, val_i in kfold.split(order)]


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
    """Folds, runs, test fraction and seeds (split fixed by ``split_seed``; runs add to ``seed``).

    ``log_target``: models fit standardised ``log10(y)``; predictions are back-transformed to the
    target's unit before scoring (:class:`~matmodal.models.torch_common.Standardizer`).
    """

    n_folds: int = 5
    runs: int = 1
    test_fraction: float = 0.15
    split_seed: int = 0
    seed: int = 0
    log_target: bool = False


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
            scaler = Standardizer.fit(experiment.y[fit_idx], config.log_target)
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


