"""Run plumbing shared by every model family (AutoMM, baselines, fusion) and by ``predict``.

One :class:`RunConfig` defines a run; :func:`prepare_split` turns a dataset table into the
train/test frames of that run (the test split is by material id and the run seed, so every
family of a (target, seed) shares one test set); :func:`validation_split` carves the validation
rows used for early stopping and model selection out of the *training* rows only;
:class:`TargetTransform` is the optional log10 target (metrics are always computed after the
back-transform, in the target's unit); :func:`run_summary` / :func:`run_provenance` /
:func:`write_predictions` write what every run folder holds.

Modalities and their columns:

=========  =====================================================================================
tabular    structure embedding columns ``<featuriser>_NNN`` of the featurisers named in
           ``RunConfig.features`` (e.g. ``("chgnet", "magpie")``; empty = every featuriser the
           table has); if the table has none, ``nsites`` and ``spg`` (never ``volume``: it
           leaks Vol/atom and Mag/vol)
image      ``image_path`` (rendered structure PNG)
text       ``text_composition`` (costa2025's "Ac Hg 2 Cd 2"), or ``text_robocrys``
=========  =====================================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal import schema
from matmodal.metrics import regression_metrics
from matmodal.splits import train_test_split_ids

if TYPE_CHECKING:
    from matmodal.config import Settings

ID = schema.MATERIAL_ID
MODALITIES = ("tabular", "image", "text")
COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("tabular",), ("image",), ("text",), ("tabular", "image"), ("tabular", "text"),
    ("image", "text"), ("tabular", "image", "text"),
)
_PAPER_WORD = {"tabular": "Tabular", "image": "Images", "text": "Text"}
EMBEDDING_COLUMN = schema.EMBEDDING_COLUMN
FALLBACK_TABULAR = ("nsites", "spg")
IMAGE_COLUMN = schema.IMAGE_PATH
RESULT = "result.json"
PREDICTIONS = "predictions.parquet"
CONFIG = "config.json"
MODEL = "model"
CURVE = "learning_curve.csv"  # per-epoch/iteration training and validation loss of a run
TRANSFORMS = ("none", "log10")


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


FEATURISER_LABELS = {"chgnet": "CHGNet", "magpie": "Magpie", "potnet": "PotNet"}


def features_label(features: Sequence[str]) -> str:
    """``("chgnet", "magpie")`` -> ``"CHGNet + Magpie"``; empty -> ``"all features"``."""
    return " + ".join(FEATURISER_LABELS.get(f, f) for f in features) or "all features"


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run; ``key`` hashes it (resume only reuses equal keys).

    Recipe fields (set per modality by ``notebooks/profiles.yaml``, see :mod:`matmodal.models.recipe`):
    ``epochs``, ``learning_rate``, ``tabular_layers`` × ``tabular_width`` (AutoMM
    ``numerical_mlp``), ``dropout``, ``patience`` (early stopping, in validation checks, on the
    ``validation_fraction`` of the *training* rows), ``target_transform`` (``"log10"``: fit on
    log10 of the target, predictions back-transformed before any metric).
    """

    dataset: str
    target: str
    modalities: tuple[str, ...]
    seed: int = 0
    model: str = "automm"  # a family of matmodal.models.families.FAMILIES
    epochs: int = 30
    backbone_profile: str = "offline"
    profile: str = "quick"  # the run profile (quick/full/paper), recorded in the provenance
    tabular_model: str = "numerical_mlp"  # or "ft_transformer"
    features: tuple[str, ...] = ()  # featurisers the tabular modality sees; () = every one present
    text_column: str = "text_composition"
    image_size: int = 64  # px fed to the image backbone
    max_text_len: int = 512  # tokens (robocrys descriptions run to a few hundred)
    batch_size: int = 32
    learning_rate: float = 1e-3
    tabular_layers: int = 3
    tabular_width: int = 256
    dropout: float = 0.2
    patience: int = 10  # validation checks without improvement before stopping
    validation_fraction: float = 0.15  # of the training rows; the test split is never seen
    target_transform: str = "none"  # or "log10"
    preset: str = "high_quality"
    test_fraction: float = 0.15
    max_rows: int | None = None  # seeded subsample (seed 0) of the labelled rows, before splitting
    attribution: bool = True  # modality removal/shuffle at test time (multimodal AutoMM runs)
    extra: tuple[tuple[str, Any], ...] = field(default=())  # more family hyperparameters
    recipe_name: str = ""  # names a recipe in the run id and row label ("" = the original recipe)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", parse_combination(self.modalities))
        object.__setattr__(self, "features", tuple(self.features))
        if self.learning_rate is None or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r} (no silent preset fallback)")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.target_transform not in TRANSFORMS:
            raise ValueError(f"unknown target_transform {self.target_transform!r} (known: {', '.join(TRANSFORMS)})")
        if not all(ch.isalnum() for ch in self.recipe_name):
            raise ValueError(f"recipe_name must be letters and digits (it names run folders), got {self.recipe_name!r}")

    @property
    def combination(self) -> str:
        return combination_name(self.modalities)

    @property
    def run_id(self) -> str:
        combo = "tabular" if self.model in ("mean", "gbm") else self.combination
        if self.model == "ensemble":  # its members name it
            combo = str(dict(self.extra).get("ensemble.members", "")).replace("|", ",").replace(":", ".")
        used = self.features and "tabular" in self.modalities and self.model != "mean"
        features = f"-{'+'.join(self.features)}" if used else ""
        log = "-log10" if self.target_transform == "log10" else ""
        recipe = f"-{self.recipe_name}" if self.recipe_name else ""
        return f"{self.model}{features}{log}{recipe}__{self.target}__{combo}__seed{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        """The config as JSON-able fields; an empty ``recipe_name`` is left out, so runs stored
        before that field existed keep their key."""
        out = {**asdict(self), "modalities": list(self.modalities), "features": list(self.features),
               "extra": [list(e) for e in self.extra]}
        if not self.recipe_name:
            del out["recipe_name"]
        return out

    @property
    def key(self) -> str:
        return sha256(json.dumps(self.as_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = cls.__dataclass_fields__
        data = {k: v for k, v in data.items() if k in known}
        data = {**data, "modalities": tuple(data["modalities"]), "features": tuple(data.get("features", ())),
                "extra": tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in data.get("extra", ()))}
        if data.get("learning_rate") is None:
            data.pop("learning_rate", None)
        return cls(**data)


def embedding_prefixes(table: pd.DataFrame) -> list[str]:
    """Featuriser names that have ``<name>_NNN`` columns in ``table`` (in column order)."""
    return list(dict.fromkeys(c.rsplit("_", 1)[0] for c in table.columns if EMBEDDING_COLUMN.match(c)))


def tabular_columns(table: pd.DataFrame, features: Sequence[str] = ()) -> list[str]:
    """Embedding columns of the chosen featurisers (``()``: every one); without any embedding
    column in the table, the leak-free fallback ``nsites``, ``spg``.

    Raises when a named featuriser has no column in ``table``.
    """
    present = embedding_prefixes(table)
    missing = [f for f in features if f not in present]
    if missing:
        raise ValueError(f"featuriser(s) {missing} have no <name>_NNN columns in this table "
                         f"(present: {present or 'none'}); build the dataset with them or change `features`")
    chosen = set(features or present)
    embedding = [c for c in table.columns if EMBEDDING_COLUMN.match(c) and c.rsplit("_", 1)[0] in chosen]
    return embedding or [c for c in FALLBACK_TABULAR if c in table.columns]


def modality_columns(table: pd.DataFrame, config: RunConfig) -> dict[str, list[str]]:
    """Columns of each requested modality; raises when a modality has none in ``table``."""
    chosen: dict[str, list[str]] = {}
    for modality in config.modalities:
        names = {"tabular": lambda: tabular_columns(table, config.features), "image": lambda: [IMAGE_COLUMN],
                 "text": lambda: [config.text_column]}[modality]()
        present = [c for c in names if c in table.columns and table[c].notna().any()]
        if not present:
            raise ValueError(f"modality {modality!r} has no data in dataset {config.dataset!r} (columns {names})")
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


def validation_split(train: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(fit, validation)`` rows carved out of the training frame only (by id, seeded)."""
    _, val_ids = train_test_split_ids(train[ID], fraction, seed)
    val = train[ID].isin(set(val_ids))
    return train[~val].reset_index(drop=True), train[val].reset_index(drop=True)


