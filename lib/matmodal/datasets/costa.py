"""costa2025 dataset: Alexandria entries -> records -> aligned table with the seven targets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import BuildOptions, Dataset, build, safe_records
from matmodal.manifest import Issue, Severity
from matmodal.records import MaterialRecord, from_alexandria
from matmodal.sources import alexandria
from matmodal.sources.download import sha256
from matmodal.targets import COSTA_TARGETS

NAME = "alexandria"


def _rows(paths: Sequence[Path], issues: list[Issue]) -> Iterator[tuple[Any, str, int]]:
    """Entries of every file; a whole-file problem becomes one 'unreadable' row naming the file."""
    for path in paths:
        index = -1
        try:
            for index, entry in enumerate(alexandria.iter_entries(path)):
                yield entry, path.name, index
        except alexandria.SourceFileError as error:
            issues.append(Issue(path.name, "source", Severity.unreadable,
                                f"{error.reason}; the {index + 1} entries before it were read", path.name))
            continue
        if index < 0:
            issues.append(Issue(path.name, "source", Severity.unreadable, "the 'entries' array is empty",
                                path.name))


def alexandria_records(
    paths: Sequence[Path], *, sample: int | None = None, seed: int = 0
) -> Iterator[MaterialRecord | Issue]:
    """Records (and issues) from dump files; ``sample`` = seeded reservoir sample size."""
    file_issues: list[Issue] = []
    if sample:  # same draw as alexandria.sample_entries (files by name), whole-file problems noted
        rows = alexandria.reservoir_sample(_rows(sorted(paths, key=lambda p: p.name), file_issues), sample, seed)
    else:
        rows = _rows(paths, file_issues)
    yield from safe_records(from_alexandria, rows)
    yield from file_issues


def build_alexandria(
    files: Sequence[str] | None = None,
    *,
    sample: int | None = None,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME,
) -> Dataset:
    """Build the costa2025 table from Alexandria files (default: every file the source lists)."""
    settings = settings or get_settings()
    names = list(files) if files else alexandria.list_files(settings)
    paths = [alexandria.fetch(n, settings) for n in names]
    sources = {p.name: {"sha256": sha256(p), "licence": "CC-BY-4.0 (Schmidt et al. 2024)"} for p in paths}
    return build(name, alexandria_records(paths, sample=sample, seed=settings.seed), COSTA_TARGETS,
                 options=options, settings=settings, sources={"alexandria": sources, "sample": sample})
