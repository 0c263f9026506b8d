"""Typed, validated material records built from raw source entries.

A :class:`MaterialRecord` wraps a pymatgen ``Structure`` plus the raw numeric fields of its
source. Parsers raise :class:`~matmodal.manifest.RecordError` (record id + reason) for
unusable entries and return :class:`~matmodal.manifest.Issue` rows for what they derived.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Composition, Structure

from matmodal.isolation import GIB, Isolated, Limits
from matmodal.manifest import Issue, RecordError, Severity, printable
from matmodal.paths import safe_name
from matmodal.symmetry import SYMPREC  # one spglib tolerance for the project
from matmodal.targets import TARGETS, TargetName

MAX_SITES = 1000  # sites per cell; bounds the O(n²) distance check, spglib, robocrys and the renderer
MAX_CELL_LENGTH = 1000.0  # Å, longest lattice vector accepted
MIN_DISTANCE = 0.5  # Å, closest two atoms (or an atom and its image) may be; H2 is 0.74 Å
NUMERIC_FIELDS = ("energy_total", "band_gap_ind", "band_gap_dir", "e_form", "e_above_hull", "total_mag",
                  "dos_ef", "efermi", "energy_corrected", "e_phase_separation")


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
        """A numeric field as float, or None when missing, null, NaN or not a number (a string is not read)."""
        value = self.data.get(key)
        if not _is_real(value):
            return None
        value = float(value)
        return None if math.isnan(value) else value


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_raw_geometry(record_id: str, raw: dict[str, Any]) -> None:
    """Types, sizes and finiteness of a structure dict, before pymatgen or any native code reads it."""
    lattice = raw.get("lattice")
    matrix = lattice.get("matrix") if isinstance(lattice, dict) else None
    if not (isinstance(matrix, list) and len(matrix) == 3
            and all(isinstance(row, list) and len(row) == 3 and all(map(_is_real, row)) for row in matrix)):
        raise RecordError(record_id, "structure.lattice.matrix is not a 3x3 array of numbers")
    if not np.isfinite(np.asarray(matrix, dtype=float)).all():
        raise RecordError(record_id, "lattice has non-finite (NaN/inf) components")
    sites = raw.get("sites")
    if not isinstance(sites, list):
        raise RecordError(record_id, f"structure.sites is a {type(sites).__name__}, not a list")
    if len(sites) > MAX_SITES:
        raise RecordError(record_id, f"{len(sites)} sites is more than the limit of {MAX_SITES}")
    for i, site in enumerate(sites):
        coords = site.get("abc", site.get("xyz")) if isinstance(site, dict) else None
        if not (isinstance(coords, list) and len(coords) == 3 and all(map(_is_real, coords))):
            raise RecordError(record_id, f"site {i} has no 3 numeric coordinates (abc)")
        if not all(map(math.isfinite, coords)):
            raise RecordError(record_id, f"site {i} has non-finite (NaN/inf) coordinates {coords}")


def _structure(record_id: str, raw: Any) -> Structure:
    if raw is None:
        raise RecordError(record_id, "entry has no 'structure'")
    if not isinstance(raw, dict | Structure):
        raise RecordError(record_id, f"structure is a {type(raw).__name__}, not an object")
    if isinstance(raw, dict):
        _check_raw_geometry(record_id, raw)
    try:
        structure = raw if isinstance(raw, Structure) else Structure.from_dict(raw)
    except Exception as error:  # pymatgen raises many types on malformed dicts
        message = str(error)
        if "not a valid Element" in message or "Invalid element" in message:
            raise RecordError(record_id, f"unknown element: {message}") from error
        raise RecordError(record_id, f"unparsable structure: {type(error).__name__}: {message}") from error
    return check_structure(record_id, structure)


def check_structure(record_id: str, structure: Structure) -> Structure:
    """Refuse a structure no stage can safely handle; cheap checks first, in this order.

    Sites (1..MAX_SITES), finite lattice and coordinates, cell volume > 0, volume per atom in
    the ``vol_per_atom`` target range (Å³/atom), lattice vectors ≤ MAX_CELL_LENGTH Å, ordered
    occupancies, and no two atoms (or an atom and its periodic image) closer than
    MIN_DISTANCE Å. Everything that reaches spglib, robocrys or the renderer has passed this.
    """
    n = len(structure)
    if n == 0:
        raise RecordError(record_id, "structure has no sites")
    if n > MAX_SITES:
        raise RecordError(record_id, f"{n} sites is more than the limit of {MAX_SITES}")
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all():
        raise RecordError(record_id, "lattice has non-finite (NaN/inf) components")
    if not np.isfinite(structure.frac_coords).all():
        raise RecordError(record_id, "a site has non-finite (NaN/inf) coordinates")
    volume = abs(float(np.linalg.det(matrix)))
    if not volume > 1e-6:
        raise RecordError(record_id, f"degenerate lattice (cell volume {volume:.3g} Å³)")
    bounds = TARGETS[TargetName.vol_per_atom]
    if not bounds.minimum <= volume / n <= bounds.maximum:
        raise RecordError(record_id, f"volume per atom {volume / n:.4g} Å³ is outside {bounds.range_text}")
    longest = float(np.linalg.norm(matrix, axis=1).max())
    if longest > MAX_CELL_LENGTH:
        raise RecordError(record_id, f"lattice vector of {longest:.4g} Å is longer than {MAX_CELL_LENGTH:g} Å")
    if not structure.is_ordered:
        raise RecordError(
            record_id, "partial occupancies (disordered structure); DFT targets need an ordered cell"
        )
    _check_distances(record_id, structure)
    return structure


def _check_distances(record_id: str, structure: Structure) -> None:
    shortest_vector = float(min(structure.lattice.get_lll_reduced_lattice().abc))
    if shortest_vector < MIN_DISTANCE:
        raise RecordError(record_id, f"an atom is {shortest_vector:.3g} Å from its own periodic image "
                                     f"(minimum {MIN_DISTANCE} Å)")
    if len(structure) > 1:
        distances = structure.distance_matrix + np.eye(len(structure)) * 1e9
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[i, j] < MIN_DISTANCE:
            raise RecordError(record_id, f"overlapping atoms: sites {i} and {j} are {distances[i, j]:.3g} Å "
                                         f"apart (minimum {MIN_DISTANCE} Å)")


def _check_nsites(record: MaterialRecord, issues: list[Issue]) -> None:
    raw = record.data.get("nsites")
    if raw is None:
        record.data["nsites"] = record.nsites
        record.derived.append("nsites")
        return
    if not _is_real(raw) or not float(raw).is_integer() or int(raw) <= 0:
        raise RecordError(record.record_id, f"nsites={raw!r} is not a positive count")
    if int(raw) != record.nsites:
        raise RecordError(
            record.record_id, f"nsites={raw} disagrees with the structure ({record.nsites} sites)"
        )
    record.data["nsites"] = int(raw)


def _check_fields(record: MaterialRecord, issues: list[Issue]) -> None:
    """Numeric source fields that are not numbers (a string "0.1", a list, a bool) become missing, said."""
    for key in NUMERIC_FIELDS:
        value = record.data.get(key)
        if value is not None and not _is_real(value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            issues.append(Issue(record.record_id, "records", Severity.degraded,
                                f"data.{key} is a {type(value).__name__} ({shown}), not a number; "
                                "treated as missing", record.source))
            record.data[key] = None
    formula = record.data.get("formula")
    if formula is not None:  # not a string: derived below, and said; a string: printable text
        record.data["formula"] = printable(formula) if isinstance(formula, str) else None
    spg = record.data.get("spg")
    if spg is not None and not (_is_real(spg) and float(spg).is_integer() and 1 <= spg <= 230):
        issues.append(Issue(record.record_id, "records", Severity.degraded,
                            f"data.spg={printable(repr(spg))[:40]} is not a space group number (1-230)",
                            record.source))
        record.data["spg"] = None
    elif spg is not None:
        record.data["spg"] = int(spg)


def _derive(record: MaterialRecord) -> None:
    if not record.data.get("formula"):  # missing, empty or not a string (see _check_fields)
        record.data["formula"] = record.composition.reduced_formula
        record.derived.append("formula")
    if record.data.get("spg") is None:
        spg, failure = _SPACE_GROUP(record.structure)  # spglib in a worker: a crash costs only this field
        record.data["spg"] = spg  # None when spglib fails or crashes: unknown, said so
        record.derived.append(f"spg (spglib, symprec={SYMPREC} Å)" if failure is None
                              else f"spg: unknown (spglib failed: {failure})")


# spglib runs in one persistent worker process (validation first, this as the backstop)
_SPACE_GROUP = Isolated("matmodal.symmetry:spacegroup_number", Limits(memory_bytes=2 * GIB, seconds=60.0))


def _derived_issues(record: MaterialRecord, stage: str) -> list[Issue]:
    issues = []
    if record.derived:
        issues.append(Issue(record.record_id, stage, Severity.degraded,
                            "derived from the structure: " + ", ".join(record.derived), record.source))
    if safe_name(record.record_id) != record.record_id:
        issues.append(Issue(record.record_id, stage, Severity.degraded,
                            f"id is not file-safe; files use {safe_name(record.record_id)!r}", record.source))
    return issues


def record_id_of(raw_id: Any, fallback: str, missing: str = "has no id") -> tuple[str, list[str]]:
    """A record id as printable text (NUL, control characters, lone surrogates escaped) + notes.

    ``fallback`` (``file#index``) names the record when the id itself is unusable.
    """
    if raw_id is None or raw_id == "":
        raise RecordError(fallback, missing)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise RecordError(fallback, f"id is a {type(raw_id).__name__}, not a string")
    record_id = printable(str(raw_id))
    notes = [f"id had control or non-text characters; stored escaped as {record_id[:60]!r}"] \
        if record_id != str(raw_id) else []
    return record_id, notes


def from_alexandria(entry: Any, source: str, index: int = 0) -> tuple[MaterialRecord, list[Issue]]:
    """Validate one Alexandria ComputedStructureEntry dict into a record."""
    fallback = f"{source}#{index}"
    if not isinstance(entry, dict):
        raise RecordError(fallback, f"entry is a {type(entry).__name__}, not an object")
    raw_data = entry.get("data")
    if raw_data is not None and not isinstance(raw_data, dict):
        raise RecordError(printable(str(entry.get("entry_id") or fallback)),
                          f"data is a {type(raw_data).__name__}, not an object")
    data = dict(raw_data or {})
    record_id, id_notes = record_id_of(data.get("mat_id") or entry.get("entry_id"), fallback,
                                        "entry has neither data.mat_id nor entry_id")
    structure = _structure(record_id, entry.get("structure"))
    try:
        composition = Composition(entry["composition"]) if entry.get("composition") else structure.composition
    except Exception as error:  # pymatgen raises many types on malformed compositions
        raise RecordError(record_id, f"unknown element in composition: {type(error).__name__}: {error}") from error
    if composition.reduced_formula != structure.composition.reduced_formula:
        raise RecordError(
            record_id,
            f"composition {composition.formula} disagrees with the structure ({structure.composition.formula})",
        )
    record = MaterialRecord(record_id, source, structure, data, composition)
    issues = [Issue(record_id, "records", Severity.degraded, note, source) for note in id_notes]
    _check_nsites(record, issues)
    _check_fields(record, issues)
    _derive(record)
    return record, issues + _derived_issues(record, "records")


def vrh_moduli(tensor_voigt: Any) -> tuple[float, float]:
    """(K_VRH, G_VRH) in GPa from a 6x6 Voigt elastic tensor in GPa (Hill average of Voigt and Reuss)."""
    if tensor_voigt is None:
        raise ValueError("missing (no 6x6 tensor in the row)")
    matrix = np.asarray(tensor_voigt, dtype=float)
    if matrix.shape != (6, 6):
        raise ValueError(f"elastic tensor must be a 6x6 matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{int((~np.isfinite(matrix)).sum())} non-finite (NaN/inf) component(s)")
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
    record_id, id_notes = record_id_of(row.get("material_id"), f"{source}#{index}", "row has no material_id")
    raw = row.get("structure")
    if raw is None and row.get("cif"):
        try:
            raw = Structure.from_str(row["cif"], fmt="cif")
        except Exception as error:  # pymatgen's CIF parser raises many types
            raise RecordError(record_id, f"unparsable CIF: {error}") from error
    structure = _structure(record_id, raw)
    volume = row.get("volume")
    if volume is not None and not _is_real(volume):
        raise RecordError(record_id, f"volume is a {type(volume).__name__}, not a number")
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
    issues = [Issue(record_id, "records", Severity.degraded, note, source) for note in id_notes]
    _check_nsites(record, issues)
    _derive(record)
    return record, issues + _derived_issues(record, "records")


def from_structure(record_id: str, structure: Structure, source: str,
                   data: dict[str, Any] | None = None) -> tuple[MaterialRecord, list[Issue]]:
    """A record from a user's structure file (custom datasets): the same checks and derived
    fields (formula, space group) as every source's records; ``data`` holds its properties."""
    structure = check_structure(record_id, structure)
    record = MaterialRecord(record_id, source, structure, dict(data or {}), structure.composition)
    _derive(record)
    return record, _derived_issues(record, "records")
