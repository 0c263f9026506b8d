"""Benchmark: stream and sample a 100,000-entry Alexandria-format file (issue 2).

The file is built here by repeating the 108 real mirror entries with new ids (a benchmark
fixture, not real data). Prints entries/s for streaming and for a seeded 1,000-entry reservoir
sample, and the peak Python memory (tracemalloc) for a 10,000- and a 100,000-entry file, to show
that memory does not grow with the file.

    .venv/bin/python benchmarks/bench_streaming.py [--mirror ../shared/mirror] [--entries 100000]
"""

from __future__ import annotations

import argparse
import bz2
import copy
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from matmodal.sources import alexandria

ROOT = Path(__file__).resolve().parents[1]


def real_entries(mirror: Path) -> list[dict]:
    entries = []
    for path in sorted((mirror / "alexandria").glob("*.json.bz2")):
        entries += list(alexandria.iter_entries(path))
    return entries


def build_file(path: Path, base: list[dict], n: int) -> Path:
    """Write n entries (real ones, re-identified) as one bz2 dump, streaming the compression."""
    compressor = bz2.BZ2Compressor(9)
    with path.open("wb") as fh:
        fh.write(compressor.compress(b'{"entries": ['))
        for i in range(n):
            entry = copy.deepcopy(base[i % len(base)])
            entry["data"]["mat_id"] = f"bench{i:07d}"
            fh.write(compressor.compress(((", " if i else "") + json.dumps(entry)).encode()))
        fh.write(compressor.compress(b"]}"))
        fh.write(compressor.flush())
    return path


def rate(fn, n: int) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return n / seconds, seconds


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    cli.add_argument("--entries", type=int, default=100_000)
    args = cli.parse_args()
    base = real_entries(args.mirror)
    with tempfile.TemporaryDirectory() as tmp:
        small = build_file(Path(tmp) / "alexandria_010k.json.bz2", base, args.entries // 10)
        start = time.perf_counter()
        big = build_file(Path(tmp) / "alexandria_100k.json.bz2", base, args.entries)
        print(f"built {args.entries:,} entries ({big.stat().st_size / 2**20:.0f} MiB bz2) "
              f"in {time.perf_counter() - start:.0f} s")
        count = lambda p: sum(1 for _ in alexandria.iter_entries(p))  # noqa: E731
        speed, seconds = rate(lambda: count(big), args.entries)
        print(f"stream : {speed:,.0f} entries/s ({seconds:.1f} s for {args.entries:,})  target >= 2,000")
        speed, seconds = rate(lambda: alexandria.sample_entries([big], 1000, seed=0), args.entries)
        print(f"sample : {speed:,.0f} entries/s (1,000 of {args.entries:,} in {seconds:.1f} s)")
        for label, path, n in (("10k", small, args.entries // 10), ("100k", big, args.entries)):
            print(f"peak Python memory, streaming {label:>4} file ({n:,} entries): {peak_mib(lambda p=path: count(p)):.1f} MiB")


if __name__ == "__main__":
    main()
