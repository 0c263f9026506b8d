"""mp_summary: the costa2025-scale dataset from the mirror's mp2018 summary file."""

from __future__ import annotations

import json

import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.extras import table_metadata
from matmodal.datasets.mp_summary import (
    MISSING_TARGETS,
    SUMMARY_TARGETS,
    build_mp_summary,
    from_mp_summary,
)
from matmodal.manifest import RecordError
from matmodal.sources.materials_project import MaterialsProject
from matmodal.targets import TARGETS, TargetName


def settings_for(tmp_path, mirror_dir) -> Settings:
    return Settings(mirror_dir=mirror_dir, cache_dir=tmp_path / "cache", output_dir=tmp_path / "out", seed=0)


def first_row(mirror_dir) -> dict:
    return next(MaterialsProject(Settings(mirror_dir=mirror_dir)).summary_rows())  # mp-1, Cs


def test_record_from_a_real_row(mirror_dir):
    record, notes = from_mp_summary(first_row(mirror_dir), "mp2018", 0)
    assert record.record_id == "mp-1" and record.formula == "Cs" and record.nsites == 1
    values = {name: TARGETS[name].compute(record) for name in SUMMARY_TARGETS}
    assert values[TargetName.e_form] == pytest.approx(0.038769612)
    assert values[TargetName.gap] == 0.0 and values[TargetName.e_fermi] == pytest.approx(0.56012257)
    assert values[TargetName.vol_per_atom] == pytest.approx(114.0518054)
    assert values[TargetName.mag_per_vol] == pytest.approx(0.0023078 / 114.0518054)
    assert not [n for n in notes if n.stage == "targets"]


def test_bad_values_are_flagged_and_bad_rows_refused(mirror_dir):
    row = first_row(mirror_dir)
    record, notes = from_mp_summary({**row, "band_gap": -0.5, "efermi": float("inf")}, "mp2018", 0)
    assert record.data["band_gap_ind"] is None and record.data["efermi"] is None
    reasons = [n.reason for n in notes if n.stage == "targets"]
    assert reasons == ["gap=-0.5 eV is outside the physical range [0, 30] eV; set to NaN",
                       "e_fermi=inf is not finite; set to NaN"]
    with pytest.raises(RecordError, match="disagrees with the structure"):
        from_mp_summary({**row, "volume": 50.0}, "mp2018", 0)
    with pytest.raises(RecordError, match="unparsable CIF"):
        from_mp_summary({**row, "cif": "data_broken\n_cell_length_a x\n"}, "mp2018", 0)
    with pytest.raises(RecordError, match="line 3 is not JSON") as error:
        from_mp_summary({"material_id": "f.jsonl#3", "_error": "line 3 is not JSON: x"}, "mp2018", 0)
    assert error.value.stage == "source"


def test_build_a_seeded_sample(mirror_dir, tmp_path):
    from matmodal.modalities.image import RenderSettings

    options = BuildOptions(robocrys=False, image=RenderSettings(size=32), n_jobs=1)
    dataset = build_mp_summary(sample=8, options=options, settings=settings_for(tmp_path, mirror_dir))
    table = dataset.table
    expected = sorted(r["material_id"] for r in MaterialsProject(Settings(mirror_dir=mirror_dir)).summary_rows(sample=8, seed=0))
    assert sorted(table["material_id"]) == expected and len(table) == 8
    assert set(t.value for t in SUMMARY_TARGETS) <= set(table.columns)
    assert not {"e_hull", "e_tot_per_atom", "dos_per_atom"} & set(table.columns)
    assert table["text_composition"].notna().all() and table["image_path"].notna().all()
    meta = table_metadata(dataset.folder / "table.parquet")
    assert meta["missing_targets"] == MISSING_TARGETS and meta["sample"] == 8 and meta["seed"] == 0
    provenance = json.loads((dataset.folder / "provenance.json").read_text())
    source = provenance["sources"]["materials_project"]
    assert source["file"] == "mp2018_structures_34738.jsonl.gz" and len(source["sha256"]) == 64
    assert provenance["table_metadata"]["missing_targets"] == MISSING_TARGETS


@pytest.mark.slow
def test_robocrys_and_embeddings_enter_the_table(mirror_dir, tmp_path):
    options = BuildOptions(robocrys=True, robocrys_limit=1, featurisers=("magpie",), n_jobs=1)
    table = build_mp_summary(sample=3, options=options, settings=settings_for(tmp_path, mirror_dir)).table
    assert table["text_robocrys"].notna().sum() == 1
    assert any(c.startswith("magpie") for c in table.columns)
