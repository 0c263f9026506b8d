"""Wall time of one (combination, target, seed) AutoMM run and of a whole grid (printed, never asserted).

    # CI-sized: a fresh root, 1 epoch, a 100-row subsample, two combinations
    python benchmarks/bench_grid.py --output-dir outputs/costa_cpu --max-rows 100 --combinations text tabular
    # summarise the timings of a grid that already ran (nothing is trained)
    python benchmarks/bench_grid.py --summarise outputs/costa_cpu/runs/cpu/mp_elastic

Timings depend on the machine's load: the runs store ``wall_s``/``fit_s`` and ``torch_threads``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def summarise(folder: Path) -> None:
    from matmodal.runs import results_frame, timing_table

    results = results_frame(folder.parent, dataset=folder.name)
    print(f"{folder}: {len(results)} runs ({int((results.status == 'ok').sum())} ok)")
    print(timing_table(results).to_string())


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--summarise", type=Path, help="print the timings of an existing <root>/<dataset> folder")
    cli.add_argument("--output-dir", type=Path, default=Path("outputs"), help="where the datasets are built")
    cli.add_argument("--dataset", default="mp_elastic")
    cli.add_argument("--targets", nargs="+", default=["k_vrh"])
    cli.add_argument("--combinations", nargs="+", default=["tabular", "text", "tabular+text"])
    cli.add_argument("--seeds", nargs="+", type=int, default=[0])
    cli.add_argument("--epochs", type=int, default=1)
    cli.add_argument("--max-rows", type=int, default=0)
    cli.add_argument("--image-size", type=int, default=64)
    cli.add_argument("--tabular-model", default="numerical_mlp")
    cli.add_argument("--torch-threads", type=int, default=1)
    args = cli.parse_args()
    if args.summarise:
        summarise(args.summarise)
        return

    from matmodal.config import Settings
    from matmodal.datasets.build import load
    from matmodal.runs import Grid, run_grid

    dataset = load(args.dataset, Settings(output_dir=args.output_dir))
    grid = Grid(args.dataset, args.targets, args.combinations, args.seeds, baselines=(),
                settings={"epochs": args.epochs, "max_rows": args.max_rows or None, "image_size": args.image_size,
                          "tabular_model": args.tabular_model})
    root = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    print(f"{platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {len(grid.configs())} runs "
          f"-> {root}")
    start = time.perf_counter()
    run_grid(grid, dataset.table, root, keep_models="none", verbosity=0, torch_threads=args.torch_threads)
    print(f"grid: {time.perf_counter() - start:.1f} s wall")
    summarise(root / args.dataset)


if __name__ == "__main__":
    main()
