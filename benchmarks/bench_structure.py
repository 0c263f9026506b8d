"""Benchmark: structure featurisers on the mirror's 1,000 MP elastic structures (issue 4).

Prints, per featuriser, cold-cache wall time, structures/s and peak resident memory (each
featuriser runs in its own child process so peaks do not mix), the warm-cache time, and a
linear probe: ridge regression R² on a fixed 80/20 split for log10 K_VRH and vol/atom, with
PotNet both frozen (costa2025) and trained on the 80 % split only. Figures are printed,
never asserted. Target: the three featurisers together < 120 s on 2 cores.

    .venv/bin/python benchmarks/bench_structure.py [--mirror ../shared/mirror] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("potnet", "chgnet", "magpie")


def load_items(mirror: Path, n: int) -> tuple[list, pd.DataFrame]:
    """``(record_id, Structure)`` items and a table of log10 K_VRH and vol/atom."""
    from pymatgen.core import Structure

    from matmodal.records import vrh_moduli

    frame = pd.read_json(mirror / "materials_project" / "mp_elastic_1000.json").iloc[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    ids = frame["material_id"].astype(str).tolist()
    bulk = [_bulk(t, vrh_moduli) for t in frame["elasticity.elastic_tensor"]]
    targets = pd.DataFrame({"log10_K_VRH": np.log10(np.clip(bulk, 1.0, None)),
                            "vol_per_atom": frame["volume"] / frame["nsites"]}, index=ids)
    return list(zip(ids, structures, strict=True)), targets


def _bulk(tensor, vrh_moduli) -> float:
    """K_VRH in GPa; NaN for unstable or singular tensors (left out of the probe)."""
    try:
        return vrh_moduli(tensor)[0]
    except ValueError:
        return float("nan")


def split(ids: list[str], seed: int = 0) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(ids))
    cut = int(0.8 * len(ids))
    return [ids[i] for i in order[:cut]], [ids[i] for i in order[cut:]]


def child(args: argparse.Namespace) -> None:
    """Featurise once (cold or warm cache); print one JSON line with figures."""
    from matmodal.modalities.structure import featurise

    items, targets = load_items(args.mirror, args.n)
    train_ids, _ = split([r for r, _ in items])
    extra = {}
    if args.mode == "trained":
        extra = {"targets": targets.loc[train_ids, "log10_K_VRH"].rename("log10_K_VRH")}
    start = time.perf_counter()
    frame, issues = featurise(args.child, items, cache_dir=args.cache, progress=False,
                              mode=args.mode, **extra)
    seconds = time.perf_counter() - start
    frame.to_parquet(args.cache / f"{args.child}_{args.mode}.parquet")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"name": args.child, "mode": args.mode, "seconds": seconds,
                      "n": len(frame), "dropped": len(issues), "peak_mib": peak_mib,
                      "training": frame.attrs["provenance"].get("training")}))


def run_child(args: argparse.Namespace, name: str, mode: str = "frozen") -> dict:
    command = [sys.executable, __file__, "--child", name, "--mode", mode, "--cache", str(args.cache),
               "--mirror", str(args.mirror), "--n", str(args.n)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def probe(frame: pd.DataFrame, targets: pd.DataFrame, train: list[str], test: list[str]) -> dict:
    """Test R² of a standardised ridge (alpha by CV on train) per target."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = {}
    for column in targets.columns:
        known = targets[column].dropna().index
        train = [i for i in train if i in frame.index and i in known]
        test = [i for i in test if i in frame.index and i in known]
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
        model.fit(frame.loc[train], targets.loc[train, column])
        scores[column] = round(float(model.score(frame.loc[test], targets.loc[test, column])), 3)
    return scores


def main(args: argparse.Namespace) -> None:
    items, targets = load_items(args.mirror, args.n)
    print(f"{len(items)} MP elastic structures, mean {np.mean([len(s) for _, s in items]):.1f} "
          f"sites (max {max(len(s) for _, s in items)}), load average {os.getloadavg()[0]:.1f}")
    total = 0.0
    print(f"{'featuriser':<16}{'cold s':>8}{'struct/s':>10}{'warm s':>8}{'peak MiB':>10}{'dropped':>9}")
    for name in NAMES:
        cold, warm = run_child(args, name), run_child(args, name)
        total += cold["seconds"]
        print(f"{name:<16}{cold['seconds']:>8.1f}{cold['n'] / cold['seconds']:>10.1f}"
              f"{warm['seconds']:>8.2f}{cold['peak_mib']:>10.0f}{cold['dropped']:>9}")
    print(f"all three, cold cache: {total:.1f} s (target < 120 s); "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    trained = run_child(args, "potnet", "trained")
    print(f"potnet trained on 80 % (log10 K_VRH): {trained['seconds']:.1f} s incl. embedding all, "
          f"peak {trained['peak_mib']:.0f} MiB, training {trained['training']}")
    train, test = split([r for r, _ in items])
    print("linear probe, test R² (ridge on standardised features, fixed 80/20 split):")
    for name, mode in [*((n, "frozen") for n in NAMES), ("potnet", "trained")]:
        frame = pd.read_parquet(args.cache / f"{name}_{mode}.parquet")
        print(f"  {name + ' ' + mode:<16}{probe(frame, targets, train, test)}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--child", choices=NAMES)
    parser.add_argument("--mode", default="frozen")
    parser.add_argument("--cache", type=Path)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.child:
        child(arguments)
    else:
        with tempfile.TemporaryDirectory() as folder:
            arguments.cache = Path(folder)
            main(arguments)
