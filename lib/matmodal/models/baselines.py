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

**Saved GBM** (``matmodal predict`` uses it): the refit model goes to ``<run>/model/`` as
``gbm.skops`` (skops.io: JSON schema + numpy arrays in a zip, no pickle; loading accepts only the
sklearn types of :data:`GBM_TRUSTED` and refuses a file asking for anything else) beside
``gbm.json`` (features in column order, target and its transform, n_train, seed, versions).
The run's ``result.json`` records the sha256 of both (``model_files``, as for AutoMM folders).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal.models.run_spec import (
    MODEL,
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


GBM_FILE = "gbm.skops"
GBM_CARD = "gbm.json"
# the types a saved GBM may contain beyond skops' built-in safe set; anything else is refused on load
GBM_TRUSTED = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


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


def fit_refit_gbm(split: SplitData, config: RunConfig, features: list[str]) -> tuple[Any, pd.DataFrame, dict]:
    """Fit the GBM on the training rows of ``split`` (validation carved from them; iterations by
    early stopping), refit on every training row; returns the model (on the transformed target),
    the learning curve and the params."""
    transform = TargetTransform(config.target_transform)
    fit, val = validation_split(split.train, config.validation_fraction, config.seed)
    params = family_params(config, "gbm", GBM_DEFAULTS)
    model, curve = fit_gbm(fit[features].to_numpy(float), transform.forward(fit[config.target]),
                           val[features].to_numpy(float), transform.forward(val[config.target]), config.seed, params)
    model = refit_gbm(model, split.train[features].to_numpy(float), transform.forward(split.train[config.target]))
    return model, curve, {**params, "n_iter": int(model.max_iter), "refit_on": "all training rows"}


def gbm_predict(split: SplitData, config: RunConfig, features: list[str]) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """:func:`fit_refit_gbm`, then predict ``split.test``; returns predictions (target unit), the
    learning curve, the params."""
    model, curve, params = fit_refit_gbm(split, config, features)
    return predict_test(model, split, config, features), curve, params


def predict_test(model: Any, split: SplitData, config: RunConfig, features: list[str]) -> np.ndarray:
    """The fitted GBM's predictions of ``split.test`` in the target's unit (transform undone)."""
    return TargetTransform(config.target_transform).inverse(model.predict(split.test[features].to_numpy(float)))


def save_gbm(model: Any, folder: Path, config: RunConfig, features: list[str], n_train: int) -> list[Path]:
    """Write the fitted GBM as ``gbm.skops`` + ``gbm.json`` (what it needs to predict: the feature
    columns in order, the target transform; its provenance: n_train, seed, versions)."""
    import sklearn
    import skops
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(model, folder / GBM_FILE)
    card = {"estimator": f"{type(model).__module__}.{type(model).__name__}", "format": "skops.io",
            "features": list(features), "target": config.target, "target_transform": config.target_transform,
            "n_train": int(n_train), "seed": config.seed, "n_iter": int(model.max_iter),
            "versions": {"scikit-learn": sklearn.__version__, "skops": skops.__version__}}
    (folder / GBM_CARD).write_text(json.dumps(card, indent=1))
    return [folder / GBM_FILE, folder / GBM_CARD]


@dataclass(frozen=True)
class SavedGbm:
    """A GBM loaded from a run's ``model/``; ``predict`` reads its feature columns by name."""

    model: Any
    card: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return list(self.card["features"])

    def predict(self, frame: pd.DataFrame, as_pandas: bool = False) -> np.ndarray:
        """Predictions on the transformed target scale (like an AutoMM predictor's; the caller
        undoes ``card["target_transform"]``). ``as_pandas`` is accepted for the same call."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"saved GBM needs feature columns the input lacks: {missing[:5]} ({len(missing)})")
        return self.model.predict(frame[self.features].to_numpy(float))


def load_gbm(folder: Path) -> SavedGbm:
    """The GBM of ``folder`` (a run's ``model/``); refuses a file that needs types beyond
    :data:`GBM_TRUSTED` (skops never unpickles; verify the folder's hashes first)."""
    import skops.io as sio

    path = Path(folder) / GBM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no saved GBM ({GBM_FILE}); the run predates saved GBMs or kept no model")
    unexpected = sorted(set(sio.get_untrusted_types(file=path)) - set(GBM_TRUSTED))
    if unexpected:
        raise ValueError(f"{path}: asks for types a saved GBM never holds ({', '.join(unexpected)}); refused")
    return SavedGbm(sio.load(path, trusted=list(GBM_TRUSTED)), json.loads((Path(folder) / GBM_CARD).read_text()))


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
                   keep_model: bool = True, **_: Any) -> dict[str, Any]:
    """Fit baseline ``config.model`` on the run's split; writes predictions (and, for the GBM with
    ``keep_model``, the model under ``model/``), returns the result."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    extra: dict[str, Any] = {}
    features = split.columns["tabular"] if config.model == "gbm" else []
    if config.model == "gbm":
        model, curve, params = fit_refit_gbm(split, config, features)
        pred = predict_test(model, split, config, features)
        extra = {"hyperparameters": params, "learning_curve": write_curve(curve, run_dir)}
        if keep_model:
            save_gbm(model, run_dir / MODEL, config, features, len(split.train))
            extra["model_dir"] = str(run_dir / MODEL)
    else:
        pred = baseline_predictions(config.model, split, config.target, config.seed)
    write_predictions(split, pred, config, run_dir)
    return run_summary(split, pred, config, started, settings, backbones={"baseline": {
        "kind": "baseline", "name": config.model, "path": None, "pretrained": False,
        "source": "scikit-learn HistGradientBoostingRegressor" if features else "training-set mean"}},
        pretrained={}, n_features=len(features), **extra)
