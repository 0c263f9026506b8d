"""Align modalities into one table: parquet + assets folder + manifest + provenance.

``outputs/datasets/<name>/``::

    table.parquet      one row per record: ids, targets (units in the column metadata),
                       text columns, image_path, embedding columns
    manifest.parquet   every record dropped or degraded, with the stage and the reason (+ .csv)
    provenance.json    sources with sha256, code version, settings, featurisers, backbones
    images/            rendered structures (one PNG per record)

Each stage caches its work by content + settings (robocrys text, images, embeddings), so a
rerun reuses what is done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from matmodal import manifest, provenance
from matmodal.config import Settings, get_settings
from matmodal.manifest import Issue, RecordError, Severity
from matmodal.modalities.text import composition_text, robocrys_description
from matmodal.records import MaterialRecord
from matmodal.targets import TARGETS, TargetName

TABLE = "table.parquet"
MANIFEST = "manifest.parquet"
PROVENANCE = "provenance.json"
ID = "material_id"


@dataclass
class BuildOptions:
    """What to put in the table besides ids and targets."""

    robocrys: bool = True
    robocrys_limit: int | None = None  # describe only the first N records (by id); None = all
    image: Any | None = None  # matmodal.modalities.image.RenderSettings, or None for no images
    featurisers: Sequence[str] = ()  # names in matmodal.modalities.structure.FEATURISERS
    n_jobs: int = 1


@dataclass
class Dataset:
    """A built dataset: the aligned table, its manifest and where they live."""

    name: str
    folder: Path
    table: pd.DataFrame
    manifest: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        return [c for c in self.table.columns if c in TargetName.__members__]


def collect(
    items: Iterable[MaterialRecord | Issue], issues: list[Issue]
) -> list[MaterialRecord]:
    """Records from a stream of records/issues, dropping duplicate ids (first one wins)."""
    records: dict[str, MaterialRecord] = {}
    for item in items:
        if isinstance(item, Issue):
            issues.append(item)
        elif item.record_id in records:
            first = records[item.record_id].source
            issues.append(Issue(item.record_id, "records", Severity.dropped,
                                f"duplicate id (first seen in {first})", item.source))
        else:
            records[item.record_id] = item
    return list(records.values())


def target_frame(records: Sequence[MaterialRecord], targets: Sequence[TargetName], issues: list[Issue]) -> pd.DataFrame:
    """Target values per record; a missing/NaN value stays NaN and is noted as degraded."""
    rows = []
    for record in records:
        row: dict[str, Any] = {ID: record.record_id}
        missing = []
        for name in targets:
            value = TARGETS[name].compute(record)
            row[name.value] = float("nan") if value is None else value
            if value is None:
                missing.append(name.value)
        if missing:
            issues.append(Issue(record.record_id, "targets", Severity.degraded,
                                f"target(s) missing or NaN: {', '.join(missing)}", record.source))
        rows.append(row)
    return pd.DataFrame(rows)


def identity_frame(records: Sequence[MaterialRecord]) -> pd.DataFrame:
    return pd.DataFrame([{
        ID: r.record_id, "source": r.source, "formula": r.formula, "spg": r.data.get("spg"),
        "nsites": r.nsites, "volume": r.volume, "derived": ", ".join(r.derived),
        "text_composition": composition_text(r.composition),
    } for r in records])


def _describe(args: tuple[Any, Path]) -> tuple[str, str | None]:
    structure, cache_dir = args
    return robocrys_description(structure, cache_dir=cache_dir)


def robocrys_column(
    records: Sequence[MaterialRecord], settings: Settings, options: BuildOptions, issues: list[Issue]
) -> pd.Series:
    """Robocrys descriptions (cached; composition fallback noted in the manifest)."""
    chosen = sorted(records, key=lambda r: r.record_id)[: options.robocrys_limit]
    jobs = [(r.structure, settings.cache_dir / "text") for r in chosen]
    bar = {"total": len(jobs), "desc": "robocrys", "unit": "structure"}
    if options.n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(options.n_jobs) as pool:
            results = list(tqdm(pool.map(_describe, jobs, chunksize=4), **bar))
    else:
        results = [_describe(job) for job in tqdm(jobs, **bar)]
    texts = {}
    for record, (text, failure) in zip(chosen, results, strict=True):
        texts[record.record_id] = text
        if failure:
            issues.append(Issue(record.record_id, "text", Severity.degraded, failure, record.source))
    return pd.Series(texts, name="text_robocrys", dtype="object")


def _modalities(records, table, settings, options, folder, issues) -> tuple[pd.DataFrame, dict[str, Any]]:
    info: dict[str, Any] = {}
    items = [(r.record_id, r.structure) for r in records]
    if options.image is not None:
        from matmodal.modalities.image import render_many

        paths, image_issues = render_many(items, folder / "images", options.image, n_jobs=options.n_jobs)
        issues += image_issues
        table["image_path"] = table[ID].map({k: str(Path(v).resolve()) for k, v in paths.items()})
        info["image"] = repr(options.image)
    for name in options.featurisers:
        from matmodal.modalities.structure import featurise

        frame, feat_issues = featurise(name, items, cache_dir=settings.cache_dir, n_jobs=options.n_jobs,
                                       seed=settings.seed)
        issues += feat_issues
        table = table.merge(frame, left_on=ID, right_index=True, how="left")
        info[f"featuriser:{name}"] = frame.attrs.get("provenance", {"featuriser": name})
    return table, info


def arrow_with_units(table: pd.DataFrame) -> pa.Table:
    """The table as Arrow, with unit, label and definition metadata on every target column."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    fields = []
    for f in arrow.schema:
        target = TARGETS.get(TargetName(f.name)) if f.name in TargetName.__members__ else None
        meta = {"unit": target.unit, "label": target.label, "definition": target.definition} if target else None
        fields.append(f.with_metadata(meta) if meta else f)
    return arrow.cast(pa.schema(fields, metadata=arrow.schema.metadata))


