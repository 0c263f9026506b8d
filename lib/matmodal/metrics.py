"""Regression metrics (costa2025 and massa2024): MAE, RMSE, MAE/MAD, RMSE/RMSD, R².

MAD is the mean absolute deviation of the true values around their mean and RMSD their root
mean square deviation (population standard deviation), both on the evaluated split: a
mean predictor scores MAE/MAD = 1 and RMSE/RMSD = 1, so values below 1 beat trivial.

A leaf module: it imports nothing of matmodal, so every layer may use it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

METRICS = ("mae", "rmse", "mae_mad", "rmse_rmsd", "r2")
METRIC_LABELS = {"mae": "MAE", "rmse": "RMSE", "mae_mad": "MAE/MAD", "rmse_rmsd": "RMSE/RMSD", "r2": "R²"}


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All metrics at once; errors are in the target's unit, scaled ones are unitless."""
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if true.shape != pred.shape or true.ndim != 1 or true.size == 0:
        raise ValueError(f"need two equal 1-d arrays, got {true.shape} and {pred.shape}")
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise ValueError("metrics need finite values (drop NaN targets before evaluating)")
    error = pred - true
    mae = float(np.mean(np.abs(error)))
    rmse = float(np.sqrt(np.mean(error**2)))
    mad = float(np.mean(np.abs(true - true.mean())))
    rmsd = float(np.sqrt(np.mean((true - true.mean()) ** 2)))
    return {
        "mae": mae,
        "rmse": rmse,
        "mae_mad": mae / mad if mad > 0 else float("nan"),
        "rmse_rmsd": rmse / rmsd if rmsd > 0 else float("nan"),
        "r2": 1.0 - (rmse / rmsd) ** 2 if rmsd > 0 else float("nan"),
    }
