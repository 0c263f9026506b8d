"""A dataset from your own data: structure files plus a CSV whose numeric columns are the targets.

    matmodal build custom --structures cifs/ --properties props.csv --id-column material_id \\
        --target k_voigt:GPa --target band_gap:eV [--name my_set] [--image-size 64] [--featuriser magpie]

* **structures**: files and folders in any layout :mod:`matmodal.sources.structure_files` reads
  (CIF, POSCAR, pymatgen/Alexandria/MP JSON). A record's id is the entry's id field or the file
  stem; every structure passes the same checks as the built-in sources
  (:func:`matmodal.records.from_structure`).
* **properties**: a CSV with one row per material; ``id_column`` holds the record ids.
* **targets**: ``NAME[:UNIT]``: NAME is a column of the CSV, UNIT is free text recorded in the
  table's column metadata and in ``provenance.json`` (``custom_targets``). A value that is not a
  finite number stays NaN and is noted (degraded) in the manifest with the reason.

The modalities, manifest and provenance are the built-in datasets' (:func:`matmodal.datasets.build.build`);
the target columns are added to ``table.parquet`` after it, and the provenance records the CSV
(file, sha256, id column) and the custom targets. Ids present in only one of the two inputs are
reported in the manifest: a structure without a CSV row stays (targets NaN), a CSV row without
a structure is dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import ID, PROVENANCE, TABLE, BuildOptions, Dataset, build
from matmodal.manifest import Issue, RecordError, Severity
from matmodal.records import MaterialRecord, from_structure
from matmodal.sources import structure_files
from matmodal.sources.download import sha256

NAME = "custom"
TARGET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = {ID, "source", "formula", "spg", "nsites", "volume", "derived", "text_composition", "text_robocrys",
            "image_path"}


@dataclass(frozen=True)
class CustomTarget:
    """One target: a numeric column of the properties CSV and its unit (free text, may be empty)."""

    name: str
    unit: str = ""

    @classmethod
    def parse(cls, text: str | CustomTarget) -> CustomTarget:
        """``"band_gap:eV"`` -> ``CustomTarget("band_gap", "eV")``; ``"band_gap"`` has no unit."""
        if isinstance(text, CustomTarget):
            return text
        name, _, unit = str(text).partition(":")
        name, unit = name.strip(), unit.strip()
        if not TARGET_NAME.match(name) or re.match(r"^[a-z][a-z0-9]*_\d{3}$", name):
            raise ValueError(f"target {text!r}: NAME must be a column name of letters, digits and _ "
                             "(and not look like an embedding column such as magpie_001)")
        if name in RESERVED:
            raise ValueError(f"target {name!r} would overwrite the table's own column of that name")
        return cls(name, unit)


def read_properties(path: Path, id_column: str, targets: Sequence[CustomTarget],
                    issues: list[Issue]) -> pd.DataFrame:
    """The target columns of the CSV as floats, indexed by id; problems noted in ``issues``."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={id_column: str}, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"properties file {path}: unreadable ({error})") from error
    missing = [c for c in (id_column, *(t.name for t in targets)) if c not in frame.columns]
    if missing:
        raise ValueError(f"properties file {path} has no column(s) {missing} (columns: {', '.join(frame.columns)})")
    frame[id_column] = frame[id_column].str.strip()
    duplicated = frame[id_column].duplicated()
    issues += [Issue(i, "targets", Severity.degraded, f"duplicate row in {path.name} (the first one is used)",
                     str(path)) for i in frame.loc[duplicated, id_column]]
    frame = frame[~duplicated & (frame[id_column] != "")].set_index(id_column)
    values = pd.DataFrame(index=frame.index)
    for target in targets:
        raw = frame[target.name]
        numbers = pd.to_numeric(raw, errors="coerce").astype(float)
        numbers[~numbers.map(math.isfinite)] = float("nan")
        bad = numbers.isna() & (raw.astype(str).str.strip() != "")
        issues += [Issue(i, "targets", Severity.degraded,
                         f"{target.name}={raw[i]!r} is not a finite number (left NaN)", str(path))
                   for i in raw.index[bad]]
        values[target.name] = numbers
    return values


def _records(paths: Sequence[Path], values: pd.DataFrame, issues: list[Issue]) -> Iterator[MaterialRecord | Issue]:
    for path in structure_files.expand(paths):
        try:
            entries = list(structure_files.file_structures(path))
        except Exception as error:  # a whole unreadable file: one line naming it
            yield Issue(str(path), "records", Severity.unreadable, structure_files.reason(error), str(path))
            continue
        for label, name, structure in entries:
            try:
                if isinstance(structure, Exception):
                    raise RecordError(name, structure_files.reason(structure))
                data = values.loc[name].to_dict() if name in values.index else {}
                record, notes = from_structure(name, structure, label, data)
            except RecordError as error:
                yield error.issue(label)
                continue
            if name not in values.index:
                notes.append(Issue(name, "targets", Severity.degraded, "no row in the properties file (targets NaN)",
                                   label))
            issues += notes
            yield record


def _write_table(table: pd.DataFrame, folder: Path, targets: Sequence[CustomTarget], csv: Path) -> None:
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    units = {t.name: t for t in targets}
    fields = [f.with_metadata({"unit": units[f.name].unit, "label": f.name,
                               "definition": f"column {f.name!r} of {csv.name}"}) if f.name in units else f
              for f in arrow.schema]
    pq.write_table(arrow.cast(pa.schema(fields, metadata=arrow.schema.metadata)), folder / TABLE)


def build_custom(structures: Path | Sequence[Path] | None = None, properties: Path | None = None,
                 id_column: str | None = None, targets: Sequence[str | CustomTarget] = (), *,
                 dataset_name: str = NAME, options: BuildOptions | None = None,
                 settings: Settings | None = None) -> Dataset:
    """Build dataset ``dataset_name`` (its folder name; the registry's ``name`` is ``custom``) from
    structure files and a properties CSV (see the module docstring)."""
    if not structures or properties is None or not id_column or not targets:
        raise ValueError("a custom dataset needs --structures DIR_OR_FILE, --properties CSV, --id-column NAME "
                         "and at least one --target NAME[:UNIT]")
    settings = settings or get_settings()
    paths = [Path(structures)] if isinstance(structures, str | Path) else [Path(p) for p in structures]
    chosen = [CustomTarget.parse(t) for t in targets]
    issues: list[Issue] = []
    values = read_properties(Path(properties), id_column, chosen, issues)
    records = list(_records(paths, values, issues))
    seen = {r.record_id for r in records if isinstance(r, MaterialRecord)}
    issues += [Issue(i, "records", Severity.dropped, f"row of {Path(properties).name} has no structure",
                     str(properties)) for i in values.index if i not in seen]
    sources = {"structures": [str(p) for p in paths],
               "properties": {"file": str(properties), "sha256": sha256(Path(properties)), "id_column": id_column}}
    dataset = build(dataset_name, [*records, *issues], [], options=options, settings=settings, sources=sources)
    table = dataset.table.merge(values.reindex(columns=[t.name for t in chosen]), left_on=ID, right_index=True,
                                how="left")
    _write_table(table, dataset.folder, chosen, Path(properties))
    info: dict[str, Any] = {**dataset.provenance, "targets": [t.name for t in chosen],
                            "custom_targets": {t.name: t.unit for t in chosen}}
    (dataset.folder / PROVENANCE).write_text(json.dumps(info, indent=1, default=str))
    return Dataset(dataset_name, dataset.folder, table, dataset.manifest, info)
