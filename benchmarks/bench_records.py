"""Benchmark: cost of record validation (issue 12) on the 108 real Alexandria mirror entries.

Prints records/s for ``records.from_alexandria`` as it is (geometry checks before any native
code, type checks, spglib where the space group is missing) and with the geometry checks
(``check_structure``) replaced by a no-op, so the share of validation is visible.

    .venv/bin/python benchmarks/bench_records.py [--mirror ../shared/mirror] [--repeat 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from matmodal import records
from matmodal.sources import alexandria

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
    rate(items, 1)  # warm up (imports, spglib)
    full = rate(items, args.repeat)
    checked = records.check_structure
    records.check_structure = lambda record_id, structure: structure
    try:
        bare = rate(items, args.repeat)
    finally:
        records.check_structure = checked
    print(f"{len(items)} real entries x {args.repeat}")
    print(f"from_alexandria with validation:    {full:8.0f} records/s ({1e3 / full:.2f} ms each)")
    print(f"from_alexandria without geometry checks: {bare:8.0f} records/s ({1e3 / bare:.2f} ms each)")
    print(f"validation share: {100 * (1 - full / bare):.0f} %")


if __name__ == "__main__":
    main()
