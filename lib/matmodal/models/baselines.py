"""Baseline rows for every table: does a multimodal model beat trivial, and the strongest classical model?

``mean``  predicts the training-set mean of the target (MAE/MAD ≈ RMSE/RMSD ≈ 1 on the test set).
``gbm``   scikit-learn ``HistGradientBoostingRegressor`` on the tabular modality's columns (the
          featurisers in ``RunConfig.features``, the same ones the tabular AutoMM model sees);
          the grid adds a second ``gbm`` row on CHGNet + Magpie (:data:`STRONG_FEATURES`) so the
          strongest classical model is in every table. The number of iterations is found by early
          stopping on a validation split carved from the training rows (``RunConfig.validation_fraction``),
          then the model is refit with it on all training rows; hyperparameters
          :data:`GBM_DEFAULTS`, overridable through ``RunConfig.extra`` (``("gbm.<name>", value)``).

Both use exactly the split of :func:`matmodal.models.run_spec.prepare_split` (same ids, same seed);
the test split is predicted once, after fitting, and never read before.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal.models.run_spec import (
    RunConfig,
    SplitData,
    TargetTransform,
    features_label,
    prepare_split,
    run_summary,
    validation_split,
    write_curve,
    write_predictions,
)

if TYPE_CHECKING:
    from matmodal.config import Settings

BASELINES = ("mean", "gbm")
LABELS = {"mean": "Baseline: mean", "gbm": "Baseline: GBM (tabular)"}
STRONG_FEATURES = ("chgnet", "magpie")
# chosen on holdouts of the MP elastic training rows (docs/training.md, "GBM recipe"): the best mean
# rank over K_VRH, G_VRH, Vol/atom; up to 2000 iterations, stopped early on the validation rows
GBM_DEFAULTS: dict[str, Any] = {"learning_rate": 0.05, "max_iter": 2000, "max_leaf_nodes": 7,
                                "min_samples_leaf": 20, "l2_regularization": 0.0, "n_iter_no_change": 50}


def label(config: dict[str, Any]) -> str:
    """Row label: ``Baseline: GBM (CHGNet + Magpie)`` names the features when they were chosen."""
    if config["model"] == "gbm" and config.get("features"):
        return f"Baseline: GBM ({features_label(config['features'])})"
    return LABELS.get(config["model"], config["model"])


def family_params(config: RunConfig, family: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``("<family>.<name>", value)`` entries of ``config.extra``."""
    prefix = f"{family}."
    return {**defaults, **{k[len(prefix):]: v for k, v in config.extra if k.startswith(prefix)}}


def fit_gbm(x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int,
            params: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Gradient boosting with early stopping on ``(x_val, y_val)`` (stops after
    ``n_iter_no_change`` iterations without validation improvement); returns the model and its
    learning curve (``step, split, loss`` = half squared error, sklearn's loss)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(random_state=seed, early_stopping=True, scoring="loss", **params)
    model.fit(x_fit, y_fit, X_val=x_val, y_val=y_val)
    steps = np.arange(len(model.train_score_))
    curve = pd.DataFrame({"step": np.r_[steps, steps], "split": ["train"] * len(steps) + ["val"] * len(steps),
                          "loss": -np.r_[model.train_score_, model.validation_score_]})
    return model, curve


def refit_gbm(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """The early-stopped model's settings and iteration count, refit on ``x, y`` (fit + validation
    rows, i.e. every training row) without early stopping."""
    from sklearn.base import clone

    return clone(model).set_params(max_iter=int(model.n_iter_), early_stopping=False).fit(x, y)


def gbm_predict(split: SplitData, config: RunConfig, features: list[str]) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Fit the GBM on the training rows of ``split`` (validation carved from them), then
    predict ``split.test``; returns predictions (target unit), the learning curve, the params."""
    transform = TargetTransform(config.target_transform)
    fit, val = validation_split(split.train, config.validation_fraction, config.seed)
    params = family_params(config, "gbm", GBM_DEFAULTS)
    model, curve = fit_gbm(fit[features].to_numpy(float), transform.forward(fit[config.target]),
                           val[features].to_numpy(float), transform.forward(val[config.target]), config.seed, params)
    model = refit_gbm(model, split.train[features].to_numpy(float), transform.forward(split.train[config.target]))
    pred = transform.inverse(model.predict(split.test[features].to_numpy(float)))
    return pred, curve, {**params, "n_iter": int(model.max_iter), "refit_on": "all training rows"}


def baseline_predictions(kind: str, split: SplitData, target: str, seed: int,
                         config: RunConfig | None = None) -> np.ndarray:
    """Test-set predictions of baseline ``kind`` (target units)."""
    if kind == "mean":
        return np.full(len(split.test), split.train[target].to_numpy(dtype=float).mean())
    if kind == "gbm":
        config = config or RunConfig("", target, ("tabular",), seed=seed)
        return gbm_predict(split, config, split.columns["tabular"])[0]
    raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(BASELINES)})")


def train_baseline(table: pd.DataFrame, config: RunConfig, run_dir: Path, *, settings: Settings | None = None,
                   **_: Any) -> dict[str, Any]:
    """Fit baseline ``config.model`` on the run's split; writes predictions, returns the result."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    extra: dict[str, Any] = {}
    if config.model == "gbm":
        pred, curve, params = gbm_predict(split, config, split.columns["tabular"])
        extra = {"hyperparameters": params, "learning_curve": write_curve(curve, run_dir)}
    else:
        pred = baseline_predictions(config.model, split, config.target, config.seed)
    write_predictions(split, pred, config, run_dir)
    features = split.columns["tabular"] if config.model == "gbm" else []
    return run_summary(split, pred, config, started, settings, backbones={"baseline": {
        "kind": "baseline", "name": config.model, "path": None, "pretrained": False,
        "source": "scikit-learn HistGradientBoostingRegressor" if features else "training-set mean"}},
        pretrained={}, n_features=len(features), **extra)
