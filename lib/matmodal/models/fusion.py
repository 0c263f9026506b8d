"""The fast fusion family (beyond the papers): frozen encoder embeddings, fused cheaply.

Per modality, frozen features (:mod:`matmodal.models.embeddings`; nothing is fine-tuned):

=========  ================================================================================
tabular    the tabular modality's columns (``RunConfig.features``, e.g. CHGNet + Magpie)
text       MiniLM sentence vectors of ``RunConfig.text_column`` (384), PCA-reduced
image      EfficientNet-Lite0 ImageNet vectors of ``image_path`` (1280), PCA-reduced
=========  ================================================================================

(PCA to ``fusion.pca`` components, fit on the training rows only; 0 keeps every dimension.)

Families (``RunConfig.model``):

``fusion_gbm``   early fusion: the concatenated features -> gradient boosting
                 (:func:`matmodal.models.baselines.fit_gbm`, same recipe as the GBM baseline:
                 iterations by early stopping, then refit on all training rows).
``fusion_mlp``   early fusion: standardised concatenated features -> a torch MLP
                 (``tabular_layers`` × ``tabular_width``, ``dropout``, AdamW at ``learning_rate``,
                 ``epochs`` with early stopping after ``patience`` epochs; best epoch restored).
``fusion_late``  late fusion: two unimodal models per modality (a GBM and the MLP), averaged
                 with non-negative weights (summing to 1) fitted on the validation rows.

Every family validates on rows carved from the training split
(:func:`~matmodal.models.run_spec.validation_split`); the test split is only predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal.models.baselines import GBM_DEFAULTS, family_params, fit_gbm, refit_gbm
from matmodal.models.run_spec import (
    IMAGE_COLUMN,
    RunConfig,
    SplitData,
    TargetTransform,
    combination_label,
    features_label,
    prepare_split,
    run_summary,
    validation_split,
    write_curve,
    write_predictions,
)

if TYPE_CHECKING:
    from matmodal.config import Settings

FAMILIES = ("fusion_gbm", "fusion_mlp", "fusion_late")
_WORD = {"fusion_gbm": "Fusion GBM", "fusion_mlp": "Fusion MLP", "fusion_late": "Late fusion"}
FUSION_DEFAULTS: dict[str, Any] = {"pca": 32, "image_size": 224, "text_max_len": 256}
ENCODERS = {"tabular": "structure features (frozen)", "text": "all-MiniLM-L6-v2, pretrained, frozen",
            "image": "EfficientNet-Lite0, ImageNet-pretrained, frozen"}


def label(config: dict[str, Any]) -> str:
    """Row label, e.g. ``Fusion GBM: Tabular + Text (CHGNet + Magpie)``."""
    combo = combination_label(config["modalities"])
    feats = f" ({features_label(config['features'])})" if config.get("features") and "tabular" in config["modalities"] else ""
    return f"{_WORD[config['model']]}: {combo}{feats}"


@dataclass
class Views:
    """Per-modality frozen feature matrices of the fit, validation and test rows."""

    fit: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    y_fit: np.ndarray
    y_val: np.ndarray

    def stacked(self, part: str) -> np.ndarray:
        return np.hstack(list(getattr(self, part).values()))


def _raw(frame: pd.DataFrame, modality: str, split: SplitData, config: RunConfig, params: dict[str, Any],
         cache_dir: Path | None) -> np.ndarray:
    from matmodal.models import embeddings

    if modality == "tabular":
        return frame[split.columns["tabular"]].to_numpy(dtype=float)
    if modality == "text":
        return embeddings.text_embeddings(frame[config.text_column].tolist(), max_len=params["text_max_len"],
                                          cache_dir=cache_dir).astype(float)
    return embeddings.image_embeddings(frame[IMAGE_COLUMN].tolist(), size=params["image_size"],
                                       cache_dir=cache_dir).astype(float)


def frozen_views(split: SplitData, config: RunConfig, cache_dir: Path | None = None) -> Views:
    """Frozen features of every modality for fit / validation (both from ``split.train``) and
    test rows; PCA of the embedding modalities is fit on the fit rows only."""
    from sklearn.decomposition import PCA

    params = family_params(config, "fusion", FUSION_DEFAULTS)
    transform = TargetTransform(config.target_transform)
    fit, val = validation_split(split.train, config.validation_fraction, config.seed)
    views: dict[str, dict[str, np.ndarray]] = {"fit": {}, "val": {}, "test": {}}
    for modality in config.modalities:
        parts = {name: _raw(frame, modality, split, config, params, cache_dir)
                 for name, frame in (("fit", fit), ("val", val), ("test", split.test))}
        if modality != "tabular" and params["pca"]:
            pca = PCA(n_components=min(params["pca"], *parts["fit"].shape), random_state=config.seed).fit(parts["fit"])
            parts = {k: pca.transform(v) for k, v in parts.items()}
        for name, values in parts.items():
            views[name][modality] = values
    what = f"{config.target} of dataset {config.dataset!r}"
    return Views(views["fit"], views["val"], views["test"], transform.forward(fit[config.target], what),
                 transform.forward(val[config.target], what))


def fit_mlp(x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            config: RunConfig) -> tuple[Any, pd.DataFrame]:
    """A seeded torch MLP on standardised inputs and target; returns ``predict(x)`` (target
    scale of ``y_fit``) and the per-epoch learning curve (standardised MSE)."""
    import torch

    mu, sd = x_fit.mean(0), x_fit.std(0) + 1e-8
    y_mu, y_sd = float(y_fit.mean()), float(y_fit.std() + 1e-8)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - mu) / sd, dtype=torch.float32)

    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    layers: list[torch.nn.Module] = []
    width = x_fit.shape[1]
    for _ in range(config.tabular_layers):
        layers += [torch.nn.Linear(width, config.tabular_width), torch.nn.GELU(), torch.nn.Dropout(config.dropout)]
        width = config.tabular_width
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    xf, yf = tensor(x_fit), torch.as_tensor((y_fit - y_mu) / y_sd, dtype=torch.float32)
    xv, yv = tensor(x_val), torch.as_tensor((y_val - y_mu) / y_sd, dtype=torch.float32)
    rows, best, best_state, waited = [], np.inf, None, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(xf), generator=generator)
        total = 0.0
        for start in range(0, len(xf), config.batch_size):
            idx = order[start:start + config.batch_size]
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xf[idx]).squeeze(1), yf[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val_loss = float(torch.nn.functional.mse_loss(model(xv).squeeze(1), yv))
        rows += [{"step": epoch, "split": "train", "loss": total / len(xf)},
                 {"step": epoch, "split": "val", "loss": val_loss}]
        if val_loss < best:
            best, best_state, waited = val_loss, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(tensor(x)).squeeze(1).numpy().astype(float) * y_sd + y_mu

    return predict, pd.DataFrame(rows)


def late_weights(val_predictions: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that best combine the columns of ``val_predictions``."""
    from scipy.optimize import nnls

    weights, _ = nnls(val_predictions, y_val)
    return weights / weights.sum() if weights.sum() > 0 else np.full(val_predictions.shape[1], 1 / val_predictions.shape[1])


