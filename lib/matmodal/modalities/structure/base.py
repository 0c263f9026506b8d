"""Shared machinery of the structure featurisers: registry entry, per-record cache, batching.

A featuriser turns ``(record_id, Structure)`` items into fixed-length float32 vectors. Each
vector is cached under ``cache_dir/"structure"/<name>/<key>.npy`` where ``key`` hashes the
structure content (lattice, species, coordinates) together with the featuriser's settings
fingerprint (mode, seed, weights, training set for trained encoders), so a changed setting
never returns a stale vector and two records with the same structure share one file.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from tqdm.auto import tqdm

from matmodal.hashing import payload_digest
from matmodal.isolation import GIB, Limits, prewarm, release_shared, retry_batch, run_batched
from matmodal.manifest import Issue, Severity
from matmodal.modalities.text import structure_key

log = logging.getLogger(__name__)

Item = tuple[str, Structure]
CHUNK = 256  # records computed (and cached) per step
# Worker boundary of every featuriser (``featurise(..., isolate=True)``, the dataset build):
# a spawned worker with torch, pymatgen and a model starts at VmPeak ~3.5 GB (address space,
# which RLIMIT_AS counts; VmRSS ~0.7 GB); a chunk of 256 may take 120 s + 5 s per record.
LIMITS = Limits(memory_bytes=8 * GIB, seconds=120.0, seconds_per_item=5.0)


@dataclass(frozen=True)
class FeaturiserInfo:
    """What a featuriser is: size, weights and what it sees (for docs and provenance)."""

    name: str
    dim: int
    pretrained: bool
    weights: str
    sees: str
    leakage: str
    modes: tuple[str, ...] = ("frozen",)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Outcome:
    """Vectors computed for a chunk and the per-record failures ``record_id -> reason``."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


class Run(ABC):
    """One featurisation job: a settings fingerprint and a ``compute`` for uncached records."""

    fingerprint: dict[str, Any]

    @abstractmethod
    def compute(self, items: Sequence[Item]) -> Outcome:
        """Vectors for ``items``; must not raise for a bad record (report it in failures)."""

    def provenance(self) -> dict[str, Any]:
        """Extra provenance of this run (training figures, versions, labels)."""
        return {}

    def prepare(self) -> None:
        """Do once, before the run is pickled to a worker, what every worker would redo (training)."""
        return None


def digest(payload: Any) -> str:
    """Short sha256 of a JSON-serialisable payload (sorted keys)."""
    return payload_digest(payload)


