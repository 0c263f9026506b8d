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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matmodal import manifest, provenance
from matmodal.config import Settings, get_settings
from matmodal.manifest import Issue, RecordError, Severity, Unreadable
from matmodal.modalities.text import composition_text, robocrys_many
from matmodal.parallel import Engine
from matmodal.records import MaterialRecord
from matmodal.schema import MATERIAL_ID
from matmodal.targets import TARGETS, TargetName, check_value

TABLE = "table.parquet"
MANIFEST = "manifest.parquet"
PROVENANCE = "provenance.json"
ID = MATERIAL_ID  # the id column (matmodal.schema)


@dataclass
class BuildOptions:
    """What to put in the table besides ids and targets."""

    robocrys: bool = True
    robocrys_limit: int | None = None  # describe only the first N records (by id); None = all
    image: Any | None = None  # matmodal.modalities.image.RenderSettings, or None for no images
    featurisers: Sequence[str] = ()  # names in matmodal.modalities.structure.FEATURISERS
    n_jobs: int = 1
    engine: Any | None = None  # matmodal.parallel.Engine for robocrys (None: Engine.from_env(), serial by default)
    isolate: bool = True  # images and featurisers in worker processes with limits (matmodal.isolation)


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
        """Target columns: the registry's, and a custom dataset's own (``provenance["custom_targets"]``)."""
        custom = (self.provenance or {}).get("custom_targets") or {}
        return [c for c in self.table.columns if c in TargetName.__members__ or c in custom]


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
    """Target values per record, type- and range-checked (:func:`matmodal.targets.check_value`).

    A missing/NaN value, or one that is infinite or outside the target's physical range, stays
    NaN in the table and is noted as degraded with the reason; the record's other targets stay.
    """
    rows = []
    for record in records:
        row: dict[str, Any] = {ID: record.record_id}
        missing, problems = [], []
        for name in targets:
            value, problem = check_value(name, TARGETS[name].compute(record))
            row[name.value] = float("nan") if value is None else value
            if problem:
                problems.append(f"{problem} (left NaN)")
            elif value is None:
                missing.append(name.value)
        if missing:
            problems.append(f"target(s) missing or NaN: {', '.join(missing)}")
        if problems:
            issues.append(Issue(record.record_id, "targets", Severity.degraded,
                                "; ".join(problems), record.source))
        rows.append(row)
    return pd.DataFrame(rows, columns=[ID, *(t.value for t in targets)])


def identity_frame(records: Sequence[MaterialRecord]) -> pd.DataFrame:
    return pd.DataFrame([{
        ID: r.record_id, "source": r.source, "formula": r.formula, "spg": r.data.get("spg"),
        "nsites": r.nsites, "volume": r.volume, "derived": ", ".join(r.derived),
        "text_composition": composition_text(r.composition),
    } for r in records])


def robocrys_column(
    records: Sequence[MaterialRecord], settings: Settings, options: BuildOptions, issues: list[Issue]
) -> pd.Series:
    """Robocrys descriptions (cached; each in an isolated worker; composition fallback noted in the manifest)."""
    chosen = sorted(records, key=lambda r: r.record_id)[: options.robocrys_limit]
    engine = options.engine or Engine.from_env()
    if engine.enabled:
        from matmodal.datasets.scale import robocrys_on_ray

        results = robocrys_on_ray([r.structure for r in chosen], settings.cache_dir / "text", engine)
    else:
        results = robocrys_many([r.structure for r in chosen], cache_dir=settings.cache_dir / "text",
                                n_jobs=options.n_jobs)
    texts = {}
    for record, (text, failure) in zip(chosen, results, strict=True):
        texts[record.record_id] = text
        if failure:
            issues.append(Issue(record.record_id, "text", Severity.degraded, failure, record.source))
    return pd.Series(texts, name="text_robocrys", dtype="object")


def _stage_failed(stage: str, records: Sequence[MaterialRecord], error: Exception) -> list[Issue]:
    reason = f"{stage} stage failed for the whole batch ({type(error).__name__}: {error})"
    return [Issue(r.record_id, stage, Severity.dropped, reason, r.source) for r in records]


def _modalities(records, table, settings, options, folder, issues) -> tuple[pd.DataFrame, dict[str, Any]]:
    info: dict[str, Any] = {}
    items = [(r.record_id, r.structure) for r in records]
    if options.isolate and options.featurisers:
        from matmodal.modalities.structure.base import start_worker

        start_worker()  # its imports overlap the images
    if options.image is not None:
        from matmodal.modalities.image import render_many

        try:
            paths, image_issues = render_many(items, folder / "images", options.image, n_jobs=options.n_jobs,
                                              isolate=options.isolate)
        except Exception as error:  # a broken worker pool must not cost the table
            paths, image_issues = {}, _stage_failed("image", records, error)
        issues += image_issues
        table["image_path"] = table[ID].map({k: str(Path(v).resolve()) for k, v in paths.items()})
        info["image"] = repr(options.image)
    for name in options.featurisers:
        from matmodal.modalities.structure import featurise

        try:
            frame, feat_issues = featurise(name, items, cache_dir=settings.cache_dir, n_jobs=options.n_jobs,
                                           seed=settings.seed, isolate=options.isolate)
        except Exception as error:  # a broken worker pool must not cost the table
            frame, feat_issues = pd.DataFrame(index=pd.Index([], name=ID)), _stage_failed(
                f"structure:{name}", records, error)
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