def build(
    name: str,
    items: Iterable[MaterialRecord | Issue],
    targets: Sequence[TargetName],
    *,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    sources: dict[str, Any] | None = None,
) -> Dataset:
    """Build and write dataset ``name`` from validated records (and upstream issues)."""
    settings = settings or get_settings()
    options = options or BuildOptions()
    folder = settings.dataset_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    issues: list[Issue] = []
    records = collect(items, issues)
    if not records:
        raise ValueError(f"dataset {name!r}: no usable record (see the issues: {issues[:3]})")
    table = identity_frame(records).merge(target_frame(records, targets, issues), on=ID)
    table["text_robocrys"] = (
        table[ID].map(robocrys_column(records, settings, options, issues)) if options.robocrys else None
    )
    table["image_path"] = None
    table, modality_info = _modalities(records, table, settings, options, folder, issues)
    table = table.sort_values(ID).reset_index(drop=True)
    pq.write_table(arrow_with_units(table), folder / TABLE)
    frame = manifest.write(issues, folder / MANIFEST)
    info = provenance.base(
        settings, dataset=name, n_records=len(table), n_dropped=int((frame.severity == "dropped").sum()),
        targets=[t.value for t in targets], sources=sources or {}, modalities=modality_info,
        robocrys={"enabled": options.robocrys, "limit": options.robocrys_limit},
    )
    (folder / PROVENANCE).write_text(json.dumps(info, indent=1, default=str))
    return Dataset(name, folder, table, frame, info)


def load(name: str, settings: Settings | None = None) -> Dataset:
    """Read a built dataset back (table, manifest, provenance)."""
    settings = settings or get_settings()
    folder = settings.dataset_dir(name)
    if not (folder / TABLE).exists():
        raise FileNotFoundError(f"dataset {name!r} is not built yet ({folder / TABLE}); run `matmodal build {name}`")
    info = json.loads((folder / PROVENANCE).read_text()) if (folder / PROVENANCE).exists() else {}
    return Dataset(name, folder, pd.read_parquet(folder / TABLE), manifest.read(folder / MANIFEST), info)


def safe_records(parse, rows: Iterable[tuple[Any, str, int]]) -> Iterable[MaterialRecord | Issue]:
    """Apply a record parser to raw rows, turning RecordErrors and degradations into issues."""
    for raw, source, index in rows:
        try:
            record, notes = parse(raw, source, index)
        except RecordError as error:
            yield error.issue(source)
            continue
        yield from notes
        yield record
