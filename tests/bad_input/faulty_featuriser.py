"""A test-registered featuriser: the real Magpie featuriser plus injected faults.

Records whose id contains "segfault" or "memory" crash or exhaust the worker
(:func:`tests.bad_input.workers.inject_fault`); every other record gets Magpie's real vector.
Lives in its own module because the worker process unpickles :class:`FaultyRun` from here.
"""

from __future__ import annotations

from dataclasses import replace

from matmodal.modalities.structure.composition import INFO as MAGPIE
from matmodal.modalities.structure.composition import MagpieRun
from tests.bad_input.workers import inject_fault

FAULTY = replace(MAGPIE, name="faulty")


class FaultyRun(MagpieRun):
    """Magpie on every record, with the injected faults."""

    def compute(self, items):
        for record_id, _ in items:
            inject_fault(record_id)
        return super().compute(items)


def start(items, **_):
    return FaultyRun()
