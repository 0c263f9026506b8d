"""Benchmark: the costa2025-scale ``mp_summary`` dataset (issue 14). Figures are printed, never asserted.

    .venv/bin/python benchmarks/bench_mp_summary.py build [--sample 1000] [--pixels 224] [--jobs 1]
    .venv/bin/python benchmarks/bench_mp_summary.py stream [--sample 1000]
    .venv/bin/python benchmarks/bench_mp_summary.py robocrys [--sample 20] [--jobs 2]

``build``: stream + sample + records + images + Magpie + CHGNet (robocrys off) into a fresh
cache/output folder (cold caches), wall time and peak resident memory of the process.
``stream``: peak Python heap (tracemalloc) of streaming every row of the 34,738-row mirror file
versus streaming it into a seeded sample: memory must not grow with the file beyond the sample.
``robocrys``: serial vs Ray with ``--jobs`` local workers on a seeded sample, side by side
(``--sample 20 --jobs 2``; 1,000 structures take about an hour serially).
Single-threaded BLAS is forced below (shared machine).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children (MiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def build(args: argparse.Namespace) -> None:
    from matmodal.config import Settings
    from matmodal.datasets.build import BuildOptions
    from matmodal.datasets.mp_summary import build_mp_summary
    from matmodal.modalities.image import RenderSettings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mirror_dir=args.mirror, cache_dir=Path(tmp) / "cache", output_dir=Path(tmp) / "out",
                            seed=args.seed, n_jobs=args.jobs)
        options = BuildOptions(robocrys=False, image=RenderSettings(size=args.pixels),
                               featurisers=tuple(args.featuriser), n_jobs=args.jobs)
        start = time.perf_counter()
        dataset = build_mp_summary(sample=args.sample, options=options, settings=settings)
        wall = time.perf_counter() - start
    counts = dataset.manifest["severity"].value_counts().to_dict()
    print(f"mp_summary build: sample={args.sample} seed={args.seed} rows={len(dataset.table)} "
          f"pixels={args.pixels} featurisers={'+'.join(args.featuriser)} jobs={args.jobs} robocrys=off")
    print(f"  wall {wall:.1f} s ({wall / max(len(dataset.table), 1) * 1000:.1f} ms/material), "
          f"peak RSS {peak_rss_mib():.0f} MiB, manifest {counts}")


def stream(args: argparse.Namespace) -> None:
    from matmodal.config import Settings
    from matmodal.sources.materials_project import MaterialsProject

    mp = MaterialsProject(Settings(mirror_dir=args.mirror, seed=args.seed))
    for label, sample in (("every row, counted", None), (f"seeded sample of {args.sample}", args.sample)):
        tracemalloc.start()
        start = time.perf_counter()
        rows = mp.summary_rows(sample=sample)
        n = sum(1 for _ in rows)
        wall = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"stream mp2018 ({label}): {n} rows out, {wall:.2f} s, peak Python heap {peak / 2**20:.1f} MiB")
    print(f"  process peak RSS {peak_rss_mib():.0f} MiB")


def robocrys(args: argparse.Namespace) -> None:
    """Serial robocrys_many vs Ray with ``--jobs`` workers on the same seeded sample, fresh caches."""
    from matmodal.config import Settings
    from matmodal.datasets.mp_summary import parse_structure
    from matmodal.datasets.scale import robocrys_on_ray
    from matmodal.modalities.text import robocrys_many
    from matmodal.parallel import Engine, shutdown
    from matmodal.sources.materials_project import MaterialsProject

    rows = MaterialsProject(Settings(mirror_dir=args.mirror, seed=args.seed)).summary_rows(sample=args.sample)
    structures = [parse_structure(r["material_id"], r) for r in rows]
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        serial = robocrys_many(structures, cache_dir=Path(tmp) / "serial", n_jobs=1, progress=False)
        times["serial"] = time.perf_counter() - start
        engine = Engine(workers=args.jobs)
        start = time.perf_counter()
        parallel = robocrys_on_ray(structures, Path(tmp) / "ray", engine)
        times[f"ray x{args.jobs} (incl. cluster start)"] = time.perf_counter() - start
        shutdown()
    same = sum(a == b for a, b in zip(serial, parallel, strict=True))
    print(f"robocrys on {len(structures)} sampled mp2018 structures (seed {args.seed}), cold caches; "
          f"identical results: {same}/{len(structures)}")
    for name, wall in times.items():
        print(f"  {name}: {wall:.1f} s ({wall / len(structures):.2f} s/structure)")
    for structure, a, b in zip(structures, serial, parallel, strict=True):
        if a != b:
            print(f"  differs: {structure.composition.reduced_formula} ({len(structure)} sites): serial failure "
                  f"{a[1]!r}, ray failure {b[1]!r}, texts {'equal' if a[0] == b[0] else 'differ'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("build", "stream", "robocrys"))
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pixels", type=int, default=224)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--featuriser", action="append", default=None, help="default: magpie and chgnet")
    args = parser.parse_args()
    args.featuriser = args.featuriser or ["magpie", "chgnet"]
    {"build": build, "stream": stream, "robocrys": robocrys}[args.mode](args)


if __name__ == "__main__":
    main()
