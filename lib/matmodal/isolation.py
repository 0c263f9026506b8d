"""Run a per-record stage in worker processes with memory and time limits.

Validation (:func:`matmodal.records.check_structure`) keeps malformed cells away from native
code; this is the backstop for what validation cannot foresee: a record that segfaults a C
extension, allocates without bound (robocrys on a huge cell) or never returns. Each worker is
a fresh interpreter (``spawn``) with ``RLIMIT_AS`` set; a worker that crashes, runs out of
memory or exceeds the time limit is replaced and only that record fails, with the reason::

    for item, (result, failure) in zip(items, run_isolated("matmodal.modalities.text:describe", items)):
        ...

Two shapes of stage:

* :func:`run_isolated`: one record per call (robocrys, the image renderer), ``n_workers`` in
  parallel;
* :func:`run_batched`: one *batch* per call with a state sent once per worker (a featuriser
  with its model: loaded once per worker, batched inference). When a batch fails (the worker
  dies, runs out of memory, raises or times out), each of its records is tried alone to find
  the culprit(s), then the others are computed again as one batch, so their results are the
  ones a batch without the culprit gives (batched inference is not bit-identical to one record
  at a time).

Workers belong to the process, one per ``(func, limits)`` (and per parallel slot): later calls
and later builds reuse them; a worker idle for ``Limits.idle_seconds`` exits by itself.
``func`` is named ``"module:function"`` so the worker imports it after its limits are set.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import pickle
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

GIB = 1 << 30
_NO_STATE = "__matmodal.isolation: no state__"
_READY = "__matmodal.isolation: ready__"

Result = tuple[Any, str | None]  # (value, None) or (None, reason)


@dataclass(frozen=True)
class Limits:
    """Per-worker address-space limit (bytes, ``RLIMIT_AS``) and wall time per call (s).

    A call on ``n`` records may take ``seconds + n * seconds_per_item``; starting a worker
    (interpreter, imports, unpickling the state) has its own ``startup_seconds``. A worker
    left idle for ``idle_seconds`` exits (code 0) and is started again when next needed, so
    successive builds in one process reuse it without keeping it forever.
    """

    memory_bytes: int | None = 6 * GIB
    seconds: float | None = 300.0
    threads: int = 1  # OMP/BLAS threads in the worker
    seconds_per_item: float = 0.0
    startup_seconds: float = 300.0
    idle_seconds: float | None = 300.0  # an idle worker exits by itself after this long

    def deadline(self, n: int = 1) -> float | None:
        """Seconds allowed for one call on ``n`` records (None: no limit)."""
        return None if self.seconds is None else self.seconds + n * self.seconds_per_item

    def out_of_memory(self) -> str:
        return f"ran out of memory (worker limit {(self.memory_bytes or 0) / GIB:.1f} GiB)"

    def too_slow(self, n: int = 1) -> str:
        return f"took longer than the {self.deadline(n):g} s limit; stopped"


class WorkerStartError(RuntimeError):
    """A worker could not start (import, state or memory limit): a fault of the stage, not of a record."""


def _load(func: str):
    module, _, name = func.partition(":")
    return getattr(importlib.import_module(module), name)


def _failure(error: BaseException, limits: Limits) -> tuple[bool, str]:
    return False, limits.out_of_memory() if isinstance(error, MemoryError) else f"{type(error).__name__}: {error}"


def _worker(func: str, limits: Limits, conn: Connection) -> None:  # pragma: no cover - runs in a child
    """Set the limits, import ``func``, say ready; then serve ``(kind, token, payload)`` messages:
    ``state`` (keep an unpickled state under ``token``, acknowledged), ``drop`` (forget it) and
    ``call`` (``func(item)``, or ``func(state, item)`` with a token), each answered ``(ok, value)``."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(limits.threads)
    try:
        if limits.memory_bytes:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        target = _load(func)
    except BaseException as error:  # reported to the parent as a stage fault
        conn.send(_failure(error, limits))
        return
    conn.send((True, _READY))
    states: dict[str, Any] = {}
    while True:
        try:
            if limits.idle_seconds and not conn.poll(limits.idle_seconds):
                return  # idle: exit 0 (the parent starts a new worker when it needs one)
            kind, token, payload = conn.recv()
        except EOFError:
            return
        try:
            if kind == "drop":
                states.pop(token, None)
                continue
            if kind == "state":
                states[token] = pickle.loads(payload)
                conn.send((True, _READY))
                continue
            conn.send((True, target(payload) if token is None else target(states[token], payload)))
        except BaseException as error:  # every failure of one record is reported, whatever its type
            conn.send(_failure(error, limits))


