"""Validation-only search for a cheaper AutoMM tower recipe (costa2025 grid, issue 16).

Every candidate is a recipe (``RunConfig`` fields and :data:`matmodal.models.recipe.AUTOMM_OPTIONS`)
for one modality combination. It is fitted on the rest of a seeded 20 % holdout of the *training*
rows of the run's split (:func:`matmodal.models.tuning.select`, ``folds`` holdouts; the model's own
early-stopping validation is carved from that rest) and scored on the holdout; the test split is
never read. Prints (and writes with ``--out``) holdout MAE and wall time per candidate.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/tune_automm_towers.py \\
        outputs/d2/datasets/full/mp_elastic/table.parquet --combination tabular+text --only base twostage
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from matmodal.models.recipe import recipe_for
from matmodal.models.run_spec import RunConfig, SplitData, prepare_split
from matmodal.models.tuning import automm_predict, select

TABULAR = {"epochs": 60, "learning_rate": 0.003, "tabular_layers": 3, "tabular_width": 256, "dropout": 0.2,
           "patience": 60}
OLD = {"text": {"epochs": 15, "learning_rate": 0.001, "patience": 5},
       "image": {"epochs": 8, "learning_rate": 0.001, "patience": 4}}
FROZEN = {"towers": "frozen", "learning_rate": 0.003, "text_pooling": "mean"}  # head/tabular lr as the tabular recipe
NORM_FIT = {"peft": "norm_fit", "learning_rate": 0.003, "text_pooling": "mean"}  # tower norms + biases train
CACHED = {"towers": "cached", "learning_rate": 0.003, "image_size": 224, "max_text_len": 256}  # vectors computed once
TWO_STAGES = {"lr_choice": "two_stages", "learning_rate": 1e-4, "lr_mult": 30, "text_pooling": "mean"}


def both(values: dict, **more: object) -> dict[str, dict]:
    """The same recipe for the text and the image tower."""
    return {"text": {**values, **more}, "image": {**values, **more}}


CANDIDATES: dict[str, dict[str, dict]] = {  # name -> per-modality recipe (tabular values from the full profile)
    "old": OLD,  # the 210-run study's recipe: full fine-tuning, AutoMM's layerwise lr decay 0.9
    "frozen30": both(FROZEN, epochs=30, patience=30),
    "frozen60": both(FROZEN, epochs=60, patience=60),
    "frozen30b64": both(FROZEN, epochs=30, patience=30, batch_size=64),
    "frozen30px64": both(FROZEN, epochs=30, patience=30, image_size=64),
    "normfit30": both(NORM_FIT, epochs=30, patience=30),
    "twostage30": both(TWO_STAGES, epochs=30, patience=30),
    "cached60": both(CACHED, epochs=60, patience=60),
    "cached60d4": both(CACHED, epochs=60, patience=60, dropout=0.4),
    "cached60pca8": both(CACHED, epochs=60, patience=60, tower_pca=8),
    "cached60pca32": both(CACHED, epochs=60, patience=60, tower_pca=32),
    "cached60w512": both(CACHED, epochs=60, patience=60, tabular_width=512),
    "cached120lr1": both(CACHED, epochs=120, patience=120, learning_rate=0.001),
    # the tabular tower itself: average the best 3 checkpoints instead of keeping the best one
    "uniform3": {"tabular": {**TABULAR, "top_k": 3, "top_k_average_method": "uniform_soup"}},
    "greedy3": {"tabular": {**TABULAR, "top_k": 3, "top_k_average_method": "greedy_soup"}},
}


def candidate_config(base: RunConfig, name: str, combination: str) -> RunConfig:
    recipe = {"tabular": TABULAR, **CANDIDATES[name]}
    values = recipe_for(combination, recipe)
    return RunConfig(**{**base.as_dict(), **values, "modalities": base.modalities, "features": base.features,
                        "extra": values.get("extra", ())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--combination", default="tabular+text")
    parser.add_argument("--target", default="k_vrh")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="CSV to append the rows to")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = pd.read_parquet(args.table)
    base = RunConfig("mp_elastic", args.target, args.combination, seed=args.seed, profile="full",
                     features=("chgnet", "magpie"), image_size=args.image_size, attribution=False)
    split = prepare_split(table, base)
    names = [n for n in CANDIDATES if args.only is None or n in args.only]
    configs = [candidate_config(base, n, args.combination) for n in names]
    walls: list[float] = []

    def predict(view: SplitData, config: RunConfig):
        start = time.perf_counter()
        pred = automm_predict(view, config)
        walls.append(time.perf_counter() - start)
        print(f"  {config.recipe_name or 'candidate'}: {walls[-1]:.0f} s", flush=True)
        return pred

    ranked = select(split, configs, predict, folds=args.folds)
    ranked["name"] = [names[i] for i in ranked["candidate"]]
    ranked["wall_s"] = [round(sum(walls[i * args.folds:(i + 1) * args.folds]), 1) for i in ranked["candidate"]]
    ranked["combination"], ranked["target"], ranked["seed"] = args.combination, args.target, args.seed
    ranked["load"] = round(os.getloadavg()[0], 1)
    print(ranked.drop(columns=["candidate"]).round(3).to_string(index=False))
    if args.out:
        ranked.drop(columns=["candidate"]).to_csv(args.out, mode="a", index=False, header=not args.out.exists())


if __name__ == "__main__":
    main()