class VectorCache:
    """One ``.npy`` per (structure, fingerprint) under ``folder``; ``None`` folder = no cache."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> np.ndarray | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.npy"
        try:
            return np.load(path) if path.exists() else None
        except (OSError, ValueError):  # truncated file from an interrupted run
            log.warning("unreadable cache file %s ignored", path)
            return None

    def put(self, key: str, vector: np.ndarray) -> None:
        if self.folder is None:
            return
        temporary = self.folder / f"{key}.tmp.npy"
        np.save(temporary, vector)
        temporary.replace(self.folder / f"{key}.npy")


def unique_items(items: Sequence[Item], stage: str) -> tuple[list[Item], list[Issue]]:
    """Items with first-seen record ids; later duplicates become ``dropped`` issues."""
    seen: set[str] = set()
    kept, issues = [], []
    for record_id, structure in items:
        if record_id in seen:
            issues.append(Issue(record_id, stage, Severity.dropped, "duplicate record id"))
            continue
        seen.add(record_id)
        kept.append((record_id, structure))
    return kept, issues


def content_keys(items: Sequence[Item], fingerprint: dict[str, Any],
                 stage: str) -> tuple[dict[str, str], list[Issue]]:
    """Cache key per record; records whose structure cannot even be hashed are dropped."""
    settings = digest(fingerprint)
    keys, issues = {}, []
    for record_id, structure in items:
        try:
            keys[record_id] = structure_key(structure, settings)
        except Exception as error:  # not a Structure, NaN lattice, ...
            issues.append(Issue(record_id, stage, Severity.dropped,
                                f"unreadable structure ({type(error).__name__}: {error})"))
    return keys, issues


def compute_pairs(run: Run, chunk: Sequence[Item]) -> list[tuple[np.ndarray | None, str | None]]:
    """``run.compute(chunk)`` as one ``(vector, None)`` or ``(None, reason)`` per record (also in a worker)."""
    outcome = run.compute(chunk)
    return [(outcome.vectors[rid], None) if rid in outcome.vectors
            else (None, outcome.failures.get(rid, "featuriser returned no vector"))
            for rid, _ in chunk]


def _outcome(chunk: Sequence[Item], results: Sequence[tuple[Any, str | None]]) -> Outcome:
    outcome = Outcome()
    for (record_id, _), (vector, failure) in zip(chunk, results, strict=True):
        if failure is None:
            outcome.vectors[record_id] = vector
        else:
            outcome.failures[record_id] = failure
    return outcome


def safe_compute(run: Run, chunk: Sequence[Item]) -> Outcome:
    """``run.compute(chunk)`` in-process; if the whole chunk raises, find the culprit(s) record
    by record and compute the others again as one chunk (:func:`matmodal.isolation.retry_batch`)."""
    def call(part: list[Item]) -> tuple[Any, str | None]:
        try:
            return compute_pairs(run, part), None
        except Exception as error:
            return None, f"{type(error).__name__}: {error}"

    return _outcome(chunk, retry_batch(call, list(chunk)))


WORKER = f"{__name__}:compute_pairs"  # what the featuriser worker runs: compute_pairs(run, chunk)


def start_worker(limits: Limits | None = None) -> None:
    """Start the featuriser worker now, so that its imports (~5 s) overlap other stages.

    Every featuriser of the process shares it (each Run is sent once per worker process and
    dropped after its stage); it exits after ``limits.idle_seconds`` without work, or at
    :func:`stop_worker`, and starts again when next needed."""
    prewarm(WORKER, limits or LIMITS)


def stop_worker() -> None:
    release_shared(WORKER)


def compute_chunks(run: Run, chunks: Sequence[Sequence[Item]], limits: Limits | None) -> Iterator[Outcome]:
    """An Outcome per chunk: in-process (``limits=None``), or in one worker process with
    ``limits`` (the run pickled to it once, model included): a record that crashes the worker,
    runs out of memory or hangs fails alone with the reason, the build goes on."""
    if limits is None:
        for chunk in chunks:
            yield safe_compute(run, chunk)
        return
    run.prepare()
    for chunk, pairs in zip(chunks, run_batched(WORKER, chunks, limits, state=run), strict=True):
        yield _outcome(chunk, pairs)


def run_featuriser(info: FeaturiserInfo, run: Run, items: Sequence[Item], *, mode: str, seed: int,
                   cache_dir: Path | None, progress: bool,
                   limits: Limits | None = None) -> tuple[pd.DataFrame, list[Issue]]:
    """Cache lookup, chunked compute with a progress bar, issues, aligned DataFrame.

    ``limits``: compute behind a worker-process boundary (:func:`compute_chunks`); None: in-process.
    """
    stage = f"structure:{info.name}"
    unique, issues = unique_items(items, stage)
    keys, key_issues = content_keys(unique, run.fingerprint, stage)
    issues += key_issues
    cache = VectorCache(None if cache_dir is None else Path(cache_dir) / "structure" / info.name)
    vectors: dict[str, np.ndarray] = {}
    for record_id, key in keys.items():
        if (hit := cache.get(key)) is not None and hit.shape == (info.dim,):
            vectors[record_id] = hit
    hits = len(vectors)
    todo = [(rid, s) for rid, s in unique if rid in keys and rid not in vectors]
    chunks = [todo[start:start + CHUNK] for start in range(0, len(todo), CHUNK)]
    with tqdm(total=len(todo), desc=info.name, unit="structure", disable=not progress) as bar:
        for chunk, outcome in zip(chunks, compute_chunks(run, chunks, limits), strict=True):
            for record_id, vector in outcome.vectors.items():
                vector = np.asarray(vector, dtype=np.float32)
                if vector.shape != (info.dim,) or not np.isfinite(vector).all():
                    outcome.failures[record_id] = f"non-finite or mis-shaped vector {vector.shape}"
                    continue
                vectors[record_id] = vector
                cache.put(keys[record_id], vector)
            issues += [Issue(rid, stage, Severity.dropped, reason)
                       for rid, reason in outcome.failures.items()]
            bar.update(len(chunk))
    order = [rid for rid, _ in unique if rid in vectors]
    columns = [f"{info.name}_{i:03d}" for i in range(info.dim)]
    matrix = np.stack([vectors[r] for r in order]) if order else np.zeros((0, info.dim), np.float32)
    frame = pd.DataFrame(matrix.astype(np.float32), index=pd.Index(order, name="record_id"),
                         columns=columns)
    frame.attrs["provenance"] = {
        **info.as_dict(), "featuriser": info.name, "mode": mode, "seed": seed,
        "settings": run.fingerprint, **run.provenance(),
        "n_items": len(items), "n_embedded": len(order), "n_dropped": len(issues),
        "cache_hits": hits, "isolation": _isolation(limits),
    }
    return frame, issues


def _isolation(limits: Limits | None) -> dict[str, Any] | str:
    if limits is None:
        return "in-process"
    return {"worker": "spawned process", "memory_gib": (limits.memory_bytes or 0) / GIB,
            "seconds_per_chunk": limits.seconds, "seconds_per_record": limits.seconds_per_item}
