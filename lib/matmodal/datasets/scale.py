"""Dataset stages as Ray tasks (:mod:`matmodal.parallel`), with the serial path's caches.

:func:`robocrys_on_ray`: robocrys descriptions, one Ray task per chunk of structures; each task
runs :func:`matmodal.modalities.text.robocrys_many` (isolated worker, same text cache as the
serial path). ECD slicing on Ray: :func:`matmodal.datasets.massa.ecd_on_ray`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pymatgen.core import Structure

from matmodal.parallel import Engine, parallel_map


def _describe_chunk(job: tuple[list[Structure], Path]) -> list[tuple[str, str | None]]:
    from matmodal.modalities.text import robocrys_many

    structures, cache_dir = job
    return robocrys_many(structures, cache_dir=cache_dir, n_jobs=1, progress=False)


def robocrys_on_ray(structures: Sequence[Structure], cache_dir: Path, engine: Engine,
                    chunk: int = 8) -> list[tuple[str, str | None]]:
    """``(text, failure)`` per structure, as :func:`robocrys_many` gives, computed on ``engine``."""
    size = max(1, min(chunk, math.ceil(len(structures) / max(engine.workers or 1, 1))))
    jobs = [(list(structures[i:i + size]), cache_dir) for i in range(0, len(structures), size)]
    return [result for part in parallel_map(_describe_chunk, jobs, engine, chunksize=1) for result in part]
