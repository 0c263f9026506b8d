"""Growing the FCC ECD set with GPAW densities (matmodal.protocols.grow): candidates from the
mirror's 2025 binary elasticity file that have no MP density; one coarse calculation with gpaw."""

from __future__ import annotations

import pytest

from matmodal.config import Settings
from matmodal.datasets.massa import is_fcc
from matmodal.modalities.ecd.dft import DftSettings
from matmodal.protocols.grow import compute_fcc_densities, fcc_without_density
from matmodal.sources.charge_density import ChargeDensitySource

FIRST = ["mp-1002221", "mp-1002222", "mp-1002227"]  # ErH, TlN, RbSb: by id, 2 sites, FCC, no MultiMat grid


@pytest.fixture(scope="module")
def candidates(mirror_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("grow")
    settings = Settings(mirror_dir=mirror_dir, cache_dir=root / "c", output_dir=root / "o")
    return settings, fcc_without_density(settings, 3)


def test_candidates_are_fcc_binaries_without_an_mp_density(candidates):
    settings, found = candidates
    assert list(found["material_id"]) == FIRST and list(found["formula"]) == ["ErH", "TlN", "RbSb"]
    have = set(ChargeDensitySource(settings).catalogue()["material_id"])
    assert not have & set(found["material_id"])
    assert all(is_fcc(s) and len(s) == 2 for s in found["structure"])
    assert found["k_vrh"].notna().all()


def test_one_density_is_computed_and_cached(candidates, tmp_path):
    pytest.importorskip("gpaw")
    _, found = candidates
    rbsb = found[found.formula == "RbSb"]
    coarse = DftSettings(cutoff=200.0, kpoint_density=1.5, smearing=0.1)
    grown = compute_fcc_densities(rbsb, coarse, cache_dir=tmp_path)
    row = grown.iloc[0]
    assert row["error"] == "" and row["cache"] == "miss" and row["estimate_s"] > 0 and row["wall_s"] > 0
    assert row["electrons"] == 9 + 15  # GPAW setups: Rb 9 (4s4p5s), Sb 15 (4d5s5p)
    assert compute_fcc_densities(rbsb, coarse, cache_dir=tmp_path).iloc[0]["cache"] == "hit"
    # the same density (cached) as a massa-style table that train_and_save takes
    from PIL import Image

    from matmodal.modalities.ecd import EcdSettings
    from matmodal.protocols.grow import grown_table

    table, provenance = grown_table(rbsb, coarse, EcdSettings(pixels=32), tmp_path / "ecd", cache_dir=tmp_path)
    assert list(table["material_id"]) == ["mp-1002227"] and table["k_vrh"].iloc[0] == pytest.approx(8.399)
    assert Image.open(table["ecd_image"].iloc[0]).size == (32, 32)
    assert provenance["ecd"]["electrons"] == "gpaw" and provenance["dft"] == coarse.describe()
    assert provenance["failed"] == {}
