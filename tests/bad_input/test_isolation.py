"""Crash isolation: a record that crashes native code, allocates without bound or hangs costs
only itself; the worker is replaced and the other records are done."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymatgen.core import Structure

from matmodal.isolation import GIB, Limits, run_isolated
from matmodal.manifest import RecordError
from matmodal.records import check_structure
from tests.fixtures import ALEX_FILES, real_entries

LIMITS = Limits(memory_bytes=2 * GIB, seconds=5)


def real_structure(mirror_dir) -> Structure:
    entry = real_entries(mirror_dir, ALEX_FILES[0])[0]  # Ac, P6_3/mmc
    return Structure.from_dict(entry["structure"])


def test_each_failure_is_reported_and_the_rest_run():
    kinds = ["ok", "segfault", "fine", "allocate", "raise", "hang", "last"]
    started = time.monotonic()
    results = list(run_isolated("tests.bad_input.workers:misbehave", kinds, LIMITS, n_workers=2))
    assert results == [
        ("OK", None),
        (None, "worker process died (signal SIGSEGV) on this record"),
        ("FINE", None),
        (None, "ran out of memory (worker limit 2.0 GiB)"),
        (None, "KeyError: 'no such thing'"),
        (None, "took longer than the 5 s limit; stopped"),
        ("LAST", None),
    ]
    assert time.monotonic() - started < 30


def test_spglib_segfault_on_nan_coordinates_is_contained_and_validation_stops_it_first(mirror_dir):
    good = real_structure(mirror_dir)
    coords = good.frac_coords.copy()
    coords[0] = np.nan
    bad = Structure(good.lattice, good.species, coords)
    results = list(run_isolated("tests.bad_input.workers:space_group", [bad, good], LIMITS))
    assert results == [(None, "worker process died (signal SIGSEGV) on this record"), (194, None)]
    with pytest.raises(RecordError, match=r"non-finite \(NaN/inf\) coordinates"):
        check_structure("nan", bad)


@pytest.mark.slow  # about 40 s: robocrys grows to the limit on the huge cell, then describes the real one
def test_huge_lattice_robocrys_stops_at_the_memory_limit(mirror_dir, tmp_path):
    from matmodal.modalities.text import robocrys_many

    good = real_structure(mirror_dir)
    huge = Structure(good.lattice.matrix * 1e6, good.species, good.frac_coords)  # 1e6 x the cell edges
    with pytest.raises(RecordError, match="volume per atom"):
        check_structure("huge", huge)  # what the build does first
    limits = Limits(memory_bytes=int(1.5 * GIB), seconds=120)
    (text_huge, failure_huge), (text_good, failure_good) = robocrys_many(
        [huge, good], cache_dir=tmp_path, limits=limits, progress=False)
    assert (text_huge, failure_huge) == (
        "Ac 2", "robocrys failed (ran out of memory (worker limit 1.5 GiB)); composition string used")
    assert failure_good is None and text_good.startswith("Ac is Magnesium structured")


def test_spglib_during_parsing_runs_behind_the_worker_boundary(mirror_dir):
    """Even a cell that slipped past validation costs only its space group, not the process."""
    from matmodal.records import MaterialRecord, _derive

    good = real_structure(mirror_dir)
    coords = good.frac_coords.copy()
    coords[1] = np.nan
    bad = Structure(good.lattice, good.species, coords)
    record = MaterialRecord("slipped", "test", bad, {"formula": "Ac"}, good.composition)
    _derive(record)
    assert record.data["spg"] is None
    assert record.derived == ["spg: unknown (spglib failed: worker process died (signal SIGSEGV) on this record)"]
    fine = MaterialRecord("fine", "test", good, {"formula": "Ac"}, good.composition)
    _derive(fine)  # the worker was replaced
    assert fine.data["spg"] == 194 and fine.derived == ["spg (spglib, symprec=0.1 Å)"]


def test_a_forked_process_gets_its_own_worker(mirror_dir):
    """Pools fork the parent (images, featurisers): the copy must not touch the parent's worker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from matmodal.records import _SPACE_GROUP
    from tests.bad_input.workers import isolated_space_group

    good = real_structure(mirror_dir)
    assert _SPACE_GROUP(good) == (194, None)  # the parent's worker is running
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        assert pool.submit(isolated_space_group, good).result() == (194, None)
    with multiprocessing.get_context("fork").Pool(1) as pool:  # daemonic: runs in the worker itself
        assert pool.apply(isolated_space_group, (good,)) == (194, None)
    assert _SPACE_GROUP(good) == (194, None)
