"""Train one massa2024 ECD-image regressor on a built density dataset and save it, so that
``matmodal predict --model FOLDER --input new.cif`` can use it (the density of a new structure
is then computed with GPAW, :mod:`matmodal.modalities.ecd.dft`).

The split is the protocol's (:func:`matmodal.protocols.cv.fold_contexts`): a held-out test set
(``test_fraction``, fixed by the seed), fold 0 of the remaining rows as the early-stopping
validation set, the rest fitted; targets standardised on the fitted rows. The saved folder
(:mod:`matmodal.models.saving`: safetensors weights, ``model.json``) records everything
predicting needs and every fact a reader needs to judge the model: target and unit, backbone
and whether it was pretrained, n_train/n_val/n_test, seeds, train/val/test metrics, the
standardiser, the image input settings (size, normalisation, resampling), the dataset's ECD
settings and provenance, and the GPAW settings a prediction will compute densities with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmodal.metrics import regression_metrics
from matmodal.modalities.ecd.dft import DftSettings
from matmodal.models.torch_common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainConfig,
    fit,
    predict,
    seed_everything,
)
from matmodal.protocols.cv import ProtocolConfig, fold_contexts
from matmodal.protocols.experiment import prepare
from matmodal.schema import ECD_IMAGE
from matmodal.targets import UNITS

RESAMPLE = "bilinear"  # torch_common.load_images' default: how training images were resized
KEPT_PROVENANCE = ("dataset", "code_version", "created_utc", "profile", "n_records", "sources")


@dataclass(frozen=True)
class SavedModelPlan:
    """What to train: the image backbone spec, the optimisation, split and the predict-time GPAW settings."""

    image: Any  # matmodal.models.stacked.ImageSpec
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    test_fraction: float = 0.15
    n_folds: int = 5  # fold 0 of the training rows is the early-stopping validation set
    dft: DftSettings = field(default_factory=DftSettings)
    # resample predict-time GPAW densities to this grid first (MultiMat: 32³); None: GPAW's own grid.
    # Measured on 15 materials (docs/dft.md): resampling to 32³ moved the predictions *further* from
    # those on the MP images (mean |diff| 0.63 against 0.50 eV/atom), so it is off by default
    density_grid: tuple[int, int, int] | None = None


def model_name(target: str, plan: SavedModelPlan) -> str:
    """``ecd-image-<target>-<backbone>-s<seed>``: the folder name under the dataset's runs folder."""
    return f"ecd-image-{target}-{plan.image.kind}-s{plan.seed}"


def _metrics(y: np.ndarray, pred: np.ndarray, rows: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {split: {"n": len(idx), **regression_metrics(y[idx], pred[idx])} for split, idx in rows.items()}


def train_and_save(table: pd.DataFrame, target: str, folder: Path, plan: SavedModelPlan, *,
                   dataset: str = "", dataset_provenance: dict[str, Any] | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit an :class:`~matmodal.models.stacked.ImageRegressor` on the ``ecd_image`` column of a
    massa density table for ``target`` and save it in ``folder``; returns the saved config."""
    from matmodal.models.stacked import ImageRegressor
    from matmodal.provenance import code_version

    provenance = dataset_provenance or {}
    if ECD_IMAGE not in table.columns:
        raise ValueError(f"dataset {dataset!r} has no {ECD_IMAGE} column: an ECD model needs a massa density dataset")
    if "ecd" not in provenance:
        raise ValueError(f"dataset {dataset!r}: its provenance records no ECD settings, so a prediction "
                         "could not draw images the way training saw them")
    experiment = prepare(table, target, [], image=True, dataset=dataset)
    if len(experiment.ids) < 3 * plan.n_folds:
        raise ValueError(f"dataset {dataset!r}: {len(experiment.ids)} rows with {target} and an image; "
                         f"need at least {3 * plan.n_folds}")
    protocol = ProtocolConfig(n_folds=plan.n_folds, test_fraction=plan.test_fraction, split_seed=plan.seed,
                              seed=plan.seed)
    ctx = fold_contexts(experiment, protocol)[0]
    start = time.perf_counter()
    seed_everything(ctx.seed)
    model = ImageRegressor(plan.image)
    pixels = {"pixel_values": experiment.images(plan.image.image_size, IMAGENET_MEAN, IMAGENET_STD)}
    histories = fit(model, {**pixels, "y": ctx.y_std}, ctx.fit_idx.tolist(), ctx.val_idx.tolist(), plan.train,
                    ctx.seed)
    pred = ctx.scaler.inverse(predict(model, pixels, np.arange(len(experiment.ids)), plan.train.batch_size))
    metrics = _metrics(experiment.y, pred, {"train": ctx.fit_idx, "val": ctx.val_idx, "test": ctx.test_idx})
    wall = time.perf_counter() - start
    unit = UNITS.get(target, "")
    log(f"{dataset}/{target}: n_train {len(ctx.fit_idx)}, test R² {metrics['test']['r2']:.3f}, "
        f"MAE {metrics['test']['mae']:.3g} {unit} ({wall:.0f} s)")
    record = {
        "family": "stacked", "stage": "image", "dataset": dataset, "target": target, "unit": unit,
        "n_train": len(ctx.fit_idx), "n_val": len(ctx.val_idx), "n_test": len(ctx.test_idx),
        "seed": plan.seed, "split": {"test_fraction": plan.test_fraction, "split_seed": plan.seed,
                                     "validation": f"fold 0 of {plan.n_folds}"},
        "metrics": metrics, "standardiser": {"mean": ctx.scaler.mean, "std": ctx.scaler.std},
        "inputs": {"image": {"column": ECD_IMAGE, "size": plan.image.image_size, "mean": list(IMAGENET_MEAN),
                             "std": list(IMAGENET_STD), "resample": RESAMPLE}},
        "ecd": provenance["ecd"], "dft": plan.dft.describe(),
        "density_grid": list(plan.density_grid) if plan.density_grid else None,
        "train_config": plan.train.as_dict(),
        "history": [{"stage": h.stage, "epochs": h.epochs_run, "best_epoch": h.best_epoch + 1,
                     "train": h.train_loss, "val": h.val_loss} for h in histories],
        "wall_s": round(wall, 1), "dataset_provenance": {k: provenance[k] for k in KEPT_PROVENANCE if k in provenance},
        "code_version": code_version(), "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return model.save(folder, **record)
