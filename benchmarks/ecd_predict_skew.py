"""Train/serve skew of a saved ECD model: the same materials predicted from their MP density image
(what the model trained on) and from a GPAW density computed here (what `matmodal predict` does
for a new structure), plus the wall time of each GPAW prediction.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ecd_predict_skew.py \\
        --model outputs/c_ecd/runs/full/massa_mp_density_any/ecd-image-e_form-efficientnet_lite0-s0 \\
        --table outputs/c_ecd/datasets/full/massa_mp_density_any/table.parquet --max-sites 2

Materials: the table's rows with the model's target and at most ``--max-sites`` sites (not
spin-polarised by the ``auto`` rule, to keep it cheap), each with the structure the dataset paired
with its MP density. Prints one row per material (split: train/val/test of the saved model) and
the mean absolute difference between the two predictions; figures are printed, never asserted.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matmodal.config import Settings  # noqa: E402
from matmodal.modalities.ecd import dft  # noqa: E402
from matmodal.models.stacked import load_regressor  # noqa: E402
from matmodal.predict import InputStructure, saved_model_predictions, saved_model_values  # noqa: E402
from matmodal.splits import train_test_split_ids  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--table", type=Path, required=True, help="the training dataset's table.parquet")
    parser.add_argument("--mirror", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "mirror")
    parser.add_argument("--max-sites", type=int, default=2)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--cutoff", type=float, default=None, help="eV (default: the model's recorded setting)")
    parser.add_argument("--kpoint-density", type=float, default=None, help="per Å⁻¹ (default: the model's)")
    args = parser.parse_args(argv)
    settings = Settings(mirror_dir=args.mirror)
    model, config = load_regressor(args.model)
    recorded = dft.DftSettings(**config["dft"])
    calc = dft.DftSettings(**{**config["dft"], **({"cutoff": args.cutoff} if args.cutoff else {}),
                              **({"kpoint_density": args.kpoint_density} if args.kpoint_density else {})})
    target = config["target"]
    table = pd.read_parquet(args.table).dropna(subset=[target]).sort_values("material_id").reset_index(drop=True)
    train_ids, test_ids = train_test_split_ids(table["material_id"].tolist(), config["split"]["test_fraction"],
                                               config["split"]["split_seed"])
    from matmodal.sources.charge_density import ChargeDensitySource

    source = ChargeDensitySource(settings)
    rows = table[table["nsites"] <= args.max_sites]
    chosen = []
    for row in rows.to_dict("records"):
        structure = source.chgcar(row["material_id"]).structure  # the paired MP structure
        if not dft.spin_polarised(structure, calc):
            chosen.append((row, structure))
    chosen = chosen[:args.limit]
    from_mp = saved_model_values(model, config, [row["ecd_image"] for row, _ in chosen])
    results = []
    with tempfile.TemporaryDirectory() as work:
        for (row, structure), mp_value in zip(chosen, from_mp, strict=True):
            start = time.perf_counter()
            out = saved_model_predictions(args.model, [InputStructure("s0", row["material_id"], "", structure)], [],
                                          Path(work), settings, dft=calc)
            wall = time.perf_counter() - start
            if out.frame.empty:
                print(f"{row['material_id']}: {out.skipped[0].reason}", file=sys.stderr)
                continue
            got = out.frame.iloc[0]
            results.append({"material_id": row["material_id"], "formula": row["formula"],
                            "split": "test" if row["material_id"] in test_ids else "train/val",
                            target: row[target], "pred_mp_image": float(mp_value), "pred_gpaw": got["prediction"],
                            "abs_diff": abs(got["prediction"] - float(mp_value)), "wall_s": round(wall, 1),
                            "density_note": got["density_note"]})
    frame = pd.DataFrame(results)
    print(f"\nmodel {args.model.name} ({target}, {config['unit']}; n_train {config['n_train']}, "
          f"test R² {config['metrics']['test']['r2']:.3f}); GPAW {calc.mode} {calc.cutoff:g} eV, "
          f"k {calc.kpoint_density:g}/Å (model records {recorded.cutoff:g} eV, {recorded.kpoint_density:g}/Å)\n")
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    clean = frame[frame.density_note == ""]
    spread = float(np.std(table[target]))
    print(f"\nmean |GPAW − MP-image prediction|: {frame.abs_diff.mean():.3f} {config['unit']} over {len(frame)} "
          f"({clean.abs_diff.mean():.3f} over the {len(clean)} whose valences match MP's); target sd {spread:.3f}; "
          f"training-set ids {len(train_ids)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
