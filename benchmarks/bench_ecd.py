"""Benchmark: seconds per material from density file to PNG (issue 6; target < 0.5 s on one
core for a 60^3 grid). Stages timed separately: read, regrid (pyrho / fourier), differential
density, slice (+ square crop), normalise, PNG. Figures are printed, never asserted.

    .venv/bin/python benchmarks/bench_ecd.py [--mirror ../shared/mirror] [--repeat 5] [--pixels 224]

Inputs: the mirror's Si 60^3 hdf5 (60 -> 60) and Fe3O4 72^3 CHGCAR (72 -> 60), and a 32^3
MultiMat grid with its MP structure (32 -> 60). Single-threaded BLAS/FFT is forced below.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from matmodal.config import Settings  # noqa: E402
from matmodal.modalities.ecd import EcdSettings, normalise, regrid, save_png, slice_plane  # noqa: E402
from matmodal.modalities.ecd.differential import (  # noqa: E402
    ELECTRON_TABLES,
    closest_table,
    differential_density,
)
from matmodal.sources.charge_density import ChargeDensitySource, read_density  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def one(load, settings: EcdSettings, method: str, out: Path) -> dict[str, float]:
    """Time each stage once; returns seconds per stage."""
    t = {}
    start = time.perf_counter()
    density = load()
    t["read"] = time.perf_counter() - start
    mark = time.perf_counter()
    grid = regrid(density, settings.grid, method)
    t["regrid"] = time.perf_counter() - mark
    mark = time.perf_counter()
    table = closest_table(grid.structure, float(grid.data["total"].mean()))
    diff = differential_density(grid, zval=ELECTRON_TABLES[table](), rescale=True)
    field = diff.data / grid.structure.volume
    t["differential"] = time.perf_counter() - mark
    mark = time.perf_counter()
    cut = slice_plane(field, grid.structure.lattice, settings.miller, through=grid.structure.cart_coords[0],
                      supercell=settings.supercell, pixels=settings.pixels, order=settings.order)
    t["slice+crop"] = time.perf_counter() - mark
    mark = time.perf_counter()
    image = normalise(cut.values, settings.normalisation)
    t["normalise"] = time.perf_counter() - mark
    mark = time.perf_counter()
    save_png(image, out)
    t["png"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pixels", type=int, default=224)
    args = parser.parse_args()
    folder = args.mirror / "charge_density"
    source = ChargeDensitySource(Settings(mirror_dir=args.mirror))
    inputs = {
        "Si 60^3 hdf5": lambda: read_density(folder / "Si_diamond_60cube.hdf5"),
        "Fe3O4 72^3 CHGCAR.gz": lambda: read_density(folder / "CHGCAR_Fe3O4.gz"),
        "CaSmCd2 32^3 npz+structure": lambda: source.chgcar("mp-864620"),
    }
    settings = EcdSettings(pixels=args.pixels)
    print(f"pixels {args.pixels}, grid {settings.grid}^3, (111) of {settings.supercell}^3, "
          f"median of {args.repeat} runs, 1 thread")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("pyrho", "fourier"):
            for name, load in inputs.items():
                runs = [one(load, settings, method, Path(tmp) / "x.png") for _ in range(args.repeat)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                stages = "  ".join(f"{k} {v * 1000:.0f}" for k, v in med.items() if k != "total")
                print(f"{method:7s} {name:28s} total {med['total']:.3f} s/material   (ms: {stages})")
    sample = read_density(folder / "CHGCAR_Fe3O4.gz")
    kept = {m: regrid(sample, 60, m).data["total"].mean() for m in ("pyrho", "fourier")}
    print(f"Fe3O4 72^3 -> 60^3 grid mean (electrons): input {np.mean(sample.data['total']):.2f}, "
          + ", ".join(f"{m} {v:.2f}" for m, v in kept.items()))


if __name__ == "__main__":
    main()
