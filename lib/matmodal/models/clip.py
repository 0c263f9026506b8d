"""massa2024 §2.2: CLIP with a single linear layer on top for regression.

The regressor concatenates CLIP's projected image and text embeddings and maps them to one
value with one ``nn.Linear``; the whole model is fine-tuned (stage ``full``), optionally after
a head-only warm-up. Weights come from a local checkpoint directory or a hub name when they can
be loaded (``CLIPModel.from_pretrained``), otherwise the same architecture is randomly
initialised; :meth:`ClipRegressor.provenance` records which, and from where.
``ClipRegressor.save`` / :func:`matmodal.models.stacked.load_regressor` save and load it
(safetensors + JSON config, :mod:`matmodal.models.saving`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from matmodal.models import saving
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

    architecture = "clip"

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

    def specs(self) -> dict[str, Any]:
        return {"clip": self.info["clip_spec"]}

    @classmethod
    def rebuild(cls, specs: dict[str, Any]) -> ClipRegressor:
        """The saved CLIP's architecture at random init (the saved weights replace it; a pretrained
        checkpoint is rebuilt from its own config when it is still at hand, else CLIP's defaults)."""
        from transformers import CLIPConfig, CLIPModel

        spec = ClipSpec(**specs["clip"])
        if spec.source_name:
            try:
                config = CLIPConfig.from_pretrained(spec.source_name)
                return cls(CLIPModel(config), {"clip_spec": asdict(spec)})
            except Exception:  # offline hub, moved folder: the random-init shape of the spec
                pass
        clip, _, info = build_clip(ClipSpec(**{**specs["clip"], "checkpoint": None}))
        return cls(clip, {**info, "clip_spec": asdict(spec)})

    def save(self, folder: Path, **record: Any) -> dict[str, Any]:
        return saving.save_regressor(self, folder, **record)


def clip_regressor(spec: ClipSpec) -> tuple[ClipRegressor, Tokenizer]:
    """A fresh CLIP regressor for ``spec`` and the tokenizer its texts need."""
    clip, tokenizer, info = build_clip(spec)
    return ClipRegressor(clip, info), tokenizer


# --------------------------------------------------------------------------- CLIP-style from pretrained towers


@dataclass(frozen=True)
class TowerClipSpec:
    """CLIP-style model over two locked towers' cached features (the offline stand-in for CLIP).

    Towers: an image backbone (EfficientNet-Lite0, ImageNet-pretrained or random init) and a text
    transformer (MiniLM, pretrained or random init), both frozen; their features (``image_dim``,
    ``text_dim``) are computed once. Trained: one linear projection per tower into a shared
    ``projection_dim`` space, first aligned contrastively (symmetric InfoNCE, learnable
    temperature; ``align_epochs=0`` skips it) on image–text pairs of the fold's *fitting* rows,
    then fine-tuned with massa2024's single linear regression layer on both projections.
    """

    image_dim: int = 1280
    text_dim: int = 384
    projection_dim: int = 128
    align_epochs: int = 30
    align_lr: float = 1e-3
    align_batch_size: int = 128
    temperature: float = 0.07  # initial; learnt (log-parametrised, clamped at 100× like CLIP)


class TowerClipRegressor(Regressor):
    """Projected (locked-tower) image and text features, concatenated, one ``nn.Linear`` -> 1 value."""

    def __init__(self, spec: TowerClipSpec, info: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec
        self.image_proj = nn.Linear(spec.image_dim, spec.projection_dim, bias=False)
        self.text_proj = nn.Linear(spec.text_dim, spec.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(1.0 / spec.temperature).log())
        self.head = nn.Linear(2 * spec.projection_dim, 1)
        self.info = {"clip_spec": asdict(spec), **info}

    def projections(self, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.image_proj(batch["image_features"]), self.text_proj(batch["text_features"])

    def encode(self, batch: Batch) -> Tensor:
        return torch.cat(self.projections(batch), dim=1)

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """``head``: the linear layer; ``full``: projections + head (the towers are locked)."""
        if stage == "full":
            return [self.image_proj, self.text_proj, self.head]
        return super().stage_modules(stage)

    def contrastive_loss(self, batch: Batch) -> Tensor:
        """Symmetric InfoNCE over the batch: row i's image matches row i's text."""
        image, text = (nn.functional.normalize(x, dim=-1) for x in self.projections(batch))
        logits = self.logit_scale.exp().clamp(max=100.0) * image @ text.T
        labels = torch.arange(len(logits))
        return (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels)) / 2

    @torch.no_grad()
    def retrieval_top1(self, batch: Batch) -> float:
        """Fraction of images whose nearest text (cosine) is their own (chance = 1/n)."""
        image, text = (nn.functional.normalize(x, dim=-1) for x in self.projections(batch))
        return float(((image @ text.T).argmax(dim=1) == torch.arange(len(image))).float().mean())

    def provenance(self) -> dict[str, Any]:
        return {"family": "clip", **self.info}


def align(model: TowerClipRegressor, tensors: Batch, fit_idx: Tensor, val_idx: Tensor,
          generator: torch.Generator) -> dict[str, Any]:
    """Contrastive alignment of the projections on the ``fit_idx`` pairs (val rows only measured).

    Returns the per-epoch training loss and image→text top-1 retrieval on the validation rows
    before and after (chance = 1 / len(val_idx)).
    """
    spec = model.spec
    params = [model.image_proj.weight, model.text_proj.weight, model.logit_scale]
    optimizer = torch.optim.AdamW(params, lr=spec.align_lr, weight_decay=1e-4)
    val = {k: v[val_idx] for k, v in tensors.items()}
    before = model.retrieval_top1(val)
    losses = []
    for _ in range(spec.align_epochs):
        order = fit_idx[torch.randperm(len(fit_idx), generator=generator)]
        epoch = []
        for start in range(0, len(order) - 1, spec.align_batch_size):
            rows = order[start:start + spec.align_batch_size]
            if len(rows) < 2:
                continue
            optimizer.zero_grad()
            loss = model.contrastive_loss({k: v[rows] for k, v in tensors.items()})
            loss.backward()
            optimizer.step()
            epoch.append(loss.item())
        losses.append(float(sum(epoch) / max(len(epoch), 1)))
    return {"align_loss": losses, "val_top1_before": before, "val_top1_after": model.retrieval_top1(val),
            "val_chance": 1.0 / max(len(val_idx), 1)}