class _Slot:
    """One worker process, the states it holds and the call it is working on."""

    def __init__(self, func: str, limits: Limits) -> None:
        self.func, self.limits = func, limits
        self.process: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.ready = False
        self.known: set[str] = set()  # state tokens the running worker holds
        self.task: int | None = None
        self.call: tuple[Any, int, str | None, Any] | None = None  # the call in progress, to resend
        self.resent = False  # the call in progress was sent again once (after an idle exit)
        self.deadline = float("inf")
        self.owner = os.getpid()

    def launch(self) -> None:
        """Start a worker process; do not wait for it (:meth:`ensure` does)."""
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(self.func, self.limits, child), daemon=True)
        process.start()
        child.close()
        self.process, self.conn, self.ready, self.known = process, parent, False, set()

    def ensure(self) -> None:
        """A running worker that has imported ``func`` (started or replaced as needed)."""
        if self.owner != os.getpid():  # a forked copy: the worker belongs to the parent, start our own
            self.process, self.conn, self.owner = None, None, os.getpid()
        if self.process is None or not self.process.is_alive():
            self.stop()
            self.launch()
        if not self.ready:
            self._expect(_READY, "could not start")
            self.ready = True

    def _expect(self, answer: str, what: str) -> None:
        try:
            arrived = self.conn.poll(self.limits.startup_seconds)
            ok, value = self.conn.recv() if arrived else (False, f"no answer after {self.limits.startup_seconds:g} s")
        except (EOFError, OSError):
            self.process.join(5)
            ok, value = False, f"died ({self._ended()})"
        if not (ok and value == answer):
            ended = self.stop()
            raise WorkerStartError(f"worker for {self.func} {what}: {value} ({ended})")

    def hold(self, token: str, state: Any) -> None:
        """Make the running worker hold ``state`` under ``token`` (sent once per worker process)."""
        self.ensure()
        if token in self.known:
            return
        try:
            payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise WorkerStartError(f"the state of {self.func} cannot be sent to a worker "
                                   f"({type(error).__name__}: {error})") from error
        self.conn.send(("state", token, payload))
        self._expect(_READY, "could not load its state")
        self.known.add(token)

    def forget(self, token: str) -> None:
        if token in self.known and self.owner == os.getpid() and self.process is not None and self.process.is_alive():
            self.conn.send(("drop", token, None))
        self.known.discard(token)

    def submit(self, index: int, item: Any, n: int = 1, token: str | None = None, state: Any = None) -> None:
        self.ensure()
        if token is not None:
            self.hold(token, state)
        self.conn.send(("call", token, item))
        self.task, self.call, self.resent = index, (item, n, token, state), False
        self.deadline = time.monotonic() + (self.limits.deadline(n) or float("inf"))

    def died(self) -> str | None:
        """After the worker's pipe broke: how it ended, or None when it had only gone idle
        (exit code 0, :attr:`Limits.idle_seconds`) and the call was sent again to a new one."""
        index, call, resent = self.task, self.call, self.resent
        ended = self.stop()
        if ended != _IDLE_EXIT or call is None or resent:  # (a record that exits 0 itself fails once)
            return ended
        item, n, token, state = call
        try:
            self.submit(index, item, n, token, state)
        except (WorkerStartError, OSError) as error:
            return f"{ended}; not restarted: {error}"
        self.resent = True
        return None

    def _ended(self) -> str:
        code = self.process.exitcode if self.process is not None else None
        if code is not None and code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"

    def stop(self) -> str:
        """Kill the worker; return how it ended."""
        if self.owner != os.getpid():
            self.process, self.conn, self.owner = None, None, os.getpid()
        process = self.process
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            process.join(5)
        ended = self._ended()
        self.process, self.task, self.ready, self.known = None, None, False, set()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        return ended


_IDLE_EXIT = "exit code 0"
_SHARED: dict[tuple[str, Limits, int], _Slot] = {}


def _shared(func: str, limits: Limits, number: int = 0) -> _Slot:
    """The process-wide worker ``number`` of ``(func, limits)``: reused by every later call."""
    return _SHARED.setdefault((func, limits, number), _Slot(func, limits))


def prewarm(func: str, limits: Limits) -> None:
    """Start the shared worker of ``func`` now, so that its imports overlap other work."""
    if mp.current_process().daemon:
        return
    slot = _shared(func, limits)
    if slot.owner != os.getpid() or slot.process is None or not slot.process.is_alive():
        slot.stop()
        slot.launch()


