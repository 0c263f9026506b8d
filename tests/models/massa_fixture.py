"""A small real table for the massa2024 model tests, built from the mirror's MP charge densities.

Rows: materials of ``multimat_mp_total_density_32.npz`` with a bulk modulus (``K_VRH_6059csv``,
GPa) and a formula; image = the normalised middle z-slice of the real total density (PNG,
viridis); text = the formula.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matmodal.modalities.ecd.image import save_png
from matmodal.modalities.ecd.normalise import normalise

NPZ = "charge_density/multimat_mp_total_density_32.npz"


def density_table(mirror_dir: Path, out_dir: Path, n: int = 40) -> pd.DataFrame:
    """``n`` real materials: material_id, text_formula, k_vrh (GPa), image_path (PNG)."""
    data = np.load(mirror_dir / NPZ)
    k_vrh = data["K_VRH_6059csv"].astype(float)
    keep = np.flatnonzero(np.isfinite(k_vrh) & (data["formula_6059csv"] != ""))[:n]
    densities = data["total_density_32"]  # each npz access re-reads the whole array
    rows = []
    for i in keep:
        mid = str(data["material_id"][i])
        image = normalise(densities[i][:, :, 16])
        rows.append({"material_id": mid, "text_formula": str(data["formula_6059csv"][i]),
                     "k_vrh": float(k_vrh[i]), "image_path": str(save_png(image, out_dir / f"{mid}.png"))})
    return pd.DataFrame(rows)
