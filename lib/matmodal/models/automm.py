"""costa2025 §4.4: one AutoGluon ``MultiModalPredictor`` per (modality combination, target, seed).

:func:`train_automm` trains on the 85 % split, predicts the 15 % test split, saves the predictor
(``<run_dir>/model``), the test predictions and a ``result.json`` with metrics, timings, the
backbones (and whether they were pretrained), and the modality attribution of multimodal runs
(the change in test error when one modality is removed or shuffled at test time).

Modalities and their columns:

=========  =====================================================================================
tabular    structure embedding columns ``<featuriser>_NNN`` (PotNet in costa2025); if the table
           has none, ``nsites`` and ``spg`` (never ``volume``: it leaks Vol/atom and Mag/vol)
image      ``image_path`` (rendered structure PNG)
text       ``text_composition`` (costa2025's "Ac Hg 2 Cd 2"), or ``text_robocrys``
=========  =====================================================================================

Training is by epochs (``optim.max_epochs``), never by time limit, with
``env.deterministic=True`` and fp32 on CPU, so one seed gives one result.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmodal.metrics import regression_metrics
from matmodal.models.backbones import Backbone, resolve_backbone
from matmodal.splits import train_test_split_ids

log = logging.getLogger(__name__)

ID = "material_id"
MODALITIES = ("tabular", "image", "text")
COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("tabular",), ("image",), ("text",), ("tabular", "image"), ("tabular", "text"),
    ("image", "text"), ("tabular", "image", "text"),
)
_PAPER_WORD = {"tabular": "Tabular", "image": "Images", "text": "Text"}
EMBEDDING_COLUMN = re.compile(r"^[a-z][a-z0-9]*_\d{3}$")
FALLBACK_TABULAR = ("nsites", "spg")
IMAGE_COLUMN = "image_path"
RESULT = "result.json"
PREDICTIONS = "predictions.parquet"
CONFIG = "config.json"
MODEL = "model"


def parse_combination(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"image+text"`` or ``["text", "image"]`` -> ``("image", "text")`` (canonical order)."""
    parts = value.replace(" ", "").split("+") if isinstance(value, str) else list(value)
    words = {"images": "image", "tab": "tabular"}
    chosen = {words.get(p.lower(), p.lower()) for p in parts if p}
    unknown = chosen - set(MODALITIES)
    if unknown or not chosen:
        raise ValueError(f"unknown modality {sorted(unknown)} in {value!r} (known: {', '.join(MODALITIES)})")
    return tuple(m for m in MODALITIES if m in chosen)


def combination_name(modalities: Sequence[str]) -> str:
    return "+".join(parse_combination(modalities))


