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
    degraded = "degraded"  # the record is in the table, but something was replaced, derived or left out
    unreadable = "unreadable"  # part of a source file could not be read (no record to count)


@dataclass(frozen=True)
class Issue:
    """One per-record problem: which record, at which stage, and why."""

    record_id: str
    stage: str
    severity: Severity
    reason: str
    source: str = ""
    index: int | None = None  # position of the record in its source file, when known

    def as_row(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in asdict(self).items()}

    def line(self) -> str:
        """One printable console line: ``source#index (id): reason``."""
        where = f"{self.source}#{self.index}" if self.index is not None else self.source
        label = f"{where} ({self.record_id})" if where and self.record_id not in (where, self.source) else \
            (where or self.record_id)
        return printable(f"{label}: {self.reason}")


class RecordError(ValueError):
    """A single record is unusable; carries the record id and the reason."""

    def __init__(self, record_id: str, reason: str, stage: str = "records") -> None:
        super().__init__(f"record {record_id!r}: {reason}")
        self.record_id = record_id
        self.reason = reason
        self.stage = stage

    def issue(self, source: str = "", index: int | None = None) -> Issue:
        return Issue(self.record_id, self.stage, Severity.dropped, self.reason, source, index)


@dataclass(frozen=True)
class Unreadable:
    """A record a source could not decode (its reason); the reader carries on after it."""

    reason: str


COLUMNS = ["record_id", "stage", "severity", "reason", "source", "index"]
_ESCAPE = {**{c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]},
           0x2028: "\\u2028", 0x2029: "\\u2029"}


def printable(text: str) -> str:
    """``text`` safe for a text output: control characters, NUL, line separators and lone
    surrogates are written as ``\\xNN``/``\\uNNNN`` escapes; everything else (Å, μ) stays."""
    text = str(text).translate(_ESCAPE)
    if any("\ud800" <= c <= "\udfff" for c in text):
        text = "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def to_frame(issues: Iterable[Issue]) -> pd.DataFrame:
    """Issues as a DataFrame with the manifest columns (also when empty)."""
    return pd.DataFrame([i.as_row() for i in issues], columns=COLUMNS)


def write(issues: Iterable[Issue], path: Path) -> pd.DataFrame:
    """Write the manifest as parquet (and a CSV twin for people) and return it."""
    frame = to_frame(issues).map(printable)  # ids and reasons as printable text in both files
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    frame.to_csv(path.with_suffix(".csv"), index=False)
    return frame


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else to_frame([])
