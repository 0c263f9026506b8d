"""MP elastic datasets: Materials Project structures with K_VRH, G_VRH (Voigt-Reuss-Hill) and vol/atom.

Two releases, two datasets, never one merged label column:

* ``mp_elastic``: K/G recomputed from the 6x6 tensors of an older release (mirror:
  ``mp_elastic_1000.json``); a tensor that is not positive definite drops the material.
* ``mp_elastic_2025``: the 2025 PBE elasticity release for binaries (mirror:
  ``mp_binary_elasticity_2025_3884.json.gz``; K/G as published, no tensor). A material whose
  tensor fails the stability check in any release has no trustworthy K/G and is dropped.

Where an id is in both releases, each table carries the other release's values in
``k_vrh_<release>``/``g_vrh_<release>`` columns (GPa; not targets) and provenance.json holds
the disagreement (:func:`release_disagreement`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import BuildOptions, Dataset, build, safe_records
from matmodal.datasets.extras import annotate
from matmodal.datasets.quality import checked, untrusted_moduli
from matmodal.manifest import Issue, RecordError
from matmodal.records import (
    MaterialRecord,
    _check_nsites,
    _derive,
    _derived_issues,
    _structure,
    from_mp_elastic,
)
from matmodal.sources.materials_project import ELASTIC_2025_FILE, ELASTIC_FILE, MaterialsProject
from matmodal.targets import ELASTIC_TARGETS, TargetName

NAME = "mp_elastic"
NAME_2025 = "mp_elastic_2025"
LICENCE = "CC-BY-4.0 (Jain et al. 2013; de Jong et al. 2015)"
RELEASE_OLD, RELEASE_2025 = "mp_elastic_1000", "2025"


def elastic_records(mp: MaterialsProject, material_ids: Sequence[str] | None = None) -> Iterator[MaterialRecord | Issue]:
    frame = mp.elasticity(material_ids)
    rows = ((row, "mp_elastic", i) for i, row in enumerate(frame.to_dict("records")))
    yield from safe_records(from_mp_elastic, rows)


def from_binary_elastic(
    row: dict[str, Any], source: str = NAME_2025, index: int = 0, *, untrusted: dict[str, str] | None = None
) -> tuple[MaterialRecord, list[Issue]]:
    """Validate one row of the 2025 release (structure, formula, K_VRH/G_VRH in GPa) into a record."""
    record_id = str(row.get("material_id") or "")
    if not record_id or record_id == "None":
        raise RecordError(f"{source}#{index}", "row has no material id")
    structure = _structure(record_id, row.get("structure"))
    formula = row.get("formula")
    if formula and Composition(formula).reduced_formula != structure.composition.reduced_formula:
        raise RecordError(record_id, f"formula {formula} disagrees with the structure "
                                     f"({structure.composition.reduced_formula})")
    if untrusted and record_id in untrusted:
        raise RecordError(record_id, untrusted[record_id], stage="quality")
    notes: list[Issue] = []
    data = {name.value: checked(record_id, name, row.get(name.value), notes, source)
            for name in (TargetName.k_vrh, TargetName.g_vrh)}
    if data["k_vrh"] is None and data["g_vrh"] is None:
        raise RecordError(record_id, "neither K_VRH nor G_VRH is a valid modulus", stage="targets")
    record = MaterialRecord(record_id, source, structure, data, structure.composition)
    _check_nsites(record, [])
    _derive(record)
    return record, notes + _derived_issues(record, "records")


def release_moduli(mp: MaterialsProject, release: str, material_ids: Sequence[str]) -> pd.DataFrame:
    """K_VRH/G_VRH (GPa) of ``material_ids`` in one release, as ``k_vrh_<release>``, ``g_vrh_<release>``
    (old release: from tensors that pass the stability check only)."""
    rows = []
    if release == RELEASE_2025:
        frame = mp.binary_elasticity(list(material_ids))
        rows = [(r["material_id"], r["k_vrh"], r["g_vrh"]) for r in frame.to_dict("records")]
    else:
        for item in elastic_records(mp, list(material_ids)):
            if isinstance(item, MaterialRecord):
                rows.append((item.record_id, item.data["k_vrh"], item.data["g_vrh"]))
    return pd.DataFrame(rows, columns=["material_id", f"k_vrh_{release}", f"g_vrh_{release}"])


def release_disagreement(table: pd.DataFrame, release: str) -> dict[str, Any]:
    """n overlap and the median / 95th percentile / max |Δ| (GPa) between a table's k_vrh, g_vrh
    and the other release's columns."""
    out: dict[str, Any] = {"other_release": release}
    for name in ("k_vrh", "g_vrh"):
        delta = (table[name] - table[f"{name}_{release}"]).abs().dropna().to_numpy()
        out["n_overlap"] = max(out.get("n_overlap", 0), int(delta.size))
        if delta.size:
            out[f"{name}_abs_diff_gpa"] = {"median": float(np.median(delta)), "p95": float(np.percentile(delta, 95)),
                                          "max": float(delta.max())}
    return out


def _with_other_release(dataset: Dataset, mp: MaterialsProject, release: str, sources: dict[str, Any]) -> Dataset:
    other = release_moduli(mp, release, list(dataset.table["material_id"]))
    other = other[other["material_id"].isin(dataset.table["material_id"])]
    merged = dataset.table.merge(other, on="material_id", how="left")
    comparison = release_disagreement(merged, release)
    return annotate(dataset, columns=other, metadata={"release_comparison": comparison, "sources": sources},
                    provenance={"release_comparison": comparison})


def build_elastic(
    material_ids: Sequence[str] | None = None,
    *,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME,
) -> Dataset:
    """Build the MP elastic table (mirror: ``mp_elastic_1000.json``; online: the elasticity endpoint),
    with the 2025 release's K/G beside it where an id is in both."""
    settings = settings or get_settings()
    mp = MaterialsProject(settings)
    source = {"file": ELASTIC_FILE} if mp.offline else {"endpoint": "materials.elasticity"}
    source["licence"] = LICENCE
    dataset = build(name, elastic_records(mp, material_ids), ELASTIC_TARGETS, options=options,
                    settings=settings, sources={"materials_project": source})
    return _with_other_release(dataset, mp, RELEASE_2025, source)


def build_elastic_2025(
    material_ids: Sequence[str] | None = None,
    *,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME_2025,
) -> Dataset:
    """Build ``mp_elastic_2025`` (K_VRH, G_VRH, vol/atom of the 2025 binaries), with the older
    release's K/G beside it where an id is in both."""
    settings = settings or get_settings()
    mp = MaterialsProject(settings)
    frame = mp.binary_elasticity(material_ids)
    untrusted = untrusted_moduli(mp, list(frame["material_id"]))
    label = ELASTIC_2025_FILE if mp.offline else "materials.elasticity (binaries)"
    source = {"file" if mp.offline else "endpoint": label, "licence": LICENCE,
              "untrusted_moduli": len(untrusted)}
    rows = ((row, label, i) for i, row in enumerate(frame.to_dict("records")))
    items = safe_records(partial(from_binary_elastic, untrusted=untrusted), rows)
    dataset = build(name, items, ELASTIC_TARGETS, options=options, settings=settings,
                    sources={"materials_project": source})
    return _with_other_release(dataset, mp, RELEASE_OLD, source)
