"""render_many: one PNG per record, byte-identical reruns, skip-if-done cache, safe names, manifest issues."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pymatgen.core import Lattice, Structure

from matmodal.manifest import Severity
from matmodal.modalities.image import RenderSettings, batch, render_many
from matmodal.paths import safe_name
from tests.modalities.test_image import fcc_cu, mp_structures, rock_salt

SMALL = RenderSettings(size=48)


def flat_cell() -> Structure:
    """Fixture: a lattice whose third vector lies in the plane of the first two (unrenderable)."""
    return Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 0]]), ["Si"], [[0, 0, 0]])


def test_pngs_are_byte_identical_across_runs_and_pool_sizes(tmp_path, mirror_dir):
    items = mp_structures(mirror_dir, 6)
    first, _ = render_many(items, tmp_path / "a", SMALL, progress=False)
    second, _ = render_many(items, tmp_path / "b", SMALL, progress=False)
    pooled, _ = render_many(items, tmp_path / "c", SMALL, n_jobs=2, progress=False)
    assert list(first) == [rid for rid, _ in items]
    for rid in first:
        data = first[rid].read_bytes()
        assert data == second[rid].read_bytes() == pooled[rid].read_bytes(), rid
        assert first[rid].name == safe_name(rid, ".png")


def test_second_call_renders_nothing(tmp_path, monkeypatch):
    items = [("cu", fcc_cu()), ("nacl", rock_salt())]
    paths, _ = render_many(items, tmp_path, SMALL, progress=False)
    stamps = {rid: p.stat().st_mtime_ns for rid, p in paths.items()}

    def fail(job):
        raise AssertionError(f"re-rendered {job.record_id}")

    monkeypatch.setattr(batch, "_run", fail)
    again, issues = render_many(items, tmp_path, SMALL, progress=False)
    assert again == paths and issues == []
    assert {rid: p.stat().st_mtime_ns for rid, p in again.items()} == stamps


def test_changed_settings_or_structure_render_again(tmp_path):
    render_many([("cu", fcc_cu())], tmp_path, SMALL, progress=False)
    before = (tmp_path / "cu.png").read_bytes()
    render_many([("cu", fcc_cu())], tmp_path, SMALL.with_(color_scheme="Jmol"), progress=False)
    jmol = (tmp_path / "cu.png").read_bytes()
    assert jmol != before
    strained = fcc_cu()
    strained.apply_strain(0.05)
    render_many([("cu", strained)], tmp_path, SMALL.with_(color_scheme="Jmol"), progress=False)
    assert (tmp_path / "cu.png").read_bytes() != jmol


def test_hostile_ids_stay_inside_the_folder(tmp_path):
    out = tmp_path / "images"
    paths, issues = render_many([("../../etc/x", fcc_cu()), ("a/b\\c", fcc_cu())], out, SMALL, progress=False)
    assert issues == []
    for path in paths.values():
        assert path.parent == out and path.exists()
    assert not (tmp_path / "etc").exists()


def test_bad_records_become_issues_and_the_batch_goes_on(tmp_path):
    alloy = Structure(Lattice.cubic(3.6), [{"Co": 0.4, "Fe": 0.6}] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    items = [("flat", flat_cell()), ("alloy", alloy), ("cu", fcc_cu())]
    paths, issues = render_many(items, tmp_path, SMALL, n_jobs=2, progress=False)
    assert set(paths) == {"alloy", "cu"}
    by_id = {i.record_id: i for i in issues}
    assert by_id["flat"].severity == Severity.dropped and "coplanar" in by_id["flat"].reason
    assert by_id["flat"].stage == "image"
    assert by_id["alloy"].severity == Severity.degraded and "majority species" in by_id["alloy"].reason
    assert "cu" not in by_id
    # degraded notes survive the cache
    _, cached_issues = render_many(items, tmp_path, SMALL, progress=False)
    assert [(i.record_id, i.severity) for i in cached_issues] == [(i.record_id, i.severity) for i in issues]


def test_png_has_no_time_stamp_and_carries_the_key(tmp_path):
    paths, _ = render_many([("cu", fcc_cu())], tmp_path, SMALL, progress=False)
    with Image.open(paths["cu"]) as im:
        assert set(im.text) == {"matmodal-render-key", "matmodal-render-notes"}
        assert np.asarray(im).shape == (48, 48, 3)
    assert b"tIME" not in paths["cu"].read_bytes()


def test_every_alexandria_mirror_entry_gets_a_picture(tmp_path, mirror_dir):
    from matmodal.sources import alexandria

    items = [(entry["data"]["mat_id"], Structure.from_dict(entry["structure"]))
             for path in sorted((mirror_dir / "alexandria").glob("*.json.bz2"))
             for entry in alexandria.iter_entries(path)]
    paths, issues = render_many(items, tmp_path, RenderSettings(size=32), progress=False)
    assert len(items) == 108 and set(paths) == {rid for rid, _ in items}
    assert not [i for i in issues if i.severity == Severity.dropped]


@pytest.mark.slow
def test_every_mp_elastic_structure_gets_a_picture(tmp_path, mirror_dir):
    items = mp_structures(mirror_dir, 1000)
    paths, issues = render_many(items, tmp_path, RenderSettings(size=64), n_jobs=2, progress=False)
    assert len(paths) == len(items) == 1000 and issues == []
