"""costa2025 §4.4: one AutoGluon ``MultiModalPredictor`` per (modality combination, target, seed).

:func:`train_automm` trains on the 85 % split (its validation rows, for early stopping and
checkpoint selection, carved from those training rows by :func:`~matmodal.models.run_spec.validation_split`;
the test split is never seen during fitting), predicts the 15 % test split, saves the
predictor (``<run_dir>/model``), the test predictions, the learning curve
(``learning_curve.csv``: training loss per step, validation RMSE per check, from AutoMM's
TensorBoard log) and a ``result.json`` with metrics, timings, the backbones (and whether they
were pretrained), and the modality attribution of multimodal runs (the change in test error
when one modality is removed or shuffled at test time).

Run plumbing (``RunConfig``, splits, predictions, summaries, provenance, file names) lives in
:mod:`matmodal.models.run_spec`; its names are re-exported here for older callers.

Recipe ``towers: cached`` (:mod:`matmodal.models.recipe`): the frozen MiniLM / EfficientNet-Lite0
embeddings of each material (:mod:`matmodal.models.embeddings`, computed once and cached on disk)
replace the text and image columns as numerical columns (:func:`cached_tower_inputs`), so AutoMM
trains only its ``numerical_mlp`` on tabular + tower features: the frozen-tower model without
running the towers every epoch (no image or text augmentation).

Training is by epochs (``optim.max_epochs``, with early stopping after ``patience`` validation
checks without improvement), never by time limit, with ``env.deterministic=True`` and fp32 on
CPU, so one seed gives one result.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal.metrics import regression_metrics
from matmodal.models.backbones import Backbone, resolve_backbone
from matmodal.models.run_spec import (  # noqa: F401  (re-exported: the old home of these names)
    COMBINATIONS,
    CONFIG,
    CURVE,
    EMBEDDING_COLUMN,
    FALLBACK_TABULAR,
    ID,
    IMAGE_COLUMN,
    MODALITIES,
    MODEL,
    PREDICTIONS,
    RESULT,
    RunConfig,
    SplitData,
    TargetTransform,
    combination_label,
    combination_name,
    curve_summary,
    modality_columns,
    parse_combination,
    prepare_split,
    run_provenance,
    run_summary,
    subsample_ids,
    tabular_columns,
    validation_split,
    write_curve,
    write_predictions,
)
from matmodal.quiet import missing_nltk_data
from matmodal.seeding import seed_everything

if TYPE_CHECKING:
    from matmodal.config import Settings

log = logging.getLogger(__name__)


def resolve_backbones(config: RunConfig, cache_dir: Path | None = None) -> dict[str, Backbone]:
    """The backbone of each modality of ``config`` under its backbone profile."""
    backbones = {m: resolve_backbone(m, config.backbone_profile, cache_dir=cache_dir, seed=config.seed)
                 for m in config.modalities}
    if "tabular" in backbones and config.backbone_profile == "offline":
        backbones["tabular"] = Backbone("tabular", config.tabular_model, None, False,
                                        "architecture only, trained from scratch")
    return backbones


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def automm_hyperparameters(config: RunConfig, backbones: dict[str, Backbone]) -> dict[str, Any]:
    """AutoMM hyperparameters: the chosen backbones, the run's recipe (epochs, learning rate,
    MLP layers/width, dropout, early-stopping patience) and deterministic CPU settings."""
    names: list[str] = []
    hp: dict[str, Any] = {}
    if "tabular" in backbones:
        name = backbones["tabular"].name
        names.append(name)
        if name == "numerical_mlp":
            hp.update({"model.numerical_mlp.num_layers": config.tabular_layers,
                       "model.numerical_mlp.hidden_size": config.tabular_width,
                       "model.numerical_mlp.dropout": config.dropout})
    if "image" in backbones:
        names.append("timm_image")
        hp["model.timm_image.checkpoint_name"] = backbones["image"].checkpoint
        hp["model.timm_image.image_size"] = config.image_size
    if "text" in backbones:
        names.append("hf_text")
        hp["model.hf_text.checkpoint_name"] = backbones["text"].checkpoint
        hp["model.hf_text.max_text_len"] = config.max_text_len
        if missing_nltk_data():  # AutoMM's synonym augmentation of texts > 10 words needs nltk's corpora
            hp["model.hf_text.text_trivial_aug_maxscale"] = 0.0  # (without them it raises LookupError)
    if len(names) > 1:
        names.append("fusion_mlp")
    gpu = _cuda()
    hp.update({
        "model.names": names, "optim.max_epochs": config.epochs, "optim.top_k": 1,
        "optim.val_check_interval": 1.0, "optim.lr": config.learning_rate, "optim.patience": config.patience,
        "optim.log_every_n_steps": 1,
        "env.num_gpus": 1 if gpu else 0, "env.precision": "16-mixed" if gpu else 32,
        "env.num_workers": 0, "env.num_workers_inference": 0, "env.deterministic": not gpu,
        "env.per_gpu_batch_size": config.batch_size, "env.batch_size": config.batch_size,
    })
    for key, value in config.extra:  # recipe options; a model.<name>.* option of a model not in this run is skipped
        if not (key.startswith("matmodal.") or (key.startswith("model.") and key.split(".")[1] not in names)):
            hp[key] = list(value) if isinstance(value, tuple) else value
    return hp


CACHED_TOWERS = ("matmodal.towers", "cached")  # the RunConfig.extra entry of recipe ``towers: cached``
TOWER_PCA = "matmodal.tower_pca"  # RunConfig.extra: PCA components per cached tower (0 = every dimension)
TOWER_COLUMN = {"text": "minilm_{:03d}", "image": "efficientnet_lite0_{:04d}"}  # cached tower features
PROJECTION = "tower_projection.npz"  # in model/: per-tower PCA mean and components of a cached-tower run (no pickle)


def uses_cached_towers(config: RunConfig) -> bool:
    return CACHED_TOWERS in config.extra


def tower_vectors(frame: pd.DataFrame, config: RunConfig, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The frozen encoders' vectors of ``frame``'s text (``config.text_column``; MiniLM,
    mean-pooled, ``max_text_len`` tokens) and image (``image_path``; EfficientNet-Lite0 ImageNet,
    ``image_size`` px) columns, cached by content in ``<cache_dir>/embeddings``."""
    from matmodal.models import embeddings

    out = {}
    if "text" in config.modalities:
        out["text"] = embeddings.text_embeddings(frame[config.text_column].tolist(), max_len=config.max_text_len,
                                                 cache_dir=cache_dir)
    if "image" in config.modalities:
        out["image"] = embeddings.image_embeddings(frame[IMAGE_COLUMN].tolist(), size=config.image_size,
                                                   cache_dir=cache_dir)
    return {k: v.astype(float) for k, v in out.items()}


