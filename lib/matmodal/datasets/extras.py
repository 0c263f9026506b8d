"""Extend a built dataset after :func:`matmodal.datasets.build.build`: extra (non-target)
columns, table-level metadata in the parquet schema and provenance entries."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from matmodal.datasets.build import PROVENANCE, TABLE, Dataset, arrow_with_units

METADATA_KEY = b"matmodal"


def annotate(
    dataset: Dataset,
    *,
    columns: pd.DataFrame | None = None,
    metadata: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Dataset:
    """Merge ``columns`` (keyed by material_id) into the table, store ``metadata`` as JSON under
    the ``matmodal`` key of the parquet schema and add ``provenance`` to provenance.json."""
    table = dataset.table
    if columns is not None and not columns.empty:
        table = table.merge(columns, on="material_id", how="left")
    arrow = arrow_with_units(table)
    if metadata:
        merged = {**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(metadata, default=str).encode()}
        arrow = arrow.replace_schema_metadata(merged)
    pq.write_table(arrow, dataset.folder / TABLE)
    info = {**dataset.provenance, **(provenance or {}), **({"table_metadata": metadata} if metadata else {})}
    (dataset.folder / PROVENANCE).write_text(json.dumps(info, indent=1, default=str))
    return Dataset(dataset.name, dataset.folder, table, dataset.manifest, info)


def table_metadata(path) -> dict[str, Any]:
    """The ``matmodal`` metadata of a table.parquet written by :func:`annotate` ({} when none)."""
    raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}
