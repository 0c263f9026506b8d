"""Run a per-record stage in worker processes with memory and time limits.

Validation (:func:`matmodal.records.check_structure`) keeps malformed cells away from native
code; this is the backstop for what validation cannot foresee: a record that segfaults a C
extension, allocates without bound (robocrys on a huge cell) or never returns. Each worker is
a fresh interpreter (``spawn``) with ``RLIMIT_AS`` set, handling one record at a time; a worker
that crashes, runs out of memory or exceeds the time limit is replaced and only that record
fails, with the reason::

    for item, (result, failure) in zip(items, run_isolated("matmodal.modalities.text:describe", items)):
        ...

``func`` is named ``"module:function"`` so the worker imports it after its limits are set.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

GIB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Per-worker address-space limit (bytes, ``RLIMIT_AS``) and per-record wall time (s)."""

    memory_bytes: int | None = 6 * GIB
    seconds: float | None = 300.0
    threads: int = 1  # OMP/BLAS threads in the worker


def _load(func: str):
    module, _, name = func.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker(func: str, limits: Limits, conn: Connection) -> None:  # pragma: no cover - runs in a child
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(limits.threads)
    if limits.memory_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    target = _load(func)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, target(item)))
        except MemoryError:
            conn.send((False, f"ran out of memory (worker limit {limits.memory_bytes / GIB:.1f} GiB)"))
        except BaseException as error:  # every failure of one record is reported, whatever its type
            conn.send((False, f"{type(error).__name__}: {error}"))


class _Slot:
    """One worker process and the record it is working on."""

    def __init__(self, func: str, limits: Limits) -> None:
        self.func, self.limits = func, limits
        self.process: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.task: int | None = None
        self.deadline = float("inf")
        self.owner = os.getpid()

    def start(self) -> None:
        parent, child = mp.get_context("spawn").Pipe()
        self.process = mp.get_context("spawn").Process(
            target=_worker, args=(self.func, self.limits, child), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    def submit(self, index: int, item: Any) -> None:
        if self.owner != os.getpid():  # a forked copy: the worker belongs to the parent, start our own
            self.process, self.conn, self.owner = None, None, os.getpid()
        if self.process is None or not self.process.is_alive():
            self.stop()
            self.start()
        self.conn.send(item)
        self.task = index
        self.deadline = time.monotonic() + (self.limits.seconds or float("inf"))

    def stop(self) -> str:
        """Kill the worker; return how it ended."""
        if self.owner != os.getpid():
            self.process, self.conn, self.owner = None, None, os.getpid()
        process = self.process
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            process.join(5)
        code = process.exitcode if process is not None else None
        self.process, self.task = None, None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if code is not None and code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"


def run_isolated(
    func: str, items: Iterable[Any], limits: Limits | None = None, *, n_workers: int = 1
) -> Iterator[tuple[Any, str | None]]:
    """``(result, None)`` or ``(None, reason)`` for every item, in input order.

    The reason says whether the record raised (exception type and message), crashed its
    worker (the signal, e.g. SIGSEGV), ran out of memory or ran past ``limits.seconds``.
    """
    limits = limits or Limits()
    pending: Sequence[Any] = list(items)
    results: dict[int, tuple[Any, str | None]] = {}
    slots = [_Slot(func, limits) for _ in range(max(1, min(n_workers, len(pending))))]
    queue = iter(enumerate(pending))
    emitted = 0
    try:
        for slot in slots:
            _feed(slot, queue)
        while any(slot.task is not None for slot in slots):
            busy = {slot.conn: slot for slot in slots if slot.task is not None}
            timeout = max(0.0, min(s.deadline for s in busy.values()) - time.monotonic())
            ready = wait(list(busy), timeout=min(timeout, 5.0))
            for conn in ready:
                slot = busy[conn]
                index = slot.task
                try:
                    ok, value = conn.recv()
                    results[index] = (value, None) if ok else (None, value)
                    slot.task = None
                except (EOFError, OSError):
                    results[index] = (None, f"worker process died ({slot.stop()}) on this record")
                _feed(slot, queue)
            now = time.monotonic()
            for slot in busy.values():
                if slot.task is not None and now > slot.deadline:
                    index = slot.task
                    slot.stop()
                    results[index] = (None, f"took longer than the {limits.seconds:g} s limit; stopped")
                    _feed(slot, queue)
            while emitted in results:
                yield results.pop(emitted)
                emitted += 1
    finally:
        for slot in slots:
            slot.stop()


class Isolated:
    """``func`` as a callable that runs each call in one persistent isolated worker.

    For a stage called record by record from ordinary code (spglib during parsing): the
    worker starts on the first call and is replaced after a crash; a call returns
    ``(result, None)`` or ``(None, reason)`` like :func:`run_isolated`.
    """

    def __init__(self, func: str, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.slot = _Slot(func, self.limits)

    def __call__(self, item: Any) -> tuple[Any, str | None]:
        if mp.current_process().daemon:  # a daemonic pool worker may not start processes: run here
            try:
                return _load(self.slot.func)(item), None
            except Exception as error:
                return None, f"{type(error).__name__}: {error}"
        slot = self.slot
        slot.submit(0, item)
        if not slot.conn.poll(self.limits.seconds):
            slot.stop()
            return None, f"took longer than the {self.limits.seconds:g} s limit; stopped"
        try:
            ok, value = slot.conn.recv()
        except (EOFError, OSError):
            return None, f"worker process died ({slot.stop()}) on this record"
        slot.task = None
        return (value, None) if ok else (None, value)

    def close(self) -> None:
        self.slot.stop()


def _feed(slot: _Slot, queue: Iterator[tuple[int, Any]]) -> None:
    for index, item in queue:
        slot.submit(index, item)
        return
