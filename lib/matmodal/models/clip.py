"""massa2024 §2.2: CLIP with a single linear layer on top for regression.

The regressor concatenates CLIP's projected image and text embeddings and maps them to one
value with one ``nn.Linear``; the whole model is fine-tuned (stage ``full``), optionally after
a head-only warm-up. Weights come from a local checkpoint directory or a hub name when they can
be loaded (``CLIPModel.from_pretrained``), otherwise the same architecture is randomly
initialised; :meth:`ClipRegressor.provenance` records which, and from where.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from matmodal.models.torch_common import (
    Batch,
    Regressor,
    Tokenizer,
    first_tokenizer,
    hf_tokenizer,
    open_clip_tokenizer,
)

HUB_NAMES = {32: "openai/clip-vit-base-patch32", 16: "openai/clip-vit-base-patch16"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP: patch size, image size, checkpoint, and (for random init) the tower sizes.

    ``checkpoint``: a local directory or hub name (``"hub"`` = the massa2024 ``openai/clip-vit-base-
    patch{16,32}``); ``None`` = random init. ``width=None`` keeps ViT-B/text-transformer defaults;
    an int builds a small CLIP (CPU runs, tests) with that width for both towers.
    """

    patch_size: int = 32
    image_size: int = 224
    checkpoint: str | None = None
    width: int | None = None
    layers: int = 2
    heads: int = 2
    projection_dim: int = 64
    max_text_length: int = 77

    @property
    def source_name(self) -> str | None:
        return HUB_NAMES[self.patch_size] if self.checkpoint == "hub" else self.checkpoint


def _small_towers(spec: ClipSpec, vocab_size: int, eos_id: int) -> dict[str, Any]:
    tower = {"hidden_size": spec.width, "intermediate_size": 4 * (spec.width or 0),
             "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads}
    return {"vision_config": {**tower, "image_size": spec.image_size, "patch_size": spec.patch_size},
            "text_config": {**tower, "vocab_size": vocab_size, "eos_token_id": eos_id,
                            "max_position_embeddings": spec.max_text_length},
            "projection_dim": spec.projection_dim}


def _random_clip(spec: ClipSpec, tokenizer: Tokenizer) -> nn.Module:
    from transformers import CLIPConfig, CLIPModel

    if spec.width is not None:
        return CLIPModel(CLIPConfig(**_small_towers(spec, tokenizer.vocab_size, tokenizer.eos_id)))
    config = CLIPConfig(
        vision_config={"image_size": spec.image_size, "patch_size": spec.patch_size},
        text_config={"vocab_size": tokenizer.vocab_size, "eos_token_id": tokenizer.eos_id,
                     "max_position_embeddings": spec.max_text_length},
    )
    return CLIPModel(config)


def clip_tokenizer(spec: ClipSpec) -> tuple[Tokenizer, list[str]]:
    """The checkpoint's CLIP tokenizer when usable, else open_clip's bundled BPE (offline)."""
    from transformers import CLIPTokenizer

    candidates = []
    if spec.source_name:
        candidates.append(lambda: hf_tokenizer(spec.source_name, CLIPTokenizer))
    candidates.append(lambda: open_clip_tokenizer(f"ViT-B-{spec.patch_size}"))
    return first_tokenizer(candidates)


def build_clip(spec: ClipSpec) -> tuple[nn.Module, Tokenizer, dict[str, Any]]:
    """CLIP (pretrained when loadable, else random init), its tokenizer and the provenance."""
    tokenizer, tokenizer_failures = clip_tokenizer(spec)
    info: dict[str, Any] = {"clip_spec": asdict(spec), **tokenizer.info(),
                            "tokenizer_fallback_reasons": tokenizer_failures}
    if spec.source_name:
        from transformers import CLIPModel

        try:
            model = CLIPModel.from_pretrained(spec.source_name)
            return model, tokenizer, {**info, "clip_pretrained": True, "clip_source": spec.source_name}
        except Exception as error:  # offline hub, missing dir, bad files
            info["clip_load_error"] = f"{type(error).__name__}: {str(error)[:200]}"
    model = _random_clip(spec, tokenizer)
    return model, tokenizer, {**info, "clip_pretrained": False, "clip_source": "random init"}


def _pooled(output: Any) -> Tensor:
    """Projected embeddings from ``get_*_features`` (a tensor, or an output with ``pooler_output``)."""
    return output if isinstance(output, Tensor) else output.pooler_output


class ClipRegressor(Regressor):
    """CLIP image + text embeddings, concatenated, then one linear layer -> 1 value."""

    def __init__(self, clip: nn.Module, info: dict[str, Any]) -> None:
        super().__init__()
        self.clip = clip
        dim = clip.config.projection_dim
        self.head = nn.Linear(2 * dim, 1)
        self.info = info

    def encode(self, batch: Batch) -> Tensor:
        image = _pooled(self.clip.get_image_features(pixel_values=batch["pixel_values"]))
        text = _pooled(self.clip.get_text_features(input_ids=batch["input_ids"],
                                                    attention_mask=batch["attention_mask"]))
        return torch.cat([image, text], dim=1)

    def provenance(self) -> dict[str, Any]:
        return {"family": "clip", **self.info}


def clip_regressor(spec: ClipSpec) -> tuple[ClipRegressor, Tokenizer]:
    """A fresh CLIP regressor for ``spec`` and the tokenizer its texts need."""
    clip, tokenizer, info = build_clip(spec)
    return ClipRegressor(clip, info), tokenizer