def combination_label(modalities: str | Sequence[str]) -> str:
    """The paper's row label, e.g. ``"Images + Text"``."""
    return " + ".join(_PAPER_WORD[m] for m in parse_combination(modalities))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run; ``key`` hashes it (resume only reuses equal keys)."""

    dataset: str
    target: str
    modalities: tuple[str, ...]
    seed: int = 0
    model: str = "automm"  # "automm", or a baseline: "mean", "gbm"
    epochs: int = 1
    backbone_profile: str = "offline"
    tabular_model: str = "ft_transformer"  # or "numerical_mlp"
    text_column: str = "text_composition"
    image_size: int = 64  # px fed to the image backbone
    max_text_len: int = 32  # tokens
    batch_size: int = 32
    learning_rate: float | None = None  # None: the preset's
    preset: str = "high_quality"
    test_fraction: float = 0.15
    max_rows: int | None = None  # seeded subsample (seed 0) of the labelled rows, before splitting
    attribution: bool = True  # modality removal/shuffle at test time (multimodal AutoMM runs)
    extra: tuple[tuple[str, Any], ...] = field(default=())  # more AutoMM hyperparameters

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", parse_combination(self.modalities))

    @property
    def combination(self) -> str:
        return combination_name(self.modalities)

    @property
    def run_id(self) -> str:
        combo = self.combination if self.model == "automm" else "tabular"
        return f"{self.model}__{self.target}__{combo}__seed{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modalities": list(self.modalities), "extra": [list(e) for e in self.extra]}

    @property
    def key(self) -> str:
        return sha256(json.dumps(self.as_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = {**data, "modalities": tuple(data["modalities"]),
                "extra": tuple(tuple(e) for e in data.get("extra", ()))}
        return cls(**data)


def tabular_columns(table: pd.DataFrame) -> list[str]:
    """Embedding columns ``<featuriser>_NNN``; else the leak-free fallback ``nsites``, ``spg``."""
    embedding = [c for c in table.columns if EMBEDDING_COLUMN.match(c)]
    return embedding or [c for c in FALLBACK_TABULAR if c in table.columns]


def modality_columns(table: pd.DataFrame, config: RunConfig) -> dict[str, list[str]]:
    """Columns of each requested modality; raises when a modality has none in ``table``."""
    columns = {"tabular": tabular_columns(table), "image": [IMAGE_COLUMN], "text": [config.text_column]}
    chosen = {m: columns[m] for m in config.modalities}
    for modality, names in chosen.items():
        present = [c for c in names if c in table.columns and table[c].notna().any()]
        if not present:
            raise ValueError(f"modality {modality!r} has no data in this dataset (columns {names})")
        chosen[modality] = present
    return chosen


@dataclass
class SplitData:
    """Train/test frames (id, modality columns, target) and what was left out."""

    train: pd.DataFrame
    test: pd.DataFrame
    columns: dict[str, list[str]]
    n_labelled: int
    n_missing_modality: int


def subsample_ids(ids: Sequence[str], max_rows: int | None) -> list[str]:
    """A seeded (seed 0) subset of ``max_rows`` ids, the same for every run and seed."""
    ordered = sorted(ids)
    if max_rows is None or max_rows >= len(ordered):
        return ordered
    chosen = np.random.default_rng(0).choice(len(ordered), size=max_rows, replace=False)
    return sorted(ordered[i] for i in chosen)


def prepare_split(table: pd.DataFrame, config: RunConfig) -> SplitData:
    """Rows with a finite target, split by id (seed = run seed); rows missing a used modality
    are dropped after splitting, so every combination shares the same test ids otherwise."""
    if config.target not in table.columns:
        raise ValueError(f"target {config.target!r} is not a column of dataset {config.dataset!r}")
    columns = modality_columns(table, config)
    labelled = table[np.isfinite(table[config.target].astype(float))]
    labelled = labelled[labelled[ID].isin(subsample_ids(labelled[ID].tolist(), config.max_rows))]
    train_ids, test_ids = train_test_split_ids(labelled[ID], config.test_fraction, config.seed)
    numeric = columns.get("tabular", [])
    used = [c for names in columns.values() for c in names]
    frame = labelled[[ID, *used, config.target]].copy()
    complete = frame[[c for c in used if c not in numeric]].notna().all(axis=1)
    if numeric:
        complete &= frame[numeric].notna().any(axis=1)
    kept = frame[complete]
    split = kept[ID].isin(set(test_ids))
    train, test = kept[~split & kept[ID].isin(set(train_ids))], kept[split]
    if numeric:  # remaining gaps in embeddings: the train mean (from train only)
        means = train[numeric].astype(float).mean()
        train, test = train.fillna(means), test.fillna(means)
    return SplitData(train.reset_index(drop=True), test.reset_index(drop=True), columns,
                     len(labelled), int((~complete).sum()))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_backbones(config: RunConfig, cache_dir: Path | None = None) -> dict[str, Backbone]:
    """The backbone of each modality of ``config`` under its backbone profile."""
    backbones = {m: resolve_backbone(m, config.backbone_profile, cache_dir=cache_dir, seed=config.seed)
                 for m in config.modalities}
    if "tabular" in backbones and config.backbone_profile == "offline":
        backbones["tabular"] = Backbone("tabular", config.tabular_model, None, False,
                                        "architecture only, trained from scratch")
    return backbones


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def automm_hyperparameters(config: RunConfig, backbones: dict[str, Backbone]) -> dict[str, Any]:
    """AutoMM hyperparameters: the chosen backbones, epochs, and deterministic CPU settings."""
    names: list[str] = []
    hp: dict[str, Any] = {}
    if "tabular" in backbones:
        names.append(backbones["tabular"].name)
    if "image" in backbones:
        names.append("timm_image")
        hp["model.timm_image.checkpoint_name"] = backbones["image"].checkpoint
        hp["model.timm_image.image_size"] = config.image_size
    if "text" in backbones:
        names.append("hf_text")
        hp["model.hf_text.checkpoint_name"] = backbones["text"].checkpoint
        hp["model.hf_text.max_text_len"] = config.max_text_len
    if len(names) > 1:
        names.append("fusion_mlp")
    gpu = _cuda()
    hp.update({
        "model.names": names, "optim.max_epochs": config.epochs, "optim.top_k": 1,
        "optim.val_check_interval": 1.0,
        "env.num_gpus": 1 if gpu else 0, "env.precision": "16-mixed" if gpu else 32,
        "env.num_workers": 0, "env.num_workers_inference": 0, "env.deterministic": not gpu,
        "env.per_gpu_batch_size": config.batch_size, "env.batch_size": config.batch_size,
    })
    if config.learning_rate is not None:
        hp["optim.lr"] = config.learning_rate
    hp.update(dict(config.extra))
    return hp


def column_types(columns: dict[str, list[str]]) -> dict[str, str]:
    types = {c: "numerical" for c in columns.get("tabular", [])}
    types.update({c: "image_path" for c in columns.get("image", [])})
    types.update({c: "text" for c in columns.get("text", [])})
    return types


def fit_predictor(split: SplitData, config: RunConfig, backbones: dict[str, Backbone], model_dir: Path,
                  verbosity: int = 1) -> Any:
    """Train one ``MultiModalPredictor`` on ``split.train`` into ``model_dir`` (replaced)."""
    from autogluon.multimodal import MultiModalPredictor

    if model_dir.exists():
        shutil.rmtree(model_dir)
    seed_everything(config.seed)
    predictor = MultiModalPredictor(label=config.target, problem_type="regression", eval_metric="rmse",
                                    path=str(model_dir), presets=config.preset, verbosity=verbosity)
    predictor.fit(split.train.drop(columns=[ID]), hyperparameters=automm_hyperparameters(config, backbones),
                  seed=config.seed, column_types=column_types(split.columns))
    return predictor


def predict_frame(predictor: Any, frame: pd.DataFrame) -> np.ndarray:
    """Predictions as a float array (in the target's unit)."""
    values = predictor.predict(frame.drop(columns=[ID], errors="ignore"), as_pandas=False)
    return np.asarray(values, dtype=float).reshape(-1)


def ablate(frame: pd.DataFrame, columns: list[str], modality: str, mode: str, seed: int,
           fill: dict[str, float]) -> pd.DataFrame:
    """``frame`` with one modality removed (empty text, no image, train-mean numbers) or its
    values shuffled across rows (seeded)."""
    out = frame.copy()
    if mode == "shuffle":
        order = np.random.default_rng(seed).permutation(len(out))
        out[columns] = out[columns].to_numpy()[order]
    elif modality == "text":
        out[columns] = ""
    elif modality == "image":
        out[columns] = None
    else:
        for column in columns:
            out[column] = fill[column]
    return out


def modality_attribution(predictor: Any, split: SplitData, config: RunConfig,
                         baseline: dict[str, float]) -> list[dict[str, Any]]:
    """Test error with each modality removed or shuffled; ``d_*`` = change vs the full input."""
    fill = split.train[split.columns.get("tabular", [])].mean().to_dict()
    rows = []
    for modality, cols in split.columns.items():
        for mode in ("remove", "shuffle"):
            try:
                pred = predict_frame(predictor, ablate(split.test, cols, modality, mode, config.seed, fill))
                metrics = regression_metrics(split.test[config.target], pred)
            except Exception as error:
                rows.append({"modality": modality, "mode": mode, "error": f"{type(error).__name__}: {error}"})
                continue
            rows.append({"modality": modality, "mode": mode, **metrics,
                         **{f"d_{k}": metrics[k] - baseline[k] for k in ("mae", "rmse", "mae_mad", "r2")}})
    return rows


def write_predictions(split: SplitData, pred: np.ndarray, config: RunConfig, run_dir: Path) -> None:
    pd.DataFrame({ID: split.test[ID], "y_true": split.test[config.target].astype(float), "y_pred": pred}
                 ).to_parquet(run_dir / PREDICTIONS, index=False)


def run_summary(split: SplitData, pred: np.ndarray, config: RunConfig, started: float, **extra: Any) -> dict[str, Any]:
    """The common part of every run's ``result.json``."""
    return {
        "status": "ok", "run_id": config.run_id, "key": config.key, "config": config.as_dict(),
        "metrics": regression_metrics(split.test[config.target], pred),
        "n_labelled": split.n_labelled, "n_train": len(split.train), "n_test": len(split.test),
        "n_missing_modality": split.n_missing_modality,
        "feature_columns": split.columns,
        "wall_s": round(time.perf_counter() - started, 2), "torch_threads": _threads(),
        "provenance": run_provenance(config), **extra,
    }


def run_provenance(config: RunConfig) -> dict[str, Any]:
    """:func:`matmodal.provenance.base` plus the run's seed and the library versions."""
    from importlib.metadata import version

    from matmodal import provenance
    from matmodal.config import get_settings

    libraries = ("autogluon.multimodal", "torch", "transformers", "timm", "scikit-learn")
    return provenance.base(get_settings(), seed=config.seed, backbone_profile=config.backbone_profile,
                           versions={name: version(name) for name in libraries})


def train_automm(table: pd.DataFrame, config: RunConfig, run_dir: Path, *, cache_dir: Path | None = None,
                 keep_model: bool = True, verbosity: int = 1) -> dict[str, Any]:
    """Train, predict the test split, save; returns (and writes) the run's ``result.json``."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    backbones = resolve_backbones(config, cache_dir)
    predictor = fit_predictor(split, config, backbones, run_dir / MODEL, verbosity)
    fit_s = time.perf_counter() - started
    pred = predict_frame(predictor, split.test)
    write_predictions(split, pred, config, run_dir)
    summary = run_summary(split, pred, config, started, fit_s=round(fit_s, 2),
                          backbones={k: b.as_dict() for k, b in backbones.items()},
                          pretrained={k: b.pretrained for k, b in backbones.items()},
                          model_dir=str(run_dir / MODEL) if keep_model else None)
    if config.attribution and len(config.modalities) > 1:
        summary["attribution"] = modality_attribution(predictor, split, config, summary["metrics"])
    if not keep_model:
        shutil.rmtree(run_dir / MODEL, ignore_errors=True)
    return summary
