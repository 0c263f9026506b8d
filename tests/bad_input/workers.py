"""Stage functions for the isolation tests (imported by name in the worker processes)."""

from __future__ import annotations

import os
import signal
import time

from pymatgen.core import Structure


def misbehave(kind: str) -> str:
    """Fail the way ``kind`` says: a native crash, a runaway allocation, a hang, an exception."""
    if kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "allocate":
        return str(len(bytearray(64 << 30)))
    if kind == "hang":
        time.sleep(600)
    if kind == "raise":
        raise KeyError("no such thing")
    if kind == "exit0":  # ends its process like an idle worker does (code 0)
        os._exit(0)
    return kind.upper()


def space_group(structure: Structure) -> int:
    """spglib on a structure as it is (no validation): what records.py must never do unchecked."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()


def isolated_space_group(structure: Structure) -> tuple[int | None, str | None]:
    """records' isolated spglib call, as a forked pool worker makes it."""
    from matmodal.records import _SPACE_GROUP

    return _SPACE_GROUP(structure)


# --- fault injection for the modality stages (a documented test hook, not natural input) ---
# No real mirror record crashes the renderer or a featuriser once validation has run, so the
# tests inject the faults: a record whose id contains "segfault" kills its process with a real
# SIGSEGV, one whose id contains "memory" asks for address space without bound (1 GiB blocks,
# up to 64 GiB; what RLIMIT_AS bounds). Every other record runs the real stage unchanged.

GIB = 1 << 30


def runaway_allocation(limit_gib: int = 64) -> int:
    """Reserve 1 GiB blocks until ``limit_gib`` (never reached under a worker's memory limit)."""
    import numpy as np

    blocks = [np.empty(GIB, dtype=np.uint8) for _ in range(limit_gib)]
    return len(blocks)


def inject_fault(record_id: str) -> None:
    if "segfault" in record_id:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "memory" in record_id:
        runaway_allocation()


def faulty_render(job):
    """The image worker's ``_run`` (``batch.RENDER``), with the injected faults."""
    from matmodal.modalities.image.batch import _run

    inject_fault(job.record_id)
    return _run(job)


def misbehave_batch(batch: list[str]) -> list[tuple[str | None, str | None]]:
    """``misbehave`` on a batch; a good record's value says the size of the batch it ran in."""
    return [(misbehave(kind) + f"/{len(batch)}", None) for kind in batch]



def isolated_misbehave(kinds: list[str]) -> list:
    """``run_isolated`` called from a daemonic pool worker (it runs the calls in-process)."""
    from matmodal.isolation import run_isolated

    return list(run_isolated("tests.bad_input.workers:misbehave", kinds))