@dataclass(frozen=True)
class TargetTransform:
    """The target as the model sees it: identity, or log10 (moduli; values must be > 0)."""

    kind: str = "none"

    def forward(self, y: np.ndarray | pd.Series, what: str = "target") -> np.ndarray:
        values = np.asarray(y, dtype=float)
        if self.kind == "none":
            return values
        bad = np.flatnonzero(~(values > 0))
        if len(bad):
            raise ValueError(f"log10 {what}: {len(bad)} value(s) <= 0 (first at row {bad[0]}: {values[bad[0]]})")
        return np.log10(values)

    def inverse(self, z: np.ndarray | pd.Series) -> np.ndarray:
        values = np.asarray(z, dtype=float)
        return values if self.kind == "none" else np.power(10.0, values)


def write_predictions(split: SplitData, pred: np.ndarray, config: RunConfig, run_dir: Path) -> None:
    pd.DataFrame({ID: split.test[ID], "y_true": split.test[config.target].astype(float), "y_pred": pred}
                 ).to_parquet(run_dir / PREDICTIONS, index=False)


def write_curve(curve: pd.DataFrame, run_dir: Path) -> str | None:
    """Write a run's learning curve (columns: step, split, loss [, metric]); returns the file name."""
    if curve is None or curve.empty:
        return None
    curve.to_csv(run_dir / CURVE, index=False, float_format="%.6g")
    return CURVE


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run_summary(split: SplitData, pred: np.ndarray, config: RunConfig, started: float,
                settings: Settings | None = None, **extra: Any) -> dict[str, Any]:
    """The common part of every run's ``result.json``."""
    return {
        "status": "ok", "run_id": config.run_id, "key": config.key, "config": config.as_dict(),
        "metrics": regression_metrics(split.test[config.target], pred),
        "n_labelled": split.n_labelled, "n_train": len(split.train), "n_test": len(split.test),
        "n_missing_modality": split.n_missing_modality,
        "feature_columns": split.columns,
        "wall_s": round(time.perf_counter() - started, 2), "torch_threads": _threads(),
        "provenance": run_provenance(config, settings), **extra,
    }


