"""Hyper-parameter selection on validation folds of the *training* rows (never the test split).

:func:`tuning_split` turns a run's :class:`~matmodal.models.run_spec.SplitData` into one whose
"test" part is a seeded holdout of the training rows, so any family's fit-and-predict function
can be scored on it unchanged; the real test frame is not part of it. :func:`select` scores
candidate configs on ``folds`` such holdouts and returns them ranked by mean holdout MAE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from matmodal.models.run_spec import RunConfig, SplitData, validation_split

Predict = Callable[[SplitData, RunConfig], np.ndarray]  # predictions for split.test, target unit


def tuning_split(split: SplitData, fraction: float = 0.2, seed: int = 0) -> SplitData:
    """A copy of ``split`` whose train/test are (rest, holdout) of ``split.train`` only."""
    rest, holdout = validation_split(split.train, fraction, seed)
    return SplitData(rest, holdout, split.columns, len(split.train), 0)


def select(split: SplitData, candidates: Sequence[RunConfig], predict: Predict, *, folds: int = 2,
           fraction: float = 0.2) -> pd.DataFrame:
    """Holdout MAE of every candidate over ``folds`` holdouts of the training rows (seeds
    ``1000 + fold``), best first. Columns: candidate index, mean_mae, sd_mae, maes."""
    rows = []
    views = [tuning_split(split, fraction, 1000 + fold) for fold in range(folds)]
    for i, config in enumerate(candidates):
        maes = [float(np.mean(np.abs(predict(view, config) - view.test[config.target].to_numpy(float))))
                for view in views]
        rows.append({"candidate": i, "mean_mae": float(np.mean(maes)), "sd_mae": float(np.std(maes)), "maes": maes})
    return pd.DataFrame(rows).sort_values("mean_mae", kind="stable").reset_index(drop=True)


def with_extra(config: RunConfig, **params: object) -> RunConfig:
    """``config`` with ``extra`` entries set (e.g. ``with_extra(c, **{"gbm.learning_rate": 0.1})``)."""
    extra = dict(config.extra)
    extra.update(params)
    return replace(config, extra=tuple(sorted(extra.items())))


def automm_predict(view: SplitData, config: RunConfig) -> np.ndarray:
    """A :data:`Predict` for AutoMM candidates: fit on ``view.train`` (early-stopping rows carved
    from it) in a temporary folder, predict ``view.test`` (a holdout of the training rows when
    ``view`` comes from :func:`tuning_split`)."""
    import tempfile
    from pathlib import Path

    from matmodal.models.automm import cached_split, fit_predictor, predict_frame, resolve_backbones
    from matmodal.models.run_spec import TargetTransform

    view, _ = cached_split(view, config)  # recipe towers: cached -> tower vectors as numerical columns
    with tempfile.TemporaryDirectory() as tmp:
        predictor = fit_predictor(view, config, resolve_backbones(config), Path(tmp) / "model", verbosity=0)
        return predict_frame(predictor, view.test, TargetTransform(config.target_transform))
