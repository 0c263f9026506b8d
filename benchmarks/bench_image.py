"""Benchmark: render the 1,000 MP elastic structures of the mirror (issue 3).

Prints images/s, s per 1,000 images and the speed-up over costa2025's Crystal Toolkit + Dash
screenshots (70 min for 1,000 images, 4.2 s/image) for the fast default bond rule at 224 px and
512 px on all cores, then the CrystalNN bond rule (Crystal Toolkit's) on a subset, and a
one-process breakdown per stage. CIF parsing is timed separately (render_many takes Structures).
Every run writes into a fresh temporary folder, so nothing is served from the cache.

    .venv/bin/python benchmarks/bench_image.py [--mirror ../shared/mirror] [--jobs N] [--crystalnn 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings
from pathlib import Path

from matmodal.modalities.image import RenderSettings, render_many
from matmodal.modalities.image.raster import rasterise
from matmodal.modalities.image.render import cache_key, png_bytes
from matmodal.modalities.image.scene import build_scene
from matmodal.sources.materials_project import read_elastic_file

ROOT = Path(__file__).resolve().parents[1]
PAPER_S_PER_IMAGE = 70 * 60 / 1000  # costa2025 §4.2.1: 70 min for 1,000 images


def load(mirror: Path, n: int) -> list[tuple[str, object]]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_elastic_file(mirror / "materials_project" / "mp_elastic_1000.json")
    frame = frame[frame["structure"].notna()].head(n)
    print(f"parsed {len(frame)} CIFs in {time.perf_counter() - start:.2f} s (not counted below)")
    return list(zip(frame["material_id"], frame["structure"], strict=True))


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished worker processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_batch(items, settings: RenderSettings, jobs: int, label: str) -> None:
    """Wall time (what a user waits, inflated when other jobs share the cores) and CPU time
    (robust to sharing: CPU s / cores = wall time on idle cores, minus pool start-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, start = _cpu_seconds(), time.perf_counter()
        paths, issues = render_many(items, Path(tmp), settings, n_jobs=jobs, progress=False)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu0
    rate = len(items) / wall
    print(f"{label:<30} {len(paths):>5} images  wall {wall:7.2f} s = {rate:6.1f} images/s = "
          f"{1000 / rate:7.2f} s/1,000 = x{PAPER_S_PER_IMAGE * rate:5.0f} vs paper | "
          f"CPU {1000 * cpu / len(items):6.1f} s/1,000 -> {1000 * cpu / len(items) / jobs:6.2f} s/1,000 "
          f"on {jobs} idle cores = x{PAPER_S_PER_IMAGE * len(items) * jobs / cpu:5.0f} | {len(issues)} issues")


def stage_breakdown(items, settings: RenderSettings) -> None:
    """One process: mean ms per image for scene geometry, rasterising and PNG encoding."""
    totals = {"scene": 0.0, "raster": 0.0, "png": 0.0}
    for _, structure in items:
        t0 = time.process_time()
        scene = build_scene(structure, settings)
        t1 = time.process_time()
        image = rasterise(scene, settings)
        t2 = time.process_time()
        png_bytes(image, cache_key(structure, settings), scene.notes, settings.png_compress_level)
        t3 = time.process_time()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            totals[key] += dt
    parts = ", ".join(f"{k} {1000 * v / len(items):.1f} ms" for k, v in totals.items())
    print(f"one process, {settings.size} px, bonds={settings.bonds}: {parts} (CPU time per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--crystalnn", type=int, default=100, help="structures rendered with CrystalNN bonds")
    args = parser.parse_args()
    print(f"{args.jobs} worker processes on {os.cpu_count()} cores; load average before: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    items = load(args.mirror, args.n)
    for size in (224, 512):
        timed_batch(items, RenderSettings(size=size), args.jobs, f"cutoff bonds, {size} px")
    subset = items[: args.crystalnn]
    if subset:  # --crystalnn 0 skips the (slow) CrystalNN rows
        timed_batch(subset, RenderSettings(bonds="crystalnn"), args.jobs, "CrystalNN bonds, 224 px")
        timed_batch(subset, RenderSettings.crystal_toolkit(), args.jobs, "CrystalNN + polyhedra, 224 px")
    for settings in (RenderSettings(size=224), RenderSettings(size=512)):
        stage_breakdown(items[:200], settings)
    if subset:
        stage_breakdown(subset, RenderSettings(bonds="crystalnn"))
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
