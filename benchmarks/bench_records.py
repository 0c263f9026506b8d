"""Benchmark: cost of record validation (issue 12) on the 108 real Alexandria mirror entries.

Prints records/s for ``records.from_alexandria`` as it is (geometry checks before any native
code, type checks, spglib in its isolated worker where the space group is missing), with
spglib called in-process instead of through the worker, and with the geometry checks
(``check_structure``) replaced by a no-op, so the cost of each safeguard is visible.

    .venv/bin/python benchmarks/bench_records.py [--mirror ../shared/mirror] [--repeat 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from matmodal import records
from matmodal.sources import alexandria
from matmodal.symmetry import spacegroup_number

ROOT = Path(__file__).resolve().parents[1]


def entries(mirror: Path) -> list[tuple[str, dict]]:
    return [(p.name, e) for p in sorted((mirror / "alexandria").glob("*.json.bz2"))
            for e in alexandria.iter_entries(p)]


def rate(items: list[tuple[str, dict]], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for i, (name, entry) in enumerate(items):
            records.from_alexandria(entry, name, i)
    return repeat * len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    items = entries(args.mirror)
    rate(items, 1)  # warm up (imports, the spglib worker)
    full = rate(items, args.repeat)
    isolated, checked = records._SPACE_GROUP, records.check_structure
    records._SPACE_GROUP = lambda structure: (spacegroup_number(structure), None)
    try:
        in_process = rate(items, args.repeat)
        records.check_structure = lambda record_id, structure: structure
        bare = rate(items, args.repeat)
    finally:
        records._SPACE_GROUP, records.check_structure = isolated, checked
    print(f"{len(items)} real entries x {args.repeat} ({sum('spg' not in e['data'] for _, e in items)} "
          "without spg: spglib runs for those)")
    for label, value in [("as built (validation + isolated spglib)", full), ("spglib in-process", in_process),
                         ("spglib in-process, no geometry checks", bare)]:
        print(f"{label:42s} {value:7.0f} records/s ({1e3 / value:.2f} ms each)")


if __name__ == "__main__":
    main()
