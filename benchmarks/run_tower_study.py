"""The MP elastic AutoMM tower runs of the `full` profile's recipe (issue 16), resumable.

Builds the configs exactly as notebook 04 does (:func:`matmodal.models.recipe.study_configs`
with the ``full`` profile's ``04_training`` values from ``notebooks/profiles.yaml``), keeps the
AutoMM runs of the chosen combinations, and runs them one by one (one torch thread) into the
runs folder beside the older runs (a named recipe gives new run ids, so nothing is replaced).
``--stop-at HH:MM`` (UTC) starts no run after that time.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/run_tower_study.py \\
        --table outputs/d2/datasets/full/mp_elastic/table.parquet --runs outputs/d2/runs/full \\
        --combinations tabular+text tabular+image tabular+image+text --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import pandas as pd

from matmodal.models.recipe import study_configs
from matmodal.models.run_spec import embedding_prefixes
from matmodal.profiles import load_profiles
from matmodal.runs import run_grid

PROFILES = Path(__file__).resolve().parents[1] / "notebooks" / "profiles.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="runs root (the dataset folder goes below it)")
    parser.add_argument("--targets", nargs="+", default=["k_vrh", "g_vrh", "vol_per_atom"])
    parser.add_argument("--combinations", nargs="+", default=["tabular+text", "tabular+image", "tabular+image+text"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=128, help="AutoMM image size unless the recipe sets it")
    parser.add_argument("--stop-at", default="", help="HH:MM UTC: start no run after this")
    args = parser.parse_args()
    full = load_profiles(PROFILES)["full"]["04_training"]
    table = pd.read_parquet(args.table)
    base = {"profile": "full", "features": tuple(full["features"]), "image_size": args.image_size,
            "tabular_model": "numerical_mlp", "max_rows": None}
    configs = [c for c in study_configs("mp_elastic", args.targets, args.seeds, base=base,
                                        combinations=args.combinations, recipe=full["recipe"],
                                        available_features=embedding_prefixes(table))
               if c.model == "automm"]
    stop = dt.datetime.strptime(args.stop_at, "%H:%M").time() if args.stop_at else None
    for config in configs:  # seed-major order, as study_configs makes them
        if stop and dt.datetime.now(dt.UTC).time() >= stop:
            print(f"stop: {args.stop_at} UTC reached; {config.run_id} and later not started", flush=True)
            break
        start = time.perf_counter()
        row = run_grid([config], table, args.runs, keep_models="none", verbosity=0, torch_threads=1).iloc[0]
        print(f"{config.run_id}: {row['status']} mae {row['mae']} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
