import copy

import pandas as pd
import pyarrow.parquet as pq
import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, load
from matmodal.datasets.costa import build_alexandria
from matmodal.datasets.elastic import build_elastic
from matmodal.paths import safe_name
from tests.fixtures import defective_entries, real_entries, write_dump
from tests.test_records import hand_targets

NO_EXTRAS = BuildOptions(robocrys=False)


@pytest.fixture
def settings(mirror_dir, tmp_path):
    return Settings(mirror_dir=mirror_dir, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")


def test_alexandria_dataset_from_all_108_real_entries(settings, mirror_dir):
    dataset = build_alexandria(options=NO_EXTRAS, settings=settings)
    table = dataset.table.set_index("material_id")
    assert len(table) == 108
    for name in ("alexandria_000_first100_98.json.bz2", "hyllios_benchmark_pressure_10.json.bz2"):
        for entry in real_entries(mirror_dir, name):
            row = table.loc[entry["data"]["mat_id"]]
            for target, value in hand_targets(entry).items():
                assert row[target] == pytest.approx(value, rel=1e-9)
    assert table.loc["agm001000110", "text_composition"] == "Ge 2 Pt 2 Ac 2"
    schema = pq.read_schema(dataset.folder / "table.parquet")
    assert schema.field("mag_per_vol").metadata[b"unit"] == "μB/Å³".encode()
    assert dataset.provenance["n_records"] == 108
    assert len(dataset.provenance["sources"]["alexandria"]) == 2
    assert not (dataset.manifest.severity == "dropped").any()


def test_mp_elastic_dataset_drops_unstable_tensors_with_reason(settings):
    dataset = build_elastic(options=NO_EXTRAS, settings=settings)
    dropped = dataset.manifest[dataset.manifest.severity == "dropped"]
    assert len(dataset.table) + len(dropped) == 1000
    assert dropped.reason.str.contains("elastic tensor").all()
    assert (dataset.table.k_vrh > 0).all() and (dataset.table.g_vrh > 0).all()
    assert set(dataset.table.columns) >= {"k_vrh", "g_vrh", "vol_per_atom", "text_composition", "image_path"}


def test_bad_records_land_in_the_manifest_and_the_rest_continues(settings, mirror_dir, tmp_path):
    good = real_entries(mirror_dir)
    bad = defective_entries(mirror_dir)
    duplicate = copy.deepcopy(good[0])
    entries = [*good, *bad.values(), duplicate]
    path = write_dump(tmp_path / "alexandria_900.json.bz2", entries)
    truncated = tmp_path / "alexandria_901.json.bz2"
    truncated.write_bytes(path.read_bytes()[:500])
    fixture_mirror = tmp_path / "mirror"
    (fixture_mirror / "alexandria").mkdir(parents=True)
    for p in (path, truncated):
        (fixture_mirror / "alexandria" / p.name).write_bytes(p.read_bytes())
    dataset = build_alexandria(options=NO_EXTRAS, settings=settings.model_copy(update={"mirror_dir": fixture_mirror}))
    manifest = dataset.manifest.set_index("record_id")
    assert len(dataset.table) == len(good) + 2  # + nan_targets and hostile_id
    for defect in ("no_structure", "nsites_zero", "nsites_mismatch", "zero_volume",
                   "partial_occupancy", "unknown_element"):
        assert manifest.loc[f"defect-{defect}", "severity"] == "dropped"
    first_id = good[0]["data"]["mat_id"]
    assert dataset.manifest.query(f"record_id == {first_id!r} and severity == 'dropped'").reason.str.contains("duplicate id").all()
    assert "e_form" in manifest.loc["defect-nan_targets", "reason"]
    row = dataset.table.set_index("material_id").loc["defect-nan_targets"]
    assert pd.isna(row.e_form) and pd.isna(row.dos_per_atom) and not pd.isna(row.gap)
    assert "truncated" in manifest.loc["alexandria_901.json.bz2", "reason"]
    assert "../../escape/me" in dataset.table.material_id.values
    assert "/" not in safe_name("../../escape/me")


def test_rebuild_is_identical_and_loadable(settings):
    first = build_alexandria(options=NO_EXTRAS, settings=settings).table
    second = build_alexandria(options=NO_EXTRAS, settings=settings).table
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(load("alexandria", settings).table, first)


def test_load_missing_dataset_says_how(settings):
    with pytest.raises(FileNotFoundError, match="matmodal build"):
        load("nope", settings)


@pytest.mark.slow  # robocrys: about 40 s for two ternaries on this shared 2-core machine
def test_robocrys_column_runs_in_isolated_workers_and_caches(settings, mirror_dir):
    options = BuildOptions(robocrys=True, robocrys_limit=2)
    dataset = build_alexandria(["hyllios_benchmark_pressure_10.json.bz2"], options=options, settings=settings)
    described = dataset.table.dropna(subset=["text_robocrys"])
    assert len(described) == 2 and described.text_robocrys.str.contains("crystallizes in").all()
    assert not (dataset.manifest.stage == "text").any()
    again = build_alexandria(["hyllios_benchmark_pressure_10.json.bz2"], options=options, settings=settings)
    pd.testing.assert_frame_equal(again.table, dataset.table)  # from the cache: no worker started
