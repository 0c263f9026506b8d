"""Benchmark: the costa2025-scale ``mp_summary`` dataset (issue 14). Figures are printed, never asserted.

    .venv/bin/python benchmarks/bench_mp_summary.py build [--sample 1000] [--pixels 224] [--jobs 1]
    .venv/bin/python benchmarks/bench_mp_summary.py stream [--sample 1000]
    .venv/bin/python benchmarks/bench_mp_summary.py robocrys [--sample 20] [--jobs 2]

``build``: stream + sample + records + images + Magpie + CHGNet (robocrys off) into a fresh
cache/output folder (cold caches), wall time and peak resident memory of the process.
``stream``: peak Python heap (tracemalloc) of streaming every row of the 34,738-row mirror file
versus streaming it into a seeded sample: memory must not grow with the file beyond the sample.
``robocrys``: serial vs Ray with ``--jobs`` local workers on a seeded sample, side by side, each
with its own cold text cache (``--sample 100 --jobs 2``; 1,000 structures take over an hour
serially, so the 1,000-structure figure is printed as a projection).
``build`` also prints the wall time of each stage (images, each featuriser, the rest).
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


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (s)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class StageClock:
    """Wall time spent inside the builder's image and featuriser stages (patched in, then restored)."""

    def __init__(self) -> None:
        import matmodal.modalities.image as image
        import matmodal.modalities.structure as structure

        self.seconds: dict[str, float] = {}
        self._patched = [(image, "render_many", lambda *a, **k: "images"),
                         (structure, "featurise", lambda name, *a, **k: name)]

    def _timed(self, function, label):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stage = label(*args, **kwargs)
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        return wrapper

    def __enter__(self) -> StageClock:
        self._saved = [(module, name, getattr(module, name)) for module, name, _ in self._patched]
        for (module, name, label), (_, _, original) in zip(self._patched, self._saved, strict=True):
            setattr(module, name, self._timed(original, label))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, name, original in self._saved:
            setattr(module, name, original)


def build(args: argparse.Namespace) -> None:
    from matmodal.config import Settings
    from matmodal.datasets.build import BuildOptions
    from matmodal.datasets.mp_summary import build_mp_summary
    from matmodal.modalities.image import RenderSettings

    with tempfile.TemporaryDirectory() as tmp, StageClock() as clock:
        settings = Settings(mirror_dir=args.mirror, cache_dir=Path(tmp) / "cache", output_dir=Path(tmp) / "out",
                            seed=args.seed, n_jobs=args.jobs)
        options = BuildOptions(robocrys=False, image=RenderSettings(size=args.pixels),
                               featurisers=tuple(args.featuriser), n_jobs=args.jobs, isolate=not args.in_process)
        start, cpu = time.perf_counter(), cpu_seconds()
        dataset = build_mp_summary(sample=args.sample, options=options, settings=settings)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    counts = dataset.manifest["severity"].value_counts().to_dict()
    print(f"mp_summary build: sample={args.sample} seed={args.seed} rows={len(dataset.table)} "
          f"pixels={args.pixels} featurisers={'+'.join(args.featuriser)} jobs={args.jobs} robocrys=off "
          f"{'in-process' if args.in_process else 'isolated workers (their CPU and memory not counted)'}")
    print(f"  wall {wall:.1f} s ({wall / max(len(dataset.table), 1) * 1000:.1f} ms/material), "
          f"CPU {cpu:.1f} s (this process and finished children), peak RSS {peak_rss_mib():.0f} MiB, "
          f"load average at end {os.getloadavg()[0]:.1f}, manifest {counts}")
    stages = {**clock.seconds, "rest (stream, sample, CIF parsing, records, table)": wall - sum(clock.seconds.values())}
    print("  stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items()))


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
        times["serial"] = (time.perf_counter() - start, os.getloadavg()[0])
        engine = Engine(workers=args.jobs)
        start = time.perf_counter()
        parallel = robocrys_on_ray(structures, Path(tmp) / "ray", engine)
        times[f"ray x{args.jobs} (incl. cluster start)"] = (time.perf_counter() - start, os.getloadavg()[0])
        shutdown()
    same = sum(a == b for a, b in zip(serial, parallel, strict=True))
    print(f"robocrys on {len(structures)} sampled mp2018 structures (seed {args.seed}), cold caches; "
          f"identical results: {same}/{len(structures)}")
    for name, (wall, load) in times.items():
        per = wall / len(structures)
        print(f"  {name}: {wall:.1f} s ({per:.2f} s/structure; projection to 1,000 structures: "
              f"{per * 1000 / 60:.0f} min; load average at end {load:.1f})")
    serial_wall, ray_wall = (wall for wall, _ in times.values())
    print(f"  speed-up of Ray x{args.jobs} over serial: {serial_wall / ray_wall:.2f}x")
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
    parser.add_argument("--in-process", action="store_true",
                        help="build: featurisers and renderer in this process (isolate=False), so CPU time and "
                             "peak RSS include them; the isolated workers persist and are not counted")
    args = parser.parse_args()
    args.featuriser = args.featuriser or ["magpie", "chgnet"]
    {"build": build, "stream": stream, "robocrys": robocrys}[args.mode](args)


if __name__ == "__main__":
    main()