class NoUsableRecordError(ValueError):
    """A build read nothing it could keep; the message names the files and the reasons."""


def _no_usable(name: str, issues: Sequence[Issue], folder: Path) -> NoUsableRecordError:
    files = [i for i in issues if i.severity == Severity.unreadable]
    dropped = [i for i in issues if i.severity == Severity.dropped]
    lines = [i.line() for i in files] + [i.line() for i in dropped[:3]]
    more = f" (+{len(dropped) - 3} more)" if len(dropped) > 3 else ""
    detail = "; ".join(lines) + more if lines else "the sources yielded no records"
    return NoUsableRecordError(
        f"dataset {name!r}: no usable record ({len(dropped)} dropped, {len(files)} file problem(s)): "
        f"{detail} — see {folder / MANIFEST.replace('.parquet', '.csv')}")


def _modality_issues(issues: Sequence[Issue]) -> list[Issue]:
    """Issues of stages that run on the table: the row stays, so 'dropped' there means 'degraded'."""
    return [replace(i, severity=Severity.degraded, reason=f"{i.reason} (row kept without this {i.stage})")
            if i.severity == Severity.dropped else i for i in issues]


def build(
    name: str,
    items: Iterable[MaterialRecord | Issue],
    targets: Sequence[TargetName],
    *,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    sources: dict[str, Any] | None = None,
) -> Dataset:
    """Build and write dataset ``name`` from validated records (and upstream issues).

    Raises :class:`NoUsableRecordError` (after writing the manifest) when no record is usable.
    """
    settings = settings or get_settings()
    options = options or BuildOptions()
    folder = settings.dataset_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    issues: list[Issue] = []
    records = collect(items, issues)
    if not records:
        manifest.write(issues, folder / MANIFEST)
        raise _no_usable(name, issues, folder)
    table = identity_frame(records).merge(target_frame(records, targets, issues), on=ID)
    later: list[Issue] = []
    table["text_robocrys"] = (
        table[ID].map(robocrys_column(records, settings, options, later)) if options.robocrys else None
    )
    table["image_path"] = None
    table, modality_info = _modalities(records, table, settings, options, folder, later)
    issues += _modality_issues(later)
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


def summary(dataset: Dataset) -> list[str]:
    """Console lines: one per whole-file problem, then ``N kept, M degraded, K dropped — see manifest.csv``.

    N = rows in the table, M = of them with a degraded note, K = records read but not kept.
    """
    frame = dataset.manifest
    lines = [f"{r.record_id}: {r.reason}" for r in frame[frame.severity == Severity.unreadable].itertuples()]
    kept = set(dataset.table[ID])
    degraded = len(set(frame.record_id[frame.severity == Severity.degraded]) & kept)
    dropped = int((frame.severity == Severity.dropped).sum())
    lines.append(f"{dataset.name}: {len(dataset.table)} kept, {degraded} degraded, {dropped} dropped "
                 f"— see {dataset.folder / MANIFEST.replace('.parquet', '.csv')}")
    return lines


def load(name: str, settings: Settings | None = None) -> Dataset:
    """Read a built dataset back (table, manifest, provenance); a broken file is named with the fix."""
    settings = settings or get_settings()
    folder = settings.dataset_dir(name)
    if not (folder / TABLE).exists():
        raise FileNotFoundError(f"dataset {name!r} is not built yet ({folder / TABLE}); run `matmodal build {name}`")
    try:
        info = json.loads((folder / PROVENANCE).read_text()) if (folder / PROVENANCE).exists() else {}
        return Dataset(name, folder, pd.read_parquet(folder / TABLE), manifest.read(folder / MANIFEST), info)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DatasetFileError(
            f"dataset {name!r} in {folder} is unreadable ({type(error).__name__}: {error}); "
            f"rebuild it with `matmodal build {name}`") from error


class DatasetFileError(ValueError):
    """A built dataset's files are broken (truncated parquet, invalid provenance JSON)."""


def _record_id_guess(raw: Any, source: str, index: int) -> str:
    """The best id for the manifest of a record whose parser failed unexpectedly."""
    if isinstance(raw, dict):
        data = raw.get("data")
        for value in (data.get("mat_id") if isinstance(data, dict) else None, raw.get("entry_id"),
                      raw.get("material_id")):
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                return manifest.printable(str(value))
    return f"{source}#{index}"


def safe_records(parse, rows: Iterable[tuple[Any, str, int]]) -> Iterable[MaterialRecord | Issue]:
    """Apply a record parser to raw rows; every failure of one record, of any type, becomes an issue.

    RecordErrors carry their reason; any other exception is reported with its type and message
    (it is a bug in a parser, but it must not cost the rest of the file); an
    :class:`~matmodal.manifest.Unreadable` row (a record the reader could not decode) is dropped
    with the reader's reason. Every issue carries the record's source file and index.
    """
    for raw, source, index in rows:
        if isinstance(raw, Unreadable):
            yield Issue(f"{source}#{index}", "parse", Severity.dropped, raw.reason, source, index)
            continue
        try:
            record, notes = parse(raw, source, index)
        except RecordError as error:
            yield error.issue(source, index)
            continue
        except Exception as error:  # one record never stops the build (RecursionError included)
            yield Issue(_record_id_guess(raw, source, index), "records", Severity.dropped,
                        f"unexpected {type(error).__name__} while reading the record: {error}", source, index)
            continue
        for note in notes:
            yield replace(note, index=index) if note.index is None else note
        yield record
