"""Grow the FCC ECD set beyond the MP densities: GPAW densities (:mod:`matmodal.modalities.ecd.dft`)
for FCC structures of the mirror's 2025 binary elasticity file (structures + K_VRH) that have no
MultiMat density, one calculation per Ray task (:func:`~matmodal.modalities.ecd.dft.compute_many`).

Cost: ~1 min per 2-atom material per core at MP-like settings on this machine (21-48 s without
spin, 118 s with; docs/dft.md), more for larger cells. The densities land in the DFT cache, keyed
by structure and settings, so a rerun or a later dataset build reads them back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from matmodal.datasets.massa import is_fcc
from matmodal.modalities.ecd.dft import DftSettings, compute_many, estimate_seconds
from matmodal.sources.charge_density import ChargeDensitySource
from matmodal.sources.materials_project import MaterialsProject


def fcc_without_density(settings: Any, limit: int, max_sites: int = 2) -> pd.DataFrame:
    """The first ``limit`` FCC binaries (by id) of the 2025 elasticity release with at most
    ``max_sites`` sites and no MP density in the charge-density source: material_id, formula,
    nsites, k_vrh (GPa), structure."""
    mp = MaterialsProject(settings)
    have = set(ChargeDensitySource(settings, structures=mp).catalogue()["material_id"])
    rows = []
    for row in mp.binary_elasticity().sort_values("material_id").to_dict("records"):
        if len(rows) >= limit:
            break
        structure = row["structure"]
        if not hasattr(structure, "lattice"):
            from pymatgen.core import Structure

            structure = Structure.from_dict(structure)
        if row["material_id"] in have or len(structure) > max_sites or not is_fcc(structure):
            continue
        rows.append({"material_id": row["material_id"], "formula": structure.composition.reduced_formula,
                     "nsites": len(structure), "k_vrh": row.get("k_vrh"), "structure": structure})
    return pd.DataFrame(rows, columns=["material_id", "formula", "nsites", "k_vrh", "structure"])


def compute_fcc_densities(candidates: pd.DataFrame, settings: DftSettings, engine: Any = None, cache_dir: Any = None) -> pd.DataFrame:
    """Compute the density of every candidate (``engine``: a :class:`matmodal.parallel.Engine`,
    None: serial); one row per candidate with the estimate, wall time (s), cache state, electrons
    in the cell and the error of a failed calculation."""
    structures = list(candidates["structure"])
    estimates = [estimate_seconds(s, settings) for s in structures]
    infos = compute_many(structures, settings, engine, cache_dir=cache_dir)
    return candidates.drop(columns="structure").assign(
        estimate_s=[round(e, 1) for e in estimates],
        wall_s=[i.get("wall_s") for i in infos], cache=[i.get("cache", "") for i in infos],
        electrons=[i.get("valence_electrons_cell") for i in infos], error=[i.get("error", "") for i in infos])


def grown_table(candidates: pd.DataFrame, settings: DftSettings, ecd: Any, folder: Any, *, engine: Any = None,
                cache_dir: Any = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A massa-style table from GPAW densities: the candidates' densities (computed through
    :func:`compute_fcc_densities`, cached), each cut into its ECD image (``ecd``, with GPAW's valences
    for the promolecule) under ``folder``. Returns the table (material_id, formula, nsites, k_vrh,
    ecd_image, wall_s; failures left out) and a provenance dict with the ``ecd`` and ``dft`` settings,
    so :func:`matmodal.protocols.saved.train_and_save` can train on it and predict draws alike."""
    from pathlib import Path

    from matmodal.modalities.ecd.dft import ecd_images_for, ecd_settings_for_dft

    grown = compute_fcc_densities(candidates, settings, engine, cache_dir=cache_dir)
    ok = candidates[(grown["error"] == "").to_numpy()]
    paths, failed = ecd_images_for(list(zip(ok["material_id"], ok["structure"], strict=True)), Path(folder), ecd,
                                   settings, cache_dir=cache_dir)
    table = grown[grown["material_id"].isin(list(paths))].assign(
        ecd_image=lambda t: t["material_id"].map(paths))[["material_id", "formula", "nsites", "k_vrh", "ecd_image",
                                                          "wall_s"]]
    provenance = {"dataset": "fcc_gpaw", "ecd": {**ecd_settings_for_dft(ecd).describe()}, "dft": settings.describe(),
                  "n_records": len(table), "failed": {**dict(zip(grown.material_id, grown.error, strict=True)),
                                                      **failed},
                  "sources": {"structures": "mirror mp_binary_elasticity_2025 (FCC, <= 2 sites, no MultiMat density)",
                              "density": "GPAW PBE, computed (matmodal.modalities.ecd.dft)"}}
    provenance["failed"] = {k: v for k, v in provenance["failed"].items() if v}
    return table.reset_index(drop=True), provenance
