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
    return kind.upper()


def space_group(structure: Structure) -> int:
    """spglib on a structure as it is (no validation): what records.py must never do unchecked."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()


def isolated_space_group(structure: Structure) -> tuple[int | None, str | None]:
    """records' isolated spglib call, as a forked pool worker makes it."""
    from matmodal.records import _SPACE_GROUP

    return _SPACE_GROUP(structure)
