"""costa2025-scale dataset from Materials Project summary data: ``mp_summary``.

A seeded sample of N materials (default 1,000, as costa2025; ``sample=0``: every row, mirror:
34,738) of ``mp2018_structures_34738.jsonl.gz`` (or the ``materials.summary`` endpoint online),
streamed and sampled before any CIF is parsed, with all three modalities through the common
builder (composition + robocrys text, rendered image, structure embeddings), the manifest and
provenance.

Targets (units in the column metadata): ``e_form`` (formation_energy_per_atom, eV/atom),
``gap`` (band_gap, eV; MP's fundamental gap, i.e. the indirect gap where it is indirect),
``vol_per_atom`` (Å³/atom), ``mag_per_vol`` (total_magnetization / volume, μB/Å³) and
``e_fermi`` (efermi, eV). The source has no e_above_hull, total energy or DOS at E_F, so three
costa2025 targets (``e_hull``, ``e_tot_per_atom``, ``dos_per_atom``) are absent: listed under
``missing_targets`` in the table's parquet metadata and in provenance.json.

Data: Materials Project, CC-BY-4.0 (Jain et al., APL Materials 1, 011002, 2013); mirror rows
from an MP snapshot of about 2018 (see ../shared/mirror/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pymatgen.core import Structure

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import BuildOptions, Dataset, build, safe_records
from matmodal.datasets.extras import annotate
from matmodal.datasets.quality import checked
from matmodal.manifest import Issue, RecordError
from matmodal.records import MaterialRecord, _check_nsites, _derive, _derived_issues, _structure
from matmodal.sources.download import sha256
from matmodal.sources.materials_project import SUMMARY_2018_FILE, MaterialsProject, parse_cif
from matmodal.sources.mirror import mirror_file
from matmodal.targets import TargetName

NAME = "mp_summary"
DEFAULT_SAMPLE = 1000
SUMMARY_TARGETS: tuple[TargetName, ...] = (
    TargetName.e_form, TargetName.gap, TargetName.vol_per_atom, TargetName.mag_per_vol, TargetName.e_fermi,
)
MISSING_TARGETS: dict[str, str] = {
    TargetName.e_hull.value: "no energy_above_hull in the source (mirror: not in the 2018 extract)",
    TargetName.e_tot_per_atom.value: "no total energy in the source",
    TargetName.dos_per_atom.value: "no density of states at the Fermi level in the source",
}


def parse_structure(record_id: str, row: dict[str, Any]) -> Structure:
    """The row's ``structure`` (Structure or dict) or its ``cif`` text, validated."""
    raw = row.get("structure")
    if raw is None and row.get("cif"):
        try:
            raw = parse_cif(row["cif"])
        except Exception as error:  # pymatgen's CIF parser raises many types
            raise RecordError(record_id, f"unparsable CIF: {type(error).__name__}: {error}") from error
    return _structure(record_id, raw)


def check_volume(record_id: str, volume: Any, structure: Structure) -> None:
    """The listed cell volume (Å³) must be positive and match the structure's (0.1 %)."""
    if volume is None:
        return
    if not isinstance(volume, int | float) or not float(volume) > 0:
        raise RecordError(record_id, f"volume={volume!r} Å³ is not a positive number")
    if not math.isclose(float(volume), structure.volume, rel_tol=1e-3):
        raise RecordError(record_id, f"volume={volume} Å³ disagrees with the structure ({structure.volume:.4f} Å³)")


def from_mp_summary(row: dict[str, Any], source: str = "mp_summary", index: int = 0) -> tuple[MaterialRecord, list[Issue]]:
    """Validate one summary row (CIF or structure + the scale summary fields) into a record.

    Raw fields become the registry's keys (``e_form``, ``band_gap_ind``, ``efermi``,
    ``total_mag``); each value passes :func:`matmodal.targets.check_value` or is set to NaN with
    the reason in the returned issues."""
    record_id = str(row.get("material_id") or "")
    if not record_id:
        raise RecordError(f"{source}#{index}", "row has no material_id")
    if row.get("_error"):
        raise RecordError(record_id, row["_error"], stage="source")
    structure = parse_structure(record_id, row)
    check_volume(record_id, row.get("volume"), structure)
    notes: list[Issue] = []
    magnetisation = row.get("total_magnetization")
    per_volume = magnetisation / structure.volume if isinstance(magnetisation, int | float) else magnetisation
    data = {
        "e_form": checked(record_id, TargetName.e_form, row.get("formation_energy_per_atom"), notes, source),
        "band_gap_ind": checked(record_id, TargetName.gap, row.get("band_gap"), notes, source),
        "efermi": checked(record_id, TargetName.e_fermi, row.get("efermi"), notes, source),
        "total_mag": None if checked(record_id, TargetName.mag_per_vol, per_volume, notes, source) is None
        else float(magnetisation),
    }
    record = MaterialRecord(record_id, source, structure, data, structure.composition)
    _check_nsites(record, [])
    _derive(record)
    return record, notes + _derived_issues(record, "records")


def summary_records(rows: Iterable[dict[str, Any]], source: str) -> Iterator[MaterialRecord | Issue]:
    yield from safe_records(from_mp_summary, ((row, source, i) for i, row in enumerate(rows)))


def build_mp_summary(
    material_ids: Sequence[str] | None = None,
    *,
    sample: int | None = DEFAULT_SAMPLE,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME,
) -> Dataset:
    """Build ``mp_summary``: a seeded ``sample`` of N materials (0 or None: all), seed from settings."""
    settings = settings or get_settings()
    mp = MaterialsProject(settings)
    if mp.offline:
        path = mirror_file("materials_project", SUMMARY_2018_FILE, settings)
        origin = {"file": SUMMARY_2018_FILE, "sha256": sha256(path)}
    else:
        origin = {"endpoint": "materials.summary"}
    origin |= {"licence": "CC-BY-4.0 (Jain et al. 2013)", "sample": sample or "all", "seed": settings.seed}
    rows = mp.summary_rows(sample=sample or None, material_ids=material_ids)
    dataset = build(name, summary_records(rows, origin.get("file", "materials.summary")), SUMMARY_TARGETS,
                    options=options, settings=settings, sources={"materials_project": origin})
    metadata = {"targets": [t.value for t in SUMMARY_TARGETS], "missing_targets": MISSING_TARGETS,
                "sample": sample or "all", "seed": settings.seed}
    return annotate(dataset, metadata=metadata)