def fusion_predict(views: Views, config: RunConfig) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Test predictions (model scale), learning curve and what was fitted, for ``config.model``."""
    gbm = family_params(config, "gbm", GBM_DEFAULTS)
    if config.model == "fusion_gbm":
        model, curve = fit_gbm(views.stacked("fit"), views.y_fit, views.stacked("val"), views.y_val, config.seed, gbm)
        model = refit_gbm(model, np.vstack([views.stacked("fit"), views.stacked("val")]), np.r_[views.y_fit, views.y_val])
        return model.predict(views.stacked("test")), curve, {"gbm": {**gbm, "n_iter": int(model.max_iter),
                                                                     "refit_on": "all training rows"}}
    if config.model == "fusion_mlp":
        predict, curve = fit_mlp(views.stacked("fit"), views.y_fit, views.stacked("val"), views.y_val, config)
        return predict(views.stacked("test")), curve, {"epochs_run": int(curve["step"].max())}
    if config.model == "fusion_late":
        members: dict[str, Any] = {}
        for m in config.modalities:
            members[f"{m}:gbm"] = fit_gbm(views.fit[m], views.y_fit, views.val[m], views.y_val, config.seed, gbm)[0].predict
            members[f"{m}:mlp"] = fit_mlp(views.fit[m], views.y_fit, views.val[m], views.y_val, config)[0]
        weights = late_weights(np.column_stack([f(views.val[k.split(":")[0]]) for k, f in members.items()]), views.y_val)
        test = np.column_stack([f(views.test[k.split(":")[0]]) for k, f in members.items()]) @ weights
        return test, pd.DataFrame(), {"weights": dict(zip(members, map(float, weights), strict=True))}
    raise ValueError(f"unknown fusion family {config.model!r} (known: {', '.join(FAMILIES)})")


def train_fusion(table: pd.DataFrame, config: RunConfig, run_dir: Path, *, cache_dir: Path | None = None,
                 settings: Settings | None = None, **_: Any) -> dict[str, Any]:
    """Fit fusion family ``config.model`` on the run's split; writes predictions, returns the result."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    views = frozen_views(split, config, cache_dir)
    features_s = time.perf_counter() - started
    raw, curve, fitted = fusion_predict(views, config)
    pred = TargetTransform(config.target_transform).inverse(raw)
    write_predictions(split, pred, config, run_dir)
    featurisers = sorted({c.rsplit("_", 1)[0] for c in split.columns.get("tabular", [])})
    encoders = {**ENCODERS, "tabular": f"{features_label(featurisers)} (frozen)"}
    pretrained = {m: m != "tabular" or "chgnet" in featurisers for m in config.modalities}  # CHGNet: MPtrj
    return run_summary(split, pred, config, started, settings, features_s=round(features_s, 2),
                       backbones={m: {"kind": m, "name": encoders[m], "path": None, "pretrained": pretrained[m],
                                      "source": "frozen"} for m in config.modalities},
                       pretrained=pretrained,
                       n_features={m: int(v.shape[1]) for m, v in views.fit.items()},
                       fitted=fitted, learning_curve=write_curve(curve, run_dir))
