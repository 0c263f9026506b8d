"""The worker-process boundary of the modality stages (images, structure featurisers).

A record that crashes the stage's native code (a real SIGSEGV) or runs past the worker's
memory limit costs only that record's picture or vector, with a manifest row naming it, the
stage and the reason; every other record gets exactly what the in-process path gives. The
faults are injected through documented test hooks (``batch.RENDER`` and a test-registered
featuriser, ``tests/bad_input/faulty_featuriser.py``): no real mirror record crashes these
stages once validation has run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.costa import build_alexandria
from matmodal.isolation import GIB, Isolated, Limits, run_batched
from matmodal.modalities.image import RenderSettings, batch, render_many
from matmodal.modalities.structure import featurise, register, unregister
from tests.bad_input import faulty_featuriser
from tests.fixtures import ALEX_FILES, real_entries, write_dump
from tests.modalities import test_structure_data as data

mp_items = data.mp_items  # shared real-data fixture
mp_structures = data.mp_structures  # shared real-data fixture
mp_table = data.mp_table  # shared real-data fixture

SMALL = RenderSettings(size=48)
SEGFAULT, MEMORY = "agm-fault-segfault", "agm-fault-memory"


def test_a_failed_batch_costs_only_its_culprits_and_the_rest_is_recomputed_together():
    batches = [["ok", "segfault", "fine"], ["allocate", "hang", "last", "more"]]
    limits = Limits(memory_bytes=2 * GIB, seconds=3)
    results = list(run_batched("tests.bad_input.workers:misbehave_batch", batches, limits))
    assert results == [
        [("OK/2", None), (None, "worker process died (signal SIGSEGV) on this record"), ("FINE/2", None)],
        [(None, "ran out of memory (worker limit 2.0 GiB)"), (None, "took longer than the 3 s limit; stopped"),
         ("LAST/2", None), ("MORE/2", None)],
    ]  # "/2": the survivors ran again as one batch of two


def test_an_idle_worker_exits_and_the_next_call_starts_a_new_one():
    worker = Isolated("tests.bad_input.workers:misbehave", Limits(memory_bytes=2 * GIB, seconds=10, idle_seconds=0.5))
    assert worker("ok") == ("OK", None)
    first = worker.slot.process
    first.join(10)
    assert first.exitcode == 0  # exited by itself, idle
    assert worker("fine") == ("FINE", None) and worker.slot.process is not first
    # a record that ends its worker with code 0 itself is sent again once, then fails
    assert worker("exit0") == (None, "worker process died (exit code 0) on this record")
    assert worker("last") == ("LAST", None)
    worker.close()


def test_a_daemonic_pool_worker_runs_the_stage_in_process():
    import multiprocessing

    from tests.bad_input.workers import isolated_misbehave

    with multiprocessing.get_context("fork").Pool(1) as pool:  # may not start processes of its own
        assert pool.apply(isolated_misbehave, (["ok", "raise"],)) == [("OK", None), (None, "KeyError: 'no such thing'")]


@pytest.mark.ml
@pytest.mark.parametrize("name", ["magpie", "chgnet", "potnet"])
def test_isolated_featuriser_gives_the_in_process_vectors_and_cache(name, mp_items, tmp_path):
    items = mp_items[:12]
    serial, serial_issues = featurise(name, items, cache_dir=tmp_path / "a", progress=False)
    isolated, issues = featurise(name, items, cache_dir=tmp_path / "b", progress=False, isolate=True)
    assert issues == serial_issues == []
    assert isolated.index.equals(serial.index) and len(isolated) == 12
    assert np.array_equal(isolated.to_numpy(), serial.to_numpy())  # bit for bit
    cached = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.npy"))
    assert cached == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.npy"))
    for path in cached:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    assert isolated.attrs["provenance"]["isolation"]["memory_gib"] == 8.0
    assert serial.attrs["provenance"]["isolation"] == "in-process"


def test_isolated_images_are_byte_identical(mp_items, tmp_path):
    items = mp_items[:6]
    serial, _ = render_many(items, tmp_path / "a", SMALL, progress=False)
    isolated, issues = render_many(items, tmp_path / "b", SMALL, progress=False, isolate=True, n_jobs=2)
    assert not [i for i in issues if i.severity == "dropped"]
    assert list(isolated) == list(serial) == [rid for rid, _ in items]
    assert all(serial[r].read_bytes() == isolated[r].read_bytes() for r in serial)


def _mirror_with_faults(mirror_dir, root):
    """The 10 real entries of the hyllios file; copies of the last two carry the fault ids."""
    entries = real_entries(mirror_dir, ALEX_FILES[1])
    good = entries[:8]
    faults = [copy.deepcopy(entries[8]), copy.deepcopy(entries[9])]
    faults[0]["data"]["mat_id"], faults[1]["data"]["mat_id"] = MEMORY, SEGFAULT
    layout = [*good[:3], faults[0], *good[3:6], faults[1], *good[6:]]
    (root / "alexandria").mkdir(parents=True)
    write_dump(root / "alexandria" / "alexandria_951.json.bz2", layout)
    settings = Settings(mirror_dir=root, output_dir=root.parent / "out", cache_dir=root.parent / "cache")
    return settings, layout, [e["data"]["mat_id"] for e in good]


def _accounted(dataset, layout) -> None:
    dropped = int((dataset.manifest.severity == "dropped").sum())
    assert len(dataset.table) + dropped == len(layout) and dropped == 0


def _stage_rows(dataset, stage: str) -> dict[str, tuple[str, str]]:
    rows = dataset.manifest[dataset.manifest.stage == stage]
    return {r.record_id: (r.severity, r.reason) for r in rows.itertuples()}


def test_build_survives_a_segfault_and_a_memory_runaway_in_the_renderer(mirror_dir, tmp_path, monkeypatch):
    settings, layout, good = _mirror_with_faults(mirror_dir, tmp_path / "mirror")
    monkeypatch.setattr(batch, "RENDER", "tests.bad_input.workers:faulty_render")
    monkeypatch.setattr(batch, "LIMITS", Limits(memory_bytes=2 * GIB, seconds=60))
    dataset = build_alexandria(options=BuildOptions(robocrys=False, image=SMALL), settings=settings)
    _accounted(dataset, layout)
    assert _stage_rows(dataset, "image") == {
        SEGFAULT: ("degraded", "render failed: worker process died (signal SIGSEGV) on this record "
                               "(row kept without this image)"),
        MEMORY: ("degraded", "render failed: ran out of memory (worker limit 2.0 GiB) (row kept without this image)"),
    }
    table = dataset.table.set_index("material_id")
    assert table.loc[[SEGFAULT, MEMORY], "image_path"].isna().all()
    expected, _ = render_many(_items(settings, good), tmp_path / "serial", SMALL, progress=False)
    assert sorted(expected) == sorted(good)
    for record_id in good:  # the pictures the in-process path draws, byte for byte
        assert Path(table.loc[record_id, "image_path"]).read_bytes() == expected[record_id].read_bytes()


@pytest.mark.ml
def test_build_survives_a_segfault_and_a_memory_runaway_in_a_featuriser(mirror_dir, tmp_path):
    settings, layout, good = _mirror_with_faults(mirror_dir, tmp_path / "mirror")
    register(faulty_featuriser.FAULTY, faulty_featuriser.start)
    try:
        dataset = build_alexandria(options=BuildOptions(robocrys=False, featurisers=("faulty",)),
                                   settings=settings)
    finally:
        unregister("faulty")
    _accounted(dataset, layout)
    assert _stage_rows(dataset, "structure:faulty") == {
        SEGFAULT: ("degraded", "worker process died (signal SIGSEGV) on this record "
                               "(row kept without this structure:faulty)"),
        MEMORY: ("degraded", "ran out of memory (worker limit 8.0 GiB) (row kept without this structure:faulty)"),
    }
    columns = [c for c in dataset.table.columns if c.startswith("faulty_")]
    table = dataset.table.set_index("material_id")
    assert len(columns) == 132 and table.loc[[SEGFAULT, MEMORY], columns].isna().all().all()
    expected, _ = featurise("magpie", _items(settings, good), progress=False)  # in-process, good records only
    got = table.loc[good, columns].to_numpy(dtype=np.float32)
    assert np.array_equal(got, expected.loc[good].to_numpy())


def _items(settings, ids):
    from matmodal.datasets.build import collect
    from matmodal.datasets.costa import alexandria_records

    records = collect(alexandria_records(sorted((settings.mirror_dir / "alexandria").glob("*.bz2"))), [])
    return [(r.record_id, r.structure) for r in records if r.record_id in ids]

