"""Benchmark: cost of the worker-process boundary of the modality stages (issue 12).

Builds the MP elastic dataset on the mirror's first ``--n`` (200) material ids, robocrys off,
images (224 px) and the three featurisers (magpie, chgnet, potnet) on, cold caches, once
in-process (``BuildOptions(isolate=False)``, the path before the boundary) and once isolated
(the default), alternating ``--repeats`` times; each build runs in its own child process.
Prints the wall time of every build and the medians. Figures are printed, never asserted.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_stage_isolation.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
from pathlib import Path
import pandas as pd
from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.elastic import build_elastic
from matmodal.modalities.image import RenderSettings
mirror, root, n, isolate = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
ids = pd.read_json(mirror / "materials_project" / "mp_elastic_1000.json")["material_id"].astype(str).tolist()[:n]
settings = Settings(mirror_dir=mirror, output_dir=root / "out", cache_dir=root / "cache")
options = BuildOptions(robocrys=False, image=RenderSettings(size=224), featurisers=("magpie", "chgnet", "potnet"),
                       isolate=isolate)
start = time.perf_counter()
dataset = build_elastic(ids, options=options, settings=settings)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(dataset.table),
                  "images": int(dataset.table.image_path.notna().sum()),
                  "chgnet": int(dataset.table["chgnet_000"].notna().sum()),
                  "manifest": len(dataset.manifest)}))
"""


def one_build(mirror: Path, n: int, isolate: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        out = subprocess.run([sys.executable, "-c", CHILD, str(mirror), folder, str(n), "1" if isolate else "0"],
                             capture_output=True, text=True, check=True, cwd=ROOT, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"in-process": [], "isolated": []}
    for repeat in range(args.repeats):
        for label, isolate in (("in-process", False), ("isolated", True)):
            result = one_build(args.mirror, args.n, isolate)
            times[label].append(result["seconds"])
            print(f"repeat {repeat} {label:10s} {result['seconds']:7.1f} s  {result}", flush=True)
    for label, values in times.items():
        print(f"median {label:10s} {statistics.median(values):7.1f} s over {len(values)} build(s)")
    base, isolated = (statistics.median(v) for v in times.values())
    print(f"overhead of the boundary: {isolated - base:+.1f} s ({100 * (isolated / base - 1):+.1f} %)")


if __name__ == "__main__":
    main()
