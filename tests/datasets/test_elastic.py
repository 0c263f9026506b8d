"""The two MP elastic releases as two datasets, their disagreement, and the tensor stability rule."""

from __future__ import annotations

import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.elastic import (
    RELEASE_2025,
    RELEASE_OLD,
    build_elastic_2025,
    from_binary_elastic,
    release_disagreement,
    release_moduli,
)
from matmodal.datasets.quality import untrusted_moduli
from matmodal.manifest import RecordError
from matmodal.sources.materials_project import MaterialsProject

UNSTABLE = "mp-571386"  # in both releases; its older tensor has a -2.0 GPa eigenvalue


@pytest.fixture(scope="module")
def mp(mirror_dir) -> MaterialsProject:
    return MaterialsProject(Settings(mirror_dir=mirror_dir))


def rows(mp, ids):
    return {r["material_id"]: r for r in mp.binary_elasticity(ids).to_dict("records")}


def test_rows_of_the_2025_release_become_records_or_reasons(mp):
    found = rows(mp, ["mp-975512", "mp-22880", UNSTABLE])
    record, notes = from_binary_elastic(found["mp-975512"])
    assert record.data["k_vrh"] == 53.357 and record.data["g_vrh"] == 12.164 and record.formula == "InSb3"
    with pytest.raises(RecordError, match="formula FeB2 disagrees with the structure"):
        from_binary_elastic(found["mp-22880"])  # a real inconsistency of the source file
    untrusted = untrusted_moduli(mp, [UNSTABLE, "mp-975512"])
    assert list(untrusted) == [UNSTABLE] and "lowest eigenvalue -2.0 GPa" in untrusted[UNSTABLE]
    with pytest.raises(RecordError, match="not positive definite") as error:
        from_binary_elastic(found[UNSTABLE], untrusted=untrusted)
    assert error.value.stage == "quality"
    record, notes = from_binary_elastic({**found["mp-975512"], "g_vrh": -1.0})
    assert record.data["g_vrh"] is None and "outside the physical range" in notes[0].reason


def test_release_disagreement_on_every_shared_id(mp):
    shared = sorted(set(mp.binary_elasticity()["material_id"]) & set(mp.elastic_rows["material_id"]))
    assert len(shared) == 297  # README: 297 ids in both files
    new, old = release_moduli(mp, RELEASE_2025, shared), release_moduli(mp, RELEASE_OLD, shared)
    assert len(old) == 281  # 16 older tensors are not positive definite
    merged = new.rename(columns=lambda c: c.replace(f"_{RELEASE_2025}", "")).merge(old, on="material_id")
    summary = release_disagreement(merged, RELEASE_OLD)
    assert summary["n_overlap"] == 281
    assert summary["k_vrh_abs_diff_gpa"]["median"] == pytest.approx(1.670, abs=1e-3)
    assert summary["k_vrh_abs_diff_gpa"]["p95"] == pytest.approx(27.23, abs=1e-2)
    assert summary["g_vrh_abs_diff_gpa"]["median"] == pytest.approx(1.747, abs=1e-3)


def test_build_keeps_both_releases_traceable(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, cache_dir=tmp_path / "c", output_dir=tmp_path / "o")
    ids = ["mp-1002165", "mp-10025", "mp-975512", UNSTABLE]
    dataset = build_elastic_2025(ids, options=BuildOptions(robocrys=False), settings=settings)
    table = dataset.table.set_index("material_id")
    assert sorted(table.index) == ["mp-1002165", "mp-10025", "mp-975512"]
    assert table.loc["mp-975512", "k_vrh"] == 53.357 and table["k_vrh_mp_elastic_1000"].isna()["mp-975512"]
    assert table.loc["mp-1002165", "k_vrh_mp_elastic_1000"] == pytest.approx(166.6667, abs=1e-3)  # GeC, older tensor
    dropped = dataset.manifest.set_index("record_id")
    assert dropped.loc[UNSTABLE, "stage"] == "quality"
    assert dataset.provenance["release_comparison"]["n_overlap"] == 2
