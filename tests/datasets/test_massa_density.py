"""massa2024 on the real MP charge densities: verified pairing, two views, targets by source."""

from __future__ import annotations

import pytest
from PIL import Image

from matmodal.config import Settings
from matmodal.datasets.massa import (
    DENSITY_ANY_NAME,
    DENSITY_NAME,
    MassaOptions,
    build_massa_density,
)
from matmodal.modalities.ecd import EcdSettings

EXPECTED_ANY = ["mp-1", "mp-1000", "mp-10000", "mp-10004", "mp-10009", "mp-1001", "mp-10010"]
EXPECTED_FCC = ["mp-1000"]  # BaTe, rocksalt


def options(limit: int) -> MassaOptions:
    return MassaOptions(ecd=EcdSettings(pixels=32), robocrys=False, iqr_k=None, limit=limit)


@pytest.fixture(scope="module")
def any_lattice(mirror_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("density")
    settings = Settings(mirror_dir=mirror_dir, cache_dir=root / "c", output_dir=root / "o")
    return build_massa_density(options=options(12), settings=settings, fcc_only=False)


def test_every_verified_pairing_becomes_an_image(any_lattice):
    table, manifest = any_lattice.table, any_lattice.manifest
    assert any_lattice.name == DENSITY_ANY_NAME
    assert sorted(table["material_id"]) == EXPECTED_ANY
    dropped = manifest[manifest.severity == "dropped"].set_index("record_id")
    assert dropped["stage"].value_counts().to_dict() == {"structure": 4, "pairing": 1}  # 4 grids without a structure
    assert "lacks its symmetry" in dropped.loc["mp-10003", "reason"]  # Nb4CoSi: right count, other origin
    assert (table["pairing_mismatch"] <= 0.10).all()
    for path in table["ecd_image"]:
        with Image.open(path) as image:
            assert image.size == (32, 32)
    row = table.set_index("material_id").loc["mp-1000"]  # BaTe: mp2018 targets, 2025 K_VRH
    assert row["pairing_origin"] == "mp2018_structures_34738.jsonl.gz" and row["pairing_structure_electrons"] == 16.0
    assert row["e_form"] == pytest.approx(-1.792337, abs=1e-6) and row["k_vrh"] == 28.286
    assert row["k_vrh_release"] == "2025" and row["grid_symmetry"] > 0.9


def test_fcc_view(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, cache_dir=tmp_path / "c", output_dir=tmp_path / "o")
    fcc = build_massa_density(options=options(12), settings=settings)
    assert fcc.name == DENSITY_NAME and sorted(fcc.table["material_id"]) == EXPECTED_FCC
    assert fcc.provenance["massa"]["fcc_only"] is True and fcc.provenance["massa"]["stable_only"] is False