def release_shared(func: str | None = None) -> None:
    """Stop the shared workers (of ``func``; all when None); they start again when next needed."""
    for (name, _, _), slot in _SHARED.items():
        if func is None or name == func:
            slot.stop()


def run_isolated(
    func: str, items: Iterable[Any], limits: Limits | None = None, *, n_workers: int = 1
) -> Iterator[Result]:
    """``(result, None)`` or ``(None, reason)`` for every item, in input order.

    The reason says whether the record raised (exception type and message), crashed its
    worker (the signal, e.g. SIGSEGV), ran out of memory or ran past ``limits.seconds``.
    Each worker has up to ``_DEPTH`` records in flight, so it never waits for the parent.
    """
    limits = limits or Limits()
    pending: Sequence[Any] = list(items)
    if mp.current_process().daemon:  # a daemonic pool worker may not start processes: run here
        yield from map(Isolated(func, limits)._in_process, pending)
        return
    results: dict[int, Result] = {}
    lanes = [_Lane(_shared(func, limits, i), results) for i in range(max(1, min(n_workers, len(pending))))]
    queue = iter(enumerate(pending))
    emitted = 0
    try:
        for lane in lanes:
            lane.fill(queue)
        while any(lane.inflight for lane in lanes):
            busy = {lane.slot.conn: lane for lane in lanes if lane.inflight}
            timeout = max(0.0, min(lane.deadline for lane in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout=min(timeout, 5.0)):
                lane = busy[conn]
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError):
                    lane.broke()
                else:
                    lane.received(ok, value)
                lane.fill(queue)
            now = time.monotonic()
            for lane in busy.values():
                if lane.inflight and now > lane.deadline:
                    lane.broke(limits.too_slow())
                    lane.fill(queue)
            while emitted in results:
                yield results.pop(emitted)
                emitted += 1
        while emitted in results:  # records that failed only because no worker could start
            yield results.pop(emitted)
            emitted += 1
    finally:
        for lane in lanes:  # the workers stay for the next call (until idle); abandoned calls are stopped
            if lane.inflight:
                lane.slot.stop()


_DEPTH = 2  # records in flight per worker in run_isolated


class _Lane:
    """One worker of :func:`run_isolated` and the records sent to it, oldest first.

    The worker answers in order, so a crash or a time-out belongs to the oldest record in
    flight; the others are sent again to the new worker."""

    def __init__(self, slot: _Slot, results: dict[int, Result]) -> None:
        self.slot, self.results = slot, results
        self.inflight: deque[tuple[int, Any]] = deque()
        self.deadline = float("inf")
        self.resent: set[int] = set()

    def fill(self, queue: Iterator[tuple[int, Any]]) -> None:
        while len(self.inflight) < _DEPTH:
            entry = next(queue, None)
            if entry is None:
                return
            self.send(*entry)

    def send(self, index: int, item: Any) -> None:
        if not self.inflight:  # (with records in flight, a dead worker is found by reading their answers)
            try:
                self.slot.ensure()
            except WorkerStartError as error:  # this record fails; the next one tries a new worker
                self.results[index] = (None, str(error))
                return
        with contextlib.suppress(OSError):  # the worker just died: found when its answers are read
            self.slot.conn.send(("call", None, item))
        self.inflight.append((index, item))
        if len(self.inflight) == 1:
            self.deadline = time.monotonic() + (self.slot.limits.deadline() or float("inf"))

    def received(self, ok: bool, value: Any) -> None:
        index, _ = self.inflight.popleft()
        self.results[index] = (value, None) if ok else (None, value)
        self.deadline = (time.monotonic() + (self.slot.limits.deadline() or float("inf"))
                         if self.inflight else float("inf"))

    def broke(self, reason: str | None = None) -> None:
        """The worker died (``reason`` None) or ran past the limit: the oldest record fails
        (unless the worker had only gone idle: then every record is sent again, once)."""
        ended = self.slot.stop()
        waiting = list(self.inflight)
        self.inflight.clear()
        head = waiting[0][0]
        if reason is None and ended == _IDLE_EXIT and head not in self.resent:
            self.resent.add(head)
        else:
            self.results[head] = (None, reason or f"worker process died ({ended}) on this record")
            waiting = waiting[1:]
        for index, item in waiting:
            self.send(index, item)


