"""Regrid, differential density, normalisation and the whole image pipeline on the mirror's
real densities (plus small fixtures built here)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Chgcar, Poscar

from matmodal.modalities.ecd import (
    EcdError,
    EcdSettings,
    density_image,
    fourier_image,
    grid_shape,
    iqr_bounds,
    iqr_outliers,
    minmax,
    mp_zval,
    normalise,
    promolecule,
    regrid,
    write_images,
    zscore,
)
from matmodal.modalities.ecd.differential import slater_zeta
from matmodal.sources.charge_density import MIRROR_DENSITIES, read_density


@pytest.fixture(scope="module")
def si(mirror_dir) -> Chgcar:
    return read_density(mirror_dir / "charge_density" / "Si_diamond_60cube.hdf5")


@pytest.fixture(scope="module")
def fe3o4(mirror_dir) -> Chgcar:
    return read_density(mirror_dir / "charge_density" / "CHGCAR_Fe3O4.gz")


# -- regrid ----------------------------------------------------------------------------------
def test_grid_shape_never_passes_a_bare_int():
    assert grid_shape(60) == (60, 60, 60)
    assert grid_shape([60, 48, 32]) == (60, 48, 32)
    with pytest.raises(ValueError):
        grid_shape([60, 60])


def test_pyrho_regrid_keeps_a_60_cube_and_the_fourier_regrid_keeps_the_electron_count(si, fe3o4):
    same = regrid(si, 60, "pyrho")
    assert same.dim == (60, 60, 60)
    assert np.allclose(same.data["total"], si.data["total"])  # identity on the same grid
    down = regrid(fe3o4, 60, "fourier")  # 72^3 -> 60^3
    assert down.dim == (60, 60, 60)
    assert down.data["total"].mean() == pytest.approx(fe3o4.data["total"].mean(), rel=1e-10)
    pyrho = regrid(fe3o4, 60, "pyrho")
    assert pyrho.dim == (60, 60, 60)  # (its grid mean moves: linear sampling of core cusps)


# -- differential density ----------------------------------------------------------------------
def test_mp_zval_table_has_mp_potcar_valences():
    zval = mp_zval()
    assert zval["Si"] == 4 and zval["O"] == 6 and zval["Fe"] == 14 and zval["Ta"] == 11  # Fe_pv, Ta_pv


def test_promolecule_integrates_to_the_electrons_and_matches_the_slater_tail():
    lattice = Lattice.cubic(12.0)
    structure = Structure(lattice, ["Na"], [[0.5, 0.5, 0.5]])
    shape = (96, 96, 96)
    pro = promolecule(structure, shape, np.array([9.0]))
    assert pro.mean() == pytest.approx(9.0, rel=1e-12)  # rho * V convention: grid mean = electrons
    zeta = slater_zeta("Na")
    r = 2.0  # Å from the nucleus along x: grid point 48 + 16
    exact = 9 * zeta**3 / (8 * np.pi) * np.exp(-zeta * r) * lattice.volume
    assert pro[64, 48, 48] == pytest.approx(exact, rel=2e-3)  # band limit only touches the cusp


def test_differential_of_a_promolecule_is_zero():
    structure = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    zval = mp_zval()
    pro = promolecule(structure, (40, 40, 40), np.array([zval["Na"], zval["Cl"]]))
    total = Chgcar(Poscar(structure), {"total": pro})
    result = density_image(total, settings=EcdSettings(grid=40, pixels=32))
    assert result.method == "chgcar-promolecule"
    assert max(abs(result.stats["rho_min"]), abs(result.stats["rho_max"])) < 1e-9


def test_foreign_structure_is_refused_by_the_electron_count(si):
    """The Si test file is an all-electron density (28 e): with MP valences (8 e) it is refused."""
    with pytest.raises(EcdError, match="does not belong"):
        density_image(si, settings=EcdSettings(pixels=16))
    auto = density_image(si, settings=EcdSettings(pixels=16, electrons="auto"))
    assert "all-electron" in " ".join(auto.notes)
    assert auto.stats["model_electrons"] == 28


# -- normalisation ---------------------------------------------------------------------------
def test_paper_normalisation_equals_minmax_and_options_keep_zero():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((20, 20)) ** 3
    paper = normalise(values, "paper")
    assert np.allclose(paper, minmax(values))  # z-score then min-max = min-max
    assert paper.min() == -1 and paper.max() == 1
    assert np.allclose(zscore(values).std(), 1)
    clipped = normalise(values, "clip", k=2)
    assert clipped.min() >= -1 and clipped.max() <= 1
    symlog = normalise(values, "symlog")
    assert np.array_equal(np.sign(symlog), np.sign(values)) and np.abs(symlog).max() == 1
    assert np.all(normalise(np.ones((4, 4))) == 0)
    with pytest.raises(ValueError):
        normalise(values, "nope")


def test_fourier_image_of_a_plane_wave_has_two_peaks():
    x = np.arange(32)
    wave = np.cos(2 * np.pi * 3 * x / 32)[None, :] * np.ones((32, 1))
    spectrum = fourier_image(wave)
    peaks = np.argwhere(spectrum == spectrum.max())
    assert sorted(map(tuple, peaks)) == [(16, 13), (16, 19)]  # +-3 cycles about the centre


def test_iqr_cleaning_flags_the_outlier():
    import pandas as pd

    frame = pd.DataFrame({"rho_max": [1.0, 1.1, 0.9, 1.05, 0.95, 9.0], "rho_min": [-0.1] * 6})
    low, high = iqr_bounds(frame["rho_max"])
    assert low < 0.9 and 1.1 < high < 9
    reasons = iqr_outliers(frame)
    assert list(reasons != "") == [False] * 5 + [True]
    assert "rho_max" in reasons.iloc[5]


# -- every loose mirror density to a PNG ---------------------------------------------------------
@pytest.mark.parametrize("entry", MIRROR_DENSITIES, ids=[m.name for m in MIRROR_DENSITIES])
def test_every_mirror_density_file_becomes_an_image(mirror_dir, tmp_path, entry):
    loaded = entry.load(mirror_dir / "charge_density")
    aeccars = (loaded["aeccar0"], loaded["aeccar2"]) if "aeccar0" in loaded else None
    settings = EcdSettings(pixels=64, electrons="auto", rescale_counts=True, fourier=True)
    result = density_image(loaded.get("total"), aeccars=aeccars, settings=settings)
    assert result.method == ("aeccar" if aeccars else "chgcar-promolecule")
    assert result.image.shape == (64, 64) and result.image.min() == -1 and result.image.max() == 1
    paths = write_images(result, tmp_path / f"{entry.name}.png", settings)
    with Image.open(paths["image"]) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    assert paths["fourier"].exists()
