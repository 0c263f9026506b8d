"""The manifest: every record a pipeline dropped or degraded, with the reason.

Nothing is silently lost: each stage (parse, records, text, image, ECD, embeddings, ...)
reports per-record problems as :class:`Issue` rows, and the dataset builder writes them
next to the aligned table (``manifest.parquet``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import pandas as pd


class Severity(StrEnum):
    dropped = "dropped"  # the record is not in the table
    degraded = "degraded"  # the record is in the table, but something was replaced or derived


@dataclass(frozen=True)
class Issue:
    """One per-record problem: which record, at which stage, and why."""

    record_id: str
    stage: str
    severity: Severity
    reason: str
    source: str = ""

    def as_row(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


class RecordError(ValueError):
    """A single record is unusable; carries the record id and the reason."""

    def __init__(self, record_id: str, reason: str, stage: str = "records") -> None:
        super().__init__(f"record {record_id!r}: {reason}")
        self.record_id = record_id
        self.reason = reason
        self.stage = stage

    def issue(self, source: str = "") -> Issue:
        return Issue(self.record_id, self.stage, Severity.dropped, self.reason, source)


COLUMNS = ["record_id", "stage", "severity", "reason", "source"]


def to_frame(issues: Iterable[Issue]) -> pd.DataFrame:
    """Issues as a DataFrame with the manifest columns (also when empty)."""
    return pd.DataFrame([i.as_row() for i in issues], columns=COLUMNS)


def write(issues: Iterable[Issue], path: Path) -> pd.DataFrame:
    """Write the manifest as parquet (and a CSV twin for people) and return it."""
    frame = to_frame(issues)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    frame.to_csv(path.with_suffix(".csv"), index=False)
    return frame


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else to_frame([])