class Isolated:
    """``func`` as a callable that runs each call in one persistent isolated worker.

    For a stage called from ordinary code (spglib during parsing, a featuriser's batches): the
    worker starts on the first call (``func(state, item)`` when a ``state`` is given, sent once
    per worker process) and is replaced after a crash; a call returns ``(result, None)`` or
    ``(None, reason)`` like :func:`run_isolated`. ``n`` sizes the time limit of a call
    (:meth:`Limits.deadline`). ``shared=True`` uses the process-wide worker of ``(func,
    limits)`` (:func:`prewarm`, :func:`release_shared`), so successive stages that call the same
    function (the featurisers of one build) import it once.
    """

    def __init__(self, func: str, limits: Limits | None = None, *, state: Any = _NO_STATE,
                 shared: bool = False) -> None:
        self.limits = limits or Limits()
        self.func, self.state, self.shared = func, state, shared
        self.slot = _shared(func, self.limits) if shared else _Slot(func, self.limits)
        self.token = None if isinstance(state, str) and state == _NO_STATE else uuid.uuid4().hex

    def start(self) -> None:
        """Start the worker and give it the state now; raises :class:`WorkerStartError`."""
        if not mp.current_process().daemon:
            self.slot.ensure()
            if self.token is not None:
                self.slot.hold(self.token, self.state)

    def __call__(self, item: Any, n: int = 1) -> Result:
        if mp.current_process().daemon:  # a daemonic pool worker may not start processes: run here
            return self._in_process(item)
        slot = self.slot
        try:
            slot.submit(0, item, n, self.token, self.state)
        except WorkerStartError as error:
            return None, str(error)
        while True:
            if not slot.conn.poll(self.limits.deadline(n)):
                slot.stop()
                return None, self.limits.too_slow(n)
            try:
                ok, value = slot.conn.recv()
            except (EOFError, OSError):
                if (ended := slot.died()) is None:
                    continue  # it had gone idle; the call is on a new worker
                return None, f"worker process died ({ended}) on this record"
            slot.task = None
            return (value, None) if ok else (None, value)

    def _in_process(self, item: Any) -> Result:
        target = _load(self.func)
        try:
            return (target(item) if self.token is None else target(self.state, item)), None
        except Exception as error:
            return None, f"{type(error).__name__}: {error}"

    def close(self) -> None:
        """Stop the worker (a shared one only forgets this state)."""
        if self.shared:
            if self.token is not None:
                self.slot.forget(self.token)
        else:
            self.slot.stop()


def run_batched(
    func: str, batches: Iterable[Sequence[Any]], limits: Limits | None = None, *, state: Any = _NO_STATE
) -> Iterator[list[Result]]:
    """Per batch, ``func(state, batch)`` in one isolated worker: a list of ``(value, reason)``.

    ``func`` returns one ``(value, reason)`` per record of the batch (a record it rejects
    itself has a reason). When the whole call fails (worker died, out of memory, raised, time
    limit), each record is tried alone: the ones that fail alone get that reason ("worker
    process died (signal SIGSEGV) on this record"), the others are computed again together.
    Raises :class:`WorkerStartError` when no worker can start at all.
    """
    worker = Isolated(func, limits, state=state, shared=True)
    try:
        worker.start()  # a stage that cannot start at all fails as a whole
        for batch in batches:
            yield _one_batch(worker, list(batch))
    finally:
        worker.close()


def _one_batch(worker: Isolated, batch: list[Any]) -> list[Result]:
    return retry_batch(lambda part: worker(part, len(part)), batch)


def retry_batch(call: Callable[[list[Any]], Result], batch: list[Any]) -> list[Result]:
    """One ``(value, reason)`` per record of ``batch`` from ``call(records) -> (values, reason)``.

    When the call on the whole batch fails, each record is tried alone: the ones that fail
    alone get that reason, the others are computed again as one batch (their values are then
    those of a batch without the culprits). Used in a worker (:func:`run_batched`) and
    in-process alike, so both give the same values.
    """
    values, failure = call(batch)
    if failure is None:
        return _aligned(values, batch)
    if len(batch) == 1:
        return [(None, failure)]
    alone = [call([item]) for item in batch]
    results = [(None, f) if f is not None else _aligned(v, [item])[0]
               for (v, f), item in zip(alone, batch, strict=True)]
    survivors = [i for i, (_, f) in enumerate(alone) if f is None]
    if 1 < len(survivors) < len(batch):  # the culprit found: the others again as one batch
        values, failure = call([batch[i] for i in survivors])
        if failure is None:
            for i, result in zip(survivors, _aligned(values, survivors), strict=True):
                results[i] = result
    return results


def _aligned(values: Any, batch: Sequence[Any]) -> list[Result]:
    values = list(values)
    if len(values) != len(batch):
        raise ValueError(f"batch function returned {len(values)} results for {len(batch)} records")
    return values