def run_provenance(config: RunConfig, settings: Settings | None = None) -> dict[str, Any]:
    """:func:`matmodal.provenance.base` for *this run*: its profile and seed (never the process-wide
    settings' profile), the backbone profile and the library versions."""
    from importlib.metadata import version

    from matmodal import provenance
    from matmodal.config import Profile, get_settings

    run_settings = (settings or get_settings()).model_copy(
        update={"profile": Profile(config.profile), "seed": config.seed})
    libraries = ("autogluon.multimodal", "torch", "transformers", "timm", "scikit-learn")
    return provenance.base(run_settings, seed=config.seed, backbone_profile=config.backbone_profile,
                           versions={name: version(name) for name in libraries})


def curve_summary(curve: pd.DataFrame) -> dict[str, Any]:
    """Convergence at a glance: validation checks, the best one (step, loss) and the last loss."""
    val = curve[curve["split"] == "val"] if len(curve) else curve
    if not len(val):
        return {}
    best = val.loc[val["loss"].idxmin()]
    return {"val_checks": len(val), "best_val_step": int(best["step"]), "last_step": int(val["step"].iloc[-1]),
            "best_val": float(best["loss"]), "last_val": float(val["loss"].iloc[-1])}


def convergence_frame(root: Path, results: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run of ``results`` (dataset, run_id) with :func:`curve_summary` of its
    ``learning_curve.csv`` (runs without a curve, e.g. ``mean``, are left out)."""
    rows = []
    for row in results[results["status"] == "ok"].itertuples():
        path = Path(root) / row.dataset / row.run_id / CURVE
        if path.exists():
            rows.append({"dataset": row.dataset, "target": row.target, "label": row.label, "seed": row.seed,
                         **curve_summary(pd.read_csv(path))})
    return pd.DataFrame(rows)
