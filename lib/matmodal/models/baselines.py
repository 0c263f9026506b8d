"""Baseline rows for every table: does a multimodal model beat trivial?

``mean``  predicts the training-set mean of the target (MAE/MAD ≈ RMSE/RMSD ≈ 1 on the test set).
``gbm``   scikit-learn ``HistGradientBoostingRegressor`` (default hyperparameters,
          ``random_state`` = run seed) on the tabular modality's columns.

Both use exactly the split of :func:`matmodal.models.automm.prepare_split` (same ids, same seed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from matmodal.models.automm import (
    RunConfig,
    SplitData,
    prepare_split,
    run_summary,
    write_predictions,
)

BASELINES = ("mean", "gbm")
LABELS = {"mean": "Baseline: mean", "gbm": "Baseline: GBM (tabular)"}


def baseline_predictions(kind: str, split: SplitData, target: str, seed: int) -> np.ndarray:
    """Test-set predictions of baseline ``kind`` (target units)."""
    y_train = split.train[target].to_numpy(dtype=float)
    if kind == "mean":
        return np.full(len(split.test), y_train.mean())
    if kind == "gbm":
        from sklearn.ensemble import HistGradientBoostingRegressor

        features = split.columns["tabular"]
        model = HistGradientBoostingRegressor(random_state=seed)
        model.fit(split.train[features].to_numpy(dtype=float), y_train)
        return model.predict(split.test[features].to_numpy(dtype=float))
    raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(BASELINES)})")


def train_baseline(table: Any, config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Fit baseline ``config.model`` on the run's split; writes predictions, returns the result."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    pred = baseline_predictions(config.model, split, config.target, config.seed)
    write_predictions(split, pred, config, run_dir)
    features = split.columns["tabular"] if config.model == "gbm" else []
    return run_summary(split, pred, config, started, backbones={"baseline": {
        "kind": "baseline", "name": config.model, "path": None, "pretrained": False,
        "source": "scikit-learn HistGradientBoostingRegressor" if features else "training-set mean"}},
        pretrained={}, n_features=len(features))
