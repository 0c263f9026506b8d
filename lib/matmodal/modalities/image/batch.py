"""Render a dataset: one PNG per record, process pool, progress bar, skip-if-done cache, manifest issues.

With ``isolate`` (the dataset build) every picture is drawn in a spawned worker with memory and
time limits (:mod:`matmodal.isolation`): a record that crashes the renderer, exhausts the limit
or hangs loses only its picture, with the reason; the PNG bytes are those of the in-process path.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure
from tqdm.auto import tqdm

from matmodal.isolation import GIB, Limits, run_isolated
from matmodal.manifest import Issue, Severity
from matmodal.modalities.image import colors
from matmodal.modalities.image.render import (
    cache_key,
    png_bytes,
    read_stamp,
    render_with_notes,
    write_atomic,
)
from matmodal.modalities.image.settings import RenderSettings
from matmodal.paths import inside, safe_name

STAGE = "image"
# Worker boundary (``isolate=True``): one picture per call; a spawned renderer worker starts
# at VmPeak ~1 GB (address space).  RENDER names the per-record function the worker runs
# ("module:function"; a test may point it at a fault-injecting wrapper of ``_run``).
LIMITS = Limits(memory_bytes=4 * GIB, seconds=120.0)
RENDER = "matmodal.modalities.image.batch:_run"


@dataclass(frozen=True)
class Job:
    record_id: str
    structure: Structure
    path: Path
    key: str
    settings: RenderSettings


@dataclass(frozen=True)
class Outcome:
    record_id: str
    path: Path | None  # None: nothing written
    notes: tuple[str, ...] = ()  # degraded reasons (image written)
    error: str = ""  # dropped reason


def _run(job: Job) -> Outcome:
    """Render and write one record; every failure becomes an Outcome with a reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image, notes = render_with_notes(job.structure, job.settings)
        write_atomic(job.path, png_bytes(image, job.key, notes, job.settings.png_compress_level))
    except ValueError as exc:
        return Outcome(job.record_id, None, error=f"unrenderable: {exc}")
    except Exception as exc:  # one bad record must never stop the batch
        return Outcome(job.record_id, None, error=f"render failed: {type(exc).__name__}: {exc}")
    return Outcome(job.record_id, job.path, tuple(notes))


def _issues(outcome: Outcome) -> list[Issue]:
    if outcome.error:
        return [Issue(outcome.record_id, STAGE, Severity.dropped, outcome.error)]
    if outcome.notes:
        return [Issue(outcome.record_id, STAGE, Severity.degraded, "; ".join(outcome.notes))]
    return []


def _plan(items: Sequence[tuple[str, Structure]], out_dir: Path,
          settings: RenderSettings) -> tuple[list[Job], list[Outcome]]:
    """Split records into jobs to render and outcomes already known (cached, duplicate, bad id)."""
    jobs: list[Job] = []
    known: list[Outcome] = []
    seen: set[str] = set()
    for record_id, structure in items:
        if record_id in seen:
            known.append(Outcome(record_id, None, notes=("duplicate record id: only its first structure is drawn",)))
            continue
        seen.add(record_id)
        try:
            path = inside(out_dir, safe_name(record_id, ".png"))
            key = cache_key(structure, settings)
        except Exception as exc:
            known.append(Outcome(record_id, None, error=f"cannot name or hash record: {type(exc).__name__}: {exc}"))
            continue
        stored_key, notes = read_stamp(path) if path.exists() else (None, [])
        if stored_key == key:
            known.append(Outcome(record_id, path, tuple(notes)))
        else:
            jobs.append(Job(record_id, structure, path, key, settings))
    return jobs, known


def render_many(
    items: Sequence[tuple[str, Structure]],
    out_dir: Path,
    settings: RenderSettings,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    isolate: bool | Limits = False,
) -> tuple[dict[str, Path], list[Issue]]:
    """Render (record_id, structure) pairs to ``out_dir/safe_name(record_id, ".png")``.

    Pictures whose PNG already carries the same cache key (structure + settings + renderer
    version) are not rendered again. Returns {record_id: path} for every record with a picture
    (input order) and the manifest issues: ``dropped`` for records without a picture, ``degraded``
    for pictures drawn with a substitution (majority species, capped bond search, unknown colour).
    ``isolate``: draw in ``n_jobs`` worker processes with limits (``True``: ``LIMITS``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, known = _plan(items, out_dir, settings)
    bar = tqdm(total=len(known) + len(jobs), initial=len(known), desc="render images", unit="image",
               disable=not progress)
    done: list[Outcome] = []
    with bar:
        if isolate and jobs:
            limits = LIMITS if isolate is True else isolate
            for job, (outcome, failure) in zip(jobs, run_isolated(RENDER, jobs, limits, n_workers=n_jobs),
                                               strict=True):
                done.append(outcome if failure is None else
                            Outcome(job.record_id, None, error=f"render failed: {failure}"))
                bar.update()
        elif n_jobs > 1 and len(jobs) > 1:
            colors.color_table(settings.color_scheme)  # parse the YAML once; forked workers inherit it
            chunk = max(1, min(32, len(jobs) // (n_jobs * 8)))
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                for outcome in pool.map(_run, jobs, chunksize=chunk):
                    done.append(outcome)
                    bar.update()
        else:
            for job in jobs:
                done.append(_run(job))
                bar.update()
    first: dict[str, int] = {}
    for pos, (record_id, _) in enumerate(items):
        first.setdefault(record_id, pos)
    outcomes = sorted(known + done, key=lambda o: first[o.record_id])  # stable: input order
    paths = {o.record_id: o.path for o in outcomes if o.path is not None}
    return paths, [issue for o in outcomes for issue in _issues(o)]
