"""Typed, validated material records built from raw source entries.

A :class:`MaterialRecord` wraps a pymatgen ``Structure`` plus the raw numeric fields of its
source. Parsers raise :class:`~matmodal.manifest.RecordError` (record id + reason) for
unusable entries and return :class:`~matmodal.manifest.Issue` rows for what they derived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from matmodal.manifest import Issue, RecordError, Severity
from matmodal.paths import safe_name

SYMPREC = 0.1  # Å, spglib tolerance used when the space group has to be derived


@dataclass
class MaterialRecord:
    """One material: id, structure, raw fields (eV, Å, μB as in the source) and what was derived."""

    record_id: str
    source: str
    structure: Structure
    data: dict[str, Any]
    composition: Composition
    derived: list[str] = field(default_factory=list)

    @property
    def nsites(self) -> int:
        return len(self.structure)

    @property
    def volume(self) -> float:
        """Cell volume (Å³)."""
        return float(self.structure.volume)

    @property
    def formula(self) -> str:
        return str(self.data.get("formula") or self.composition.reduced_formula)

    def number(self, key: str) -> float | None:
        """A numeric field, or None when missing, null or NaN."""
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) else value


def _structure(record_id: str, raw: Any) -> Structure:
    if raw is None:
        raise RecordError(record_id, "entry has no 'structure'")
    try:
        structure = raw if isinstance(raw, Structure) else Structure.from_dict(raw)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        message = str(error)
        if "not a valid Element" in message or "Invalid element" in message:
            raise RecordError(record_id, f"unknown element: {message}") from error
        raise RecordError(record_id, f"unparsable structure: {type(error).__name__}: {message}") from error
    return _check_structure(record_id, structure)


def _check_structure(record_id: str, structure: Structure) -> Structure:
    if len(structure) == 0:
        raise RecordError(record_id, "structure has no sites")
    if not structure.is_ordered:
        raise RecordError(
            record_id, "partial occupancies (disordered structure); DFT targets need an ordered cell"
        )
    volume = abs(float(np.linalg.det(structure.lattice.matrix)))
    if not volume > 1e-6:
        raise RecordError(record_id, f"degenerate lattice (cell volume {volume:.3g} Å³)")
    return structure


def _check_nsites(record: MaterialRecord, issues: list[Issue]) -> None:
    raw = record.data.get("nsites")
    if raw is None:
        record.data["nsites"] = record.nsites
        record.derived.append("nsites")
        return
    if not isinstance(raw, int | float) or int(raw) <= 0:
        raise RecordError(record.record_id, f"nsites={raw!r} is not a positive count")
    if int(raw) != record.nsites:
        raise RecordError(
            record.record_id, f"nsites={raw} disagrees with the structure ({record.nsites} sites)"
        )


def _derive(record: MaterialRecord) -> None:
    if not record.data.get("formula"):
        record.data["formula"] = record.composition.reduced_formula
        record.derived.append("formula")
    if record.data.get("spg") is None:
        try:
            spg = SpacegroupAnalyzer(record.structure, symprec=SYMPREC).get_space_group_number()
        except Exception:  # spglib fails on some cells: leave spg unknown, say so
            spg = None
        record.data["spg"] = spg
        record.derived.append(f"spg (spglib, symprec={SYMPREC} Å)")


def _derived_issues(record: MaterialRecord, stage: str) -> list[Issue]:
    issues = []
    if record.derived:
        issues.append(Issue(record.record_id, stage, Severity.degraded,
                            "derived from the structure: " + ", ".join(record.derived), record.source))
    if safe_name(record.record_id) != record.record_id:
        issues.append(Issue(record.record_id, stage, Severity.degraded,
                            f"id is not file-safe; files use {safe_name(record.record_id)!r}", record.source))
    return issues


def from_alexandria(entry: dict[str, Any], source: str, index: int = 0) -> tuple[MaterialRecord, list[Issue]]:
    """Validate one Alexandria ComputedStructureEntry dict into a record."""
    if not isinstance(entry, dict):
        raise RecordError(f"{source}#{index}", f"entry is a {type(entry).__name__}, not an object")
    data = dict(entry.get("data") or {})
    record_id = data.get("mat_id") or entry.get("entry_id")
    if not record_id:
        raise RecordError(f"{source}#{index}", "entry has neither data.mat_id nor entry_id")
    record_id = str(record_id)
    structure = _structure(record_id, entry.get("structure"))
    try:
        composition = Composition(entry["composition"]) if entry.get("composition") else structure.composition
    except (ValueError, TypeError) as error:
        raise RecordError(record_id, f"unknown element in composition: {error}") from error
    if composition.reduced_formula != structure.composition.reduced_formula:
        raise RecordError(
            record_id,
            f"composition {composition.formula} disagrees with the structure ({structure.composition.formula})",
        )
    record = MaterialRecord(record_id, source, structure, data, composition)
    _check_nsites(record, [])
    _derive(record)
    return record, _derived_issues(record, "records")


def vrh_moduli(tensor_voigt: Any) -> tuple[float, float]:
    """(K_VRH, G_VRH) in GPa from a 6x6 Voigt elastic tensor in GPa (Hill average of Voigt and Reuss)."""
    matrix = np.asarray(tensor_voigt, dtype=float)
    if matrix.shape != (6, 6) or not np.isfinite(matrix).all():
        raise ValueError(f"elastic tensor must be a finite 6x6 matrix, got shape {matrix.shape}")
    if abs(np.linalg.det(matrix)) < 1e-12:
        raise ValueError("elastic tensor is singular (no Reuss bound)")
    lowest = float(np.linalg.eigvalsh((matrix + matrix.T) / 2).min())
    if lowest <= 0:
        raise ValueError(
            f"not positive definite (mechanically unstable: lowest eigenvalue {lowest:.1f} GPa)"
        )
    tensor = ElasticTensor.from_voigt(matrix)
    return float(tensor.k_vrh), float(tensor.g_vrh)


def from_mp_elastic(
    row: dict[str, Any], source: str = "mp_elastic", index: int = 0
) -> tuple[MaterialRecord, list[Issue]]:
    """Validate one row of the MP elastic extract (CIF + 6x6 tensor) into a record with k_vrh, g_vrh."""
    record_id = str(row.get("material_id") or "")
    if not record_id:
        raise RecordError(f"{source}#{index}", "row has no material_id")
    raw = row.get("structure")
    if raw is None and row.get("cif"):
        try:
            raw = Structure.from_str(row["cif"], fmt="cif")
        except Exception as error:  # pymatgen's CIF parser raises many types
            raise RecordError(record_id, f"unparsable CIF: {error}") from error
    structure = _structure(record_id, raw)
    volume = row.get("volume")
    if volume is not None and not float(volume) > 0:
        raise RecordError(record_id, f"volume={volume} Å³ is not positive")
    if volume is not None and not math.isclose(float(volume), structure.volume, rel_tol=1e-3):
        raise RecordError(record_id, f"volume={volume} Å³ disagrees with the structure ({structure.volume:.4f} Å³)")
    try:
        k_vrh, g_vrh = vrh_moduli(row.get("elasticity.elastic_tensor"))
    except (ValueError, TypeError) as error:
        raise RecordError(record_id, f"elastic tensor: {error}") from error
    data = {"nsites": row.get("nsites"), "k_vrh": k_vrh, "g_vrh": g_vrh,
            "crystal_system": row.get("spacegroup.crystal_system"),
            "k_voigt": row.get("elasticity.K_Voigt"), "g_voigt": row.get("elasticity.G_Voigt")}
    record = MaterialRecord(record_id, source, structure, data, structure.composition)
    _check_nsites(record, [])
    _derive(record)
    return record, _derived_issues(record, "records")
