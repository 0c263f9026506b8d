"""Tune the massa2024 readouts on pretrained frozen towers on validation folds only; print the search.

Usage: python benchmarks/tune_massa_towers.py TABLE.parquet [--target k_vrh] [--level formula]
       [--image-size 224] [--features FILE] [--out search.csv]

TABLE: an MP elastic table with ``image_path`` and text columns (see ``docs/massa_models.md``).
Candidates differ in the readout learning rates and batch size; each runs the massa2024
protocol's 5 folds (1 run) for the stacked model and the CLIP-style model (EfficientNet-Lite0 +
MiniLM, aligned). Only the validation folds are summarised (test rows dropped first).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from matmodal.models.clip import TowerClipSpec
from matmodal.models.stacked import WHEEL, ImageSpec, TextSpec
from matmodal.models.torch_common import StageConfig, TrainConfig
from matmodal.protocols import (
    FeatureCache,
    ProtocolConfig,
    prepare,
    stacked_trainer,
    tower_clip_trainer,
    validation_search,
)

CANDIDATES = {  # name: (head epochs, head lr, full epochs, full lr, batch size); round 1, then round 2
    "lr 1e-3 / 1e-4": (30, 1e-3, 10, 1e-4, 64),
    "lr 3e-3 / 3e-4": (30, 3e-3, 10, 3e-4, 64),
    "lr 3e-4 / 3e-5": (30, 3e-4, 10, 3e-5, 64),
    "lr 1e-2 / 1e-3": (30, 1e-2, 10, 1e-3, 64),
    "lr 3e-3 / 3e-4, 60 + 20 epochs": (60, 3e-3, 20, 3e-4, 64),
    "lr 3e-3 / 3e-4, batch 32": (30, 3e-3, 10, 3e-4, 32),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--target", default="k_vrh")
    parser.add_argument("--level", default="formula")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--features", type=Path, default=None)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    experiment = prepare(pd.read_parquet(args.table), args.target, [args.level], dataset="mp_elastic")
    image = ImageSpec("efficientnet_lite0", image_size=args.image_size, checkpoint=WHEEL)
    text = TextSpec("minilm", max_length=args.max_length)
    features = FeatureCache(path=args.features)
    start = time.perf_counter()
    features.images(experiment, image)
    features.texts(experiment, text, args.level)
    print(f"{len(experiment.ids)} rows; frozen features in {time.perf_counter() - start:.0f} s", flush=True)
    candidates = {}
    chosen = {k: v for k, v in CANDIDATES.items() if args.only is None or k in args.only}
    for name, (head_epochs, head_lr, full_epochs, full_lr, batch) in chosen.items():
        train = TrainConfig(stages=(StageConfig("head", head_epochs, head_lr), StageConfig("full", full_epochs, full_lr)),
                            batch_size=batch, patience=args.patience)
        candidates[name] = {
            "stacked": stacked_trainer(image, text, [args.level], train, features=features),
            "clip_towers": tower_clip_trainer(TowerClipSpec(), image, text, args.level, train, features)}
    search = validation_search(experiment, candidates, ProtocolConfig(n_folds=5, runs=1))
    report(search, args.out)


def report(search: pd.DataFrame, out: Path | None) -> None:
    """Print the ranked validation search; write it to ``out`` (CSV) when given."""
    pd.set_option("display.width", 200)
    print(search.round(3).to_string(index=False))
    if out:
        search.to_csv(out, index=False)


if __name__ == "__main__":
    main()
