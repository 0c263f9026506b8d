"""Per-item stages (robocrys descriptions, ECD slicing) on Ray when asked, serially otherwise.

The engine is chosen by the user: a Ray address (an existing cluster) or a worker count (a
local Ray cluster of that many CPUs); neither means the serial path, the default. Results come
back in input order and are the same as the serial path's: every item runs the same function,
and the functions write the same file caches (under the settings' cache/output folders).

    Engine()                              serial
    Engine(workers=2)                     local Ray cluster, 2 worker CPUs
    Engine(address="ray://head:10001")    an existing cluster (Ray client), or "auto" on a node
    Engine.from_env()                     MATMODAL_RAY_ADDRESS / MATMODAL_RAY_WORKERS

On a real cluster every node needs the project installed (same virtual environment, or a Ray
``runtime_env``) and the cache/output folders on a shared filesystem, so the workers' cached
descriptions and images are the ones the driver reads back. This module imports nothing of
matmodal (a leaf), so every layer can use it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
# PYTHONHASHSEED: robocrys joins sets of words ("corner, edge, and face-sharing"), whose order
# follows the per-process string hash seed; a fixed seed makes the workers' texts reproducible
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": "0"}


@dataclass(frozen=True)
class Engine:
    """Where per-item work runs: ``address`` (a Ray cluster) or ``workers`` (local Ray CPUs)."""

    address: str | None = None
    workers: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address) or (self.workers or 1) > 1

    @classmethod
    def from_env(cls) -> Engine:
        workers = os.environ.get("MATMODAL_RAY_WORKERS", "").strip()
        return cls(address=os.environ.get("MATMODAL_RAY_ADDRESS", "").strip() or None,
                   workers=int(workers) if workers else None)

    def describe(self) -> dict[str, Any]:
        """For provenance: which engine ran the stage (the address is kept, never credentials)."""
        return {"engine": "ray" if self.enabled else "serial", "address": self.address, "workers": self.workers}


def _start(engine: Engine) -> int:
    """Connect to (or start) Ray; returns the number of CPUs to spread chunks over."""
    import ray

    if not ray.is_initialized():
        env = {"env_vars": WORKER_ENV}
        if engine.address:
            ray.init(address=engine.address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=engine.workers, include_dashboard=False, log_to_driver=False, runtime_env=env)
    return max(1, int(ray.cluster_resources().get("CPU", engine.workers or 1)))


def _chunk(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    return [fn(item) for item in items]


def parallel_map(fn: Callable[[T], R], items: Iterable[T], engine: Engine | None = None,
                 chunksize: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, as Ray tasks (one per chunk of items) when ``engine`` is enabled.

    ``fn`` must be a module-level function (the workers import it by name)."""
    items = list(items)
    if engine is None or not engine.enabled or len(items) <= 1:
        return [fn(item) for item in items]
    import ray

    cpus = _start(engine)
    size = chunksize or max(1, math.ceil(len(items) / (4 * cpus)))
    task = ray.remote(num_cpus=1)(_chunk)
    futures = [task.remote(fn, items[i:i + size]) for i in range(0, len(items), size)]
    return [result for chunk in ray.get(futures) for result in chunk]


def shutdown() -> None:
    """Disconnect from Ray (and stop a local cluster started by :func:`parallel_map`)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
