"""Charge-density readers on every file of the mirror's charge_density/ folder."""

from __future__ import annotations

import numpy as np
import pytest

from matmodal.config import Settings
from matmodal.sources.charge_density import (
    COUNT_TOLERANCE,
    MIRROR_DENSITIES,
    ChargeDensitySource,
    DensityMismatchError,
    cell_electrons,
    grid_symmetry,
    pair,
    read_aeccar_pair,
    read_density,
    read_hdf5,
    site_contrast,
    with_structure,
    write_hdf5,
)
from matmodal.sources.mirror import MissingDataError


@pytest.fixture
def source(mirror_dir, tmp_path) -> ChargeDensitySource:
    return ChargeDensitySource(Settings(mirror_dir=mirror_dir, cache_dir=tmp_path))


def test_every_loose_mirror_file_reads(mirror_dir):
    folder = mirror_dir / "charge_density"
    for entry in MIRROR_DENSITIES:
        for key, density in entry.load(folder).items():
            data = density.data["total"]
            assert data.shape == tuple(density.dim) and np.isfinite(data).all(), (entry.name, key)
            assert len(density.structure) >= 1


def test_chgcar_readers_give_the_cell_electron_count(mirror_dir):
    folder = mirror_dir / "charge_density"
    li = read_density(folder / "CHGCAR_Li_nospin.gz")  # gzip, with augmentation blocks
    assert li.dim == (32, 32, 32) and li.data["total"].mean() == pytest.approx(1.0, abs=1e-6)
    fe = read_density(folder / "CHGCAR_Fe_spin")  # spin: total and magnetisation
    assert set(fe.data) == {"total", "diff"} and fe.data["total"].mean() == pytest.approx(8.0, abs=1e-4)
    si = read_density(folder / "Si_diamond_60cube.hdf5")
    assert si.dim == (60, 60, 60) and si.structure.composition.reduced_formula == "Si"


def test_aeccar_pair_with_poscar(mirror_dir):
    folder = mirror_dir / "charge_density"
    core, valence = read_aeccar_pair(folder / "AECCAR0_H2O", folder / "AECCAR2_H2O", folder / "POSCAR_H2O")
    assert core.dim == valence.dim == (20, 20, 20)
    assert core.structure.composition.formula.replace(" ", "") == "H2O1"


def test_hdf5_cache_round_trip(mirror_dir, tmp_path):
    li = read_density(mirror_dir / "charge_density" / "CHGCAR_Li_spin.gz")
    back = read_hdf5(write_hdf5(li, tmp_path / "li.hdf5"))
    assert np.array_equal(back.data["total"], li.data["total"])
    assert np.allclose(back.structure.lattice.matrix, li.structure.lattice.matrix)


def test_multimat_index(source):
    index = source.multimat.index
    assert len(index) == 371 and index["material_id"].is_unique
    assert index["k_vrh"].notna().sum() == 97 and index["efermi"].notna().sum() == 3
    grid = source.multimat.grid("mp-864620")
    assert grid.shape == (32, 32, 32)


def test_bare_grid_gets_its_verified_structure_or_a_reason(source):
    density = source.chgcar("mp-864620")  # CaSmCd2, Fm-3m, structure from mp_elastic_1000.json
    assert density.structure.composition.reduced_formula == "CaSmCd2"
    pairing = source.pairing("mp-864620")
    assert pairing.origin == "mp_elastic_1000.json"
    assert pairing.structure_electrons == 45.0  # Ca_sv 10 + Sm_3 11 + 2 x Cd 12 (MP PAW valences)
    assert pairing.grid_electrons == pytest.approx(44.909, abs=1e-3) and pairing.mismatch < COUNT_TOLERANCE
    with pytest.raises(MissingDataError, match="no lattice"):
        source.chgcar("mp-10")  # a grid whose structure no mirror file has
    with pytest.raises(DensityMismatchError, match=r"36-site Li2VSiO5 cell has 204 e, off by 50\.0%"):
        source.chgcar("mp-18860")  # the mp2018 cell of Li2VSiO5 holds twice the grid's electrons
    with pytest.raises(MissingDataError):
        source.chgcar("mp-0-not-there")
    assert source.aeccars("mp-864620") is None


def test_pairing_refuses_a_mismatched_cell(source):
    grid = source.multimat.grid("mp-1002165")  # GeC, 18 valence electrons
    structure = source.pairing("mp-1002165").structure
    assert cell_electrons(structure) == 18.0
    with pytest.raises(DensityMismatchError, match=r"4-site GeC cell has 36 e, off by 48\.2%"):
        pair("mp-1002165", grid, [("test", structure * (2, 1, 1))])  # a supercell: 36 e
    shifted = structure.copy()
    shifted.translate_sites(range(len(shifted)), [0.25, 0.0, 0.0])  # same count, another origin
    assert grid_symmetry(grid, structure) == pytest.approx(0.9853, abs=1e-3)
    with pytest.raises(DensityMismatchError, match="lacks its symmetry"):
        pair("mp-1002165", grid, [("shifted", shifted)])
    assert pair("mp-1002165", grid, [("shifted", shifted), ("right", structure)]).origin == "right"


def test_site_contrast_separates_a_shifted_structure(source):
    density = source.chgcar("mp-1002165")  # GeC
    shifted = density.structure.copy()
    shifted.translate_sites(range(len(shifted)), [0.5, 0.3, 0.1])
    assert site_contrast(density) > 0.9 > site_contrast(with_structure(density.data["total"], shifted))


def test_catalogue_lists_the_npz_ids(source):
    catalogue = source.catalogue()
    assert len(catalogue) == 371 and {"k_vrh", "efermi"} <= set(catalogue.columns)