def fit_projection(vectors: dict[str, np.ndarray], config: RunConfig) -> dict[str, np.ndarray]:
    """PCA (``tower_pca`` components, seeded) of each tower's vectors as ``<modality>_mean`` /
    ``<modality>_components`` arrays; ``{}`` when ``tower_pca`` is 0 or unset."""
    from sklearn.decomposition import PCA

    components = int(dict(config.extra).get(TOWER_PCA, 0))
    out = {}
    for modality, values in vectors.items() if components else ():
        pca = PCA(n_components=min(components, *values.shape), random_state=config.seed).fit(values)
        out[f"{modality}_mean"], out[f"{modality}_components"] = pca.mean_, pca.components_
    return out


def cached_tower_inputs(frame: pd.DataFrame, config: RunConfig, cache_dir: Path | None = None,
                        projection: dict[str, np.ndarray] | None = None,
                        ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """``frame`` with its text and image columns replaced by :func:`tower_vectors` as numerical
    columns (projected by ``projection`` from :func:`fit_projection`, when given), and the new
    columns per modality. Frames of runs without ``towers: cached`` come back unchanged (``{}``)."""
    if not uses_cached_towers(config):
        return frame, {}
    return _tower_columns(frame, config, tower_vectors(frame, config, cache_dir), projection)


def _tower_columns(frame: pd.DataFrame, config: RunConfig, vectors: dict[str, np.ndarray],
                   projection: dict[str, np.ndarray] | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    raw = [config.text_column if m == "text" else IMAGE_COLUMN for m in vectors]
    parts, columns = [frame.drop(columns=raw)], {}
    for modality, values in vectors.items():
        if projection and f"{modality}_mean" in projection:
            values = (values - projection[f"{modality}_mean"]) @ projection[f"{modality}_components"].T
        columns[modality] = [TOWER_COLUMN[modality].format(i) for i in range(values.shape[1])]
        parts.append(pd.DataFrame(values, columns=columns[modality], index=frame.index))
    return pd.concat(parts, axis=1), columns


def cached_split(split: SplitData, config: RunConfig,
                 cache_dir: Path | None = None) -> tuple[SplitData, dict[str, np.ndarray]]:
    """:func:`cached_tower_inputs` of both frames of ``split``, with the projection fitted on the
    training rows only; returns the new split and the projection (``{}`` = none)."""
    if not uses_cached_towers(config):
        return split, {}
    vectors = tower_vectors(split.train, config, cache_dir)  # read once: fits the projection and fills train
    projection = fit_projection(vectors, config)
    train, columns = _tower_columns(split.train, config, vectors, projection)
    test, _ = cached_tower_inputs(split.test, config, cache_dir, projection)
    return SplitData(train, test, {**split.columns, **columns}, split.n_labelled, split.n_missing_modality), projection


def save_projection(projection: dict[str, np.ndarray], model_dir: Path) -> str | None:
    if not projection:
        return None
    np.savez(model_dir / PROJECTION, **projection)
    return PROJECTION


def load_projection(model_dir: Path) -> dict[str, np.ndarray]:
    """The projection a cached-tower run saved in ``model_dir`` (plain arrays, ``allow_pickle=False``);
    ``{}`` if none."""
    path = Path(model_dir) / PROJECTION
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def column_types(columns: dict[str, list[str]], numerical: bool = False) -> dict[str, str]:
    """AutoMM column types; ``numerical``: every column is a number (cached tower features)."""
    types = {c: "numerical" for c in columns.get("tabular", [])}
    types.update({c: "numerical" if numerical else "image_path" for c in columns.get("image", [])})
    types.update({c: "numerical" if numerical else "text" for c in columns.get("text", [])})
    return types


def model_backbones(config: RunConfig, backbones: dict[str, Backbone]) -> dict[str, Backbone]:
    """The models AutoMM itself runs: with cached towers only the ``numerical_mlp``."""
    if not uses_cached_towers(config):
        return backbones
    return {"tabular": Backbone("tabular", "numerical_mlp", None, False,
                                "architecture only, trained from scratch on tabular + cached tower features")}


def _model_frame(frame: pd.DataFrame, config: RunConfig, transform: TargetTransform) -> pd.DataFrame:
    out = frame.drop(columns=[ID])
    out[config.target] = transform.forward(out[config.target], f"{config.target} of dataset {config.dataset!r}")
    return out


def fit_predictor(split: SplitData, config: RunConfig, backbones: dict[str, Backbone], model_dir: Path,
                  verbosity: int = 1) -> Any:
    """Train one ``MultiModalPredictor`` into ``model_dir`` (replaced) on the training rows of
    ``split``, validating on rows carved from them (never on ``split.test``)."""
    from autogluon.multimodal import MultiModalPredictor

    if model_dir.exists():
        shutil.rmtree(model_dir)
    seed_everything(config.seed)
    transform = TargetTransform(config.target_transform)
    fit, val = validation_split(split.train, config.validation_fraction, config.seed)
    predictor = MultiModalPredictor(label=config.target, problem_type="regression", eval_metric="rmse",
                                    path=str(model_dir), presets=config.preset, verbosity=verbosity)
    predictor.fit(_model_frame(fit, config, transform), tuning_data=_model_frame(val, config, transform),
                  hyperparameters=automm_hyperparameters(config, model_backbones(config, backbones)), seed=config.seed,
                  column_types=column_types(split.columns, numerical=uses_cached_towers(config)))
    return predictor


def predict_frame(predictor: Any, frame: pd.DataFrame, transform: TargetTransform | None = None) -> np.ndarray:
    """Predictions as a float array in the target's unit (``transform`` undone)."""
    values = predictor.predict(frame.drop(columns=[ID], errors="ignore"), as_pandas=False)
    return (transform or TargetTransform()).inverse(np.asarray(values, dtype=float).reshape(-1))


def learning_curve(model_dir: Path) -> pd.DataFrame:
    """AutoMM's TensorBoard scalars as ``step, split, loss`` (AutoMM's standardised target scale):
    ``train`` = training loss, ``val`` = validation loss, ``val_rmse`` = validation RMSE, per check."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = []
    for events in sorted(Path(model_dir).glob("**/events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags = acc.Tags().get("scalars", [])
        for tag, split in (("train_loss", "train"), ("val_loss", "val"), ("val_root_mean_squared_error", "val_rmse")):
            if tag in tags:
                rows += [{"step": e.step, "split": split, "loss": e.value} for e in acc.Scalars(tag)]
    return pd.DataFrame(rows, columns=["step", "split", "loss"])


def ablate(frame: pd.DataFrame, columns: list[str], modality: str, mode: str, seed: int,
           fill: dict[str, float]) -> pd.DataFrame:
    """``frame`` with one modality removed (empty text, no image, train-mean numbers) or its
    values shuffled across rows (seeded)."""
    out = frame.copy()
    if mode == "shuffle":
        order = np.random.default_rng(seed).permutation(len(out))
        out[columns] = out[columns].to_numpy()[order]
    elif all(c in fill for c in columns):  # numbers (tabular, cached tower vectors): the train mean
        for column in columns:
            out[column] = fill[column]
    elif modality == "text":
        out[columns] = ""
    else:
        out[columns] = None
    return out


def modality_attribution(predictor: Any, split: SplitData, config: RunConfig,
                         baseline: dict[str, float]) -> list[dict[str, Any]]:
    """Test error with each modality removed or shuffled; ``d_*`` = change vs the full input."""
    numeric = [c for cols in split.columns.values() for c in cols if pd.api.types.is_numeric_dtype(split.train[c])]
    fill = split.train[numeric].mean().to_dict()
    transform = TargetTransform(config.target_transform)
    rows = []
    for modality, cols in split.columns.items():
        for mode in ("remove", "shuffle"):
            try:
                ablated = ablate(split.test, cols, modality, mode, config.seed, fill)
                metrics = regression_metrics(split.test[config.target], predict_frame(predictor, ablated, transform))
            except Exception as error:
                rows.append({"modality": modality, "mode": mode, "error": f"{type(error).__name__}: {error}"})
                continue
            rows.append({"modality": modality, "mode": mode, **metrics,
                         **{f"d_{k}": metrics[k] - baseline[k] for k in ("mae", "rmse", "mae_mad", "r2")}})
    return rows


def train_automm(table: pd.DataFrame, config: RunConfig, run_dir: Path, *, cache_dir: Path | None = None,
                 keep_model: bool = True, verbosity: int = 1, settings: Settings | None = None) -> dict[str, Any]:
    """Train, predict the test split, save; returns (and writes) the run's ``result.json``."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split, projection = cached_split(prepare_split(table, config), config, cache_dir)
    backbones = resolve_backbones(config, cache_dir)
    predictor = fit_predictor(split, config, backbones, run_dir / MODEL, verbosity)
    fit_s = time.perf_counter() - started
    pred = predict_frame(predictor, split.test, TargetTransform(config.target_transform))
    write_predictions(split, pred, config, run_dir)
    curve = learning_curve(run_dir / MODEL)
    summary = run_summary(split, pred, config, started, settings, fit_s=round(fit_s, 2),
                          backbones={k: b.as_dict() for k, b in backbones.items()},
                          pretrained={k: b.pretrained for k, b in backbones.items()},
                          towers="cached" if uses_cached_towers(config) else None,
                          tower_projection=save_projection(projection, run_dir / MODEL),
                          model_dir=str(run_dir / MODEL) if keep_model else None,
                          learning_curve=write_curve(curve, run_dir), **curve_summary(curve))
    if config.attribution and len(config.modalities) > 1:
        summary["attribution"] = modality_attribution(predictor, split, config, summary["metrics"])
    if not keep_model:
        shutil.rmtree(run_dir / MODEL, ignore_errors=True)
    return summary

