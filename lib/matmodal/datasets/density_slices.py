"""A small real charge-density image table: the massa2024 ECD stand-in of the protocol tests.

Read through :class:`matmodal.sources.charge_density.MultimatGrids` (the mirror's 371 MP total
densities on 32³); superseded for the studies by the verified real-density datasets
``massa_mp_density`` / ``massa_mp_density_any`` (:mod:`matmodal.datasets.massa`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matmodal.modalities.ecd.image import save_png
from matmodal.modalities.ecd.normalise import normalise
from matmodal.schema import MATERIAL_ID as ID
from matmodal.sources.charge_density import MULTIMAT_FILE, MultimatGrids

DENSITY_NPZ = f"charge_density/{MULTIMAT_FILE}"


def density_slice_table(mirror_dir: Path, out_dir: Path, n: int | None = None) -> pd.DataFrame:
    """Materials of the MultiMat file with a bulk modulus (``K_VRH_6059csv``, GPa) and a formula;
    image = the normalised middle z-slice of the real *total* density (not massa2024's
    differential (111) slice), viridis PNG; text = the formula."""
    grids = MultimatGrids(Path(mirror_dir) / DENSITY_NPZ)
    index = grids.index
    keep = index[np.isfinite(index["k_vrh_6059csv"]) & index["formula"].notna()].iloc[:n]
    rows = []
    for mid, formula, k_vrh in zip(keep["material_id"], keep["formula"], keep["k_vrh_6059csv"], strict=True):
        grid = grids.grid(mid)
        image = normalise(grid[:, :, grid.shape[-1] // 2])
        rows.append({ID: mid, "text_formula": str(formula), "k_vrh": float(k_vrh),
                     "image_path": str(save_png(image, Path(out_dir) / f"{mid}.png"))})
    return pd.DataFrame(rows)
