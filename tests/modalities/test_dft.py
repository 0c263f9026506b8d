"""GPAW charge densities (matmodal.modalities.ecd.dft): settings always; calculations with the dft extra."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matmodal.modalities.ecd import dft
from matmodal.modalities.ecd.dft import DftSettings, DftUnavailableError

# cheap enough for CI on 2 loaded cores (~5 s per calculation): PW 250 eV, 2 k-points per Å⁻¹
CHEAP = DftSettings(cutoff=250.0, kpoint_density=2.0, smearing=0.1)


@pytest.fixture(scope="module")
def si_structure(mirror_dir):
    """The 2-atom diamond Si cell of the pyrho test density in the mirror."""
    from matmodal.sources.charge_density import read_density

    return read_density(mirror_dir / "charge_density" / "Si_diamond_60cube.hdf5").structure


# -- no gpaw needed -------------------------------------------------------------------------------
def test_settings_defaults_are_mp_like_and_validated():
    s = DftSettings()
    assert (s.mode, s.cutoff, s.xc, s.spin, s.kpoint_density) == ("pw", 520.0, "PBE", "auto", 3.5)
    for bad in ({"mode": "fd"}, {"spin": "yes"}, {"cutoff": 0}, {"kpoint_density": -1}, {"smearing": -0.1},
                {"grid_spacing": 0}, {"ae_refinement": 3}):
        with pytest.raises(ValueError, match="DftSettings"):
            DftSettings(**bad)


def test_settings_key_changes_with_every_field():
    base = DftSettings().key()
    assert DftSettings().key() == base and len(base) == 16
    changed = {DftSettings(cutoff=400).key(), DftSettings(smearing=0.1).key(), DftSettings(mode="lcao").key(),
               DftSettings(spin="off").key(), DftSettings(kpoint_density=2).key()}
    assert base not in changed and len(changed) == 5


def test_kpoints_spin_and_estimate(si_structure):
    # primitive Si: |b| = 2π·sqrt(3)/(a_cubic/…) = 1.876 Å⁻¹ -> ceil(1.876 * 3.5) = 7
    assert dft.kpoint_grid(si_structure, 3.5) == (7, 7, 7)
    assert dft.kpoint_grid(si_structure, 2.0) == (4, 4, 4)
    assert dft.irreducible_kpoints(si_structure, (4, 4, 4)) == 8  # full O_h symmetry (spglib)
    assert not dft.spin_polarised(si_structure, DftSettings())
    assert dft.spin_polarised(si_structure, DftSettings(spin="on"))
    fe = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert dft.spin_polarised(fe, DftSettings()) and not dft.spin_polarised(fe, DftSettings(spin="off"))
    assert dft.initial_magmoms(fe) == [5.0, 5.0]  # MP MAGMOM default of Fe
    cheap, default = dft.estimate_seconds(si_structure, CHEAP), dft.estimate_seconds(si_structure)
    assert 0 < cheap < default


def test_missing_gpaw_names_the_install_command(monkeypatch, si_structure, tmp_path):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # import gpaw -> ImportError
    with pytest.raises(DftUnavailableError, match=r'pip install -e "\.\[dft\]"'):
        dft.compute_density(si_structure, CHEAP, cache_dir=tmp_path)
    assert not dft.available()


# -- with gpaw --------------------------------------------------------------------------------------
def test_si_density_electrons_grid_and_cache(si_structure, tmp_path):
    pytest.importorskip("gpaw")
    from matmodal.modalities.ecd import EcdSettings, density_image
    from matmodal.sources.charge_density import grid_symmetry

    density, info = dft.compute_density(si_structure, CHEAP, cache_dir=tmp_path)
    grid = density.data["total"]
    # CHGCAR convention: rho * V_cell, so the grid mean is the electrons in the cell (GPAW Si: 4 valence)
    assert info["valence_electrons"] == {"Si": 4.0}
    assert np.mean(grid) == pytest.approx(8.0, rel=0.01)
    assert grid.shape == tuple(info["grid_shape"]["pseudo"]) and len(set(grid.shape)) == 1
    assert np.allclose(density.structure.lattice.matrix, si_structure.lattice.matrix)
    assert np.allclose(density.structure.frac_coords, si_structure.frac_coords)
    # GPAW keeps only the symmetries whose fractional translations fit its real-space grid: 13 here
    assert info["kpoint_mesh"] == [4, 4, 4] and 8 <= info["kpoints_irreducible"] < 64
    assert info["cache"] == "miss" and info["gpaw"].startswith("26") and info["wall_s"] > 0
    assert grid_symmetry(grid, si_structure) > 0.99  # the density has the diamond structure's symmetry
    # the pipeline takes it unchanged (regrid to 60^3, differential with GPAW's = MP's 4 e for Si)
    image = density_image(density, settings=EcdSettings(pixels=32))
    assert image.image.shape == (32, 32) and image.method == "chgcar-promolecule"

    ae, ae_info = dft.compute_density(si_structure, CHEAP, all_electron=True, cache_dir=tmp_path)
    assert ae_info["cache"] == "hit"  # one calculation serves every density
    assert ae.dim == tuple(2 * n for n in grid.shape)
    assert np.mean(ae.data["total"]) == pytest.approx(28.0, rel=0.01)  # all electrons, Z = 14 per atom
    (core, valence), _ = dft.compute_aeccars(si_structure, CHEAP, cache_dir=tmp_path)
    assert np.mean(valence.data["total"]) == pytest.approx(8.0, rel=0.02)  # PAW reconstruction on 2x grid
    assert np.allclose(core.data["total"] + valence.data["total"], ae.data["total"])

    again, hit = dft.compute_density(si_structure, CHEAP, cache_dir=tmp_path)
    assert hit["cache"] == "hit" and np.array_equal(again.data["total"], grid)


def test_settings_change_is_a_cache_miss(si_structure, tmp_path):
    pytest.importorskip("gpaw")
    coarse = DftSettings(cutoff=200.0, kpoint_density=1.0, smearing=0.1)
    first = dft.compute_density(si_structure, coarse, cache_dir=tmp_path)[1]
    other = dft.compute_density(si_structure, replace(coarse, smearing=0.2), cache_dir=tmp_path)[1]
    assert first["cache"] == other["cache"] == "miss" and first["cache_dir"] != other["cache_dir"]
    assert dft.compute_density(si_structure, coarse, cache_dir=tmp_path)[1]["cache"] == "hit"
    # many structures (serial engine here; Ray tasks with matmodal.parallel.Engine(workers=N)), failures named
    tc = Structure(Lattice.cubic(3.9), ["Tc"], [[0, 0, 0]])
    many = dft.compute_many([si_structure, tc], coarse, cache_dir=tmp_path)
    assert many[0]["cache"] == "hit" and many[1] == {"error": "Tc: no GPAW PBE PAW setup for Tc (gpaw-data)"}


def test_predict_builds_ecd_images_from_computed_densities(si_structure, tmp_path, monkeypatch, capsys):
    """``matmodal predict`` with a run on ECD images: the density is computed (estimate on stderr),
    then cut as the dataset's recorded ECD settings say."""
    pytest.importorskip("gpaw")
    from PIL import Image

    from matmodal.modalities.ecd import EcdSettings
    from matmodal.predict import ID, ModalityRecipe, modality_frame
    from matmodal.schema import ECD_IMAGE

    monkeypatch.setattr(dft, "DftSettings", lambda: CHEAP)  # predict uses the defaults: keep CI cheap
    recorded = {**EcdSettings(pixels=24).describe(), "units": "e/Å^3"}
    recipe = ModalityRecipe.from_provenance({"seed": 0, "ecd": recorded}, "provenance.json")
    assert recipe.ecd == recorded
    tc = Structure(Lattice.cubic(3.9), ["Tc"], [[0, 0, 0]])  # gpaw-data 1.2.1 has no Tc setup
    items = [("si", si_structure), ("tc", tc)]
    frame, skipped = modality_frame(items, {"image": [ECD_IMAGE]}, None, recipe, tmp_path, tmp_path / "cache")
    err = capsys.readouterr().err
    assert "computing 2 charge densities with GPAW" in err and "si: Si, 2 sites, ~" in err
    assert list(frame[ID]) == ["si"]
    assert Image.open(frame.loc[0, ECD_IMAGE]).size == (24, 24)
    assert skipped == {"tc": "density: no GPAW PBE PAW setup for Tc (gpaw-data)"}


def test_command_line_writes_image_and_provenance(si_structure, tmp_path, capsys):
    pytest.importorskip("gpaw")
    import json

    cif = tmp_path / "Si.cif"
    si_structure.to(filename=str(cif))
    (tmp_path / "broken.cif").write_text("not a cif")
    code = dft.main([str(cif), str(tmp_path / "broken.cif"), "--out", str(tmp_path / "out"),
                     "--cutoff", "250", "--kpoint-density", "2"])
    out, err = capsys.readouterr()
    assert code == 1 and "broken.cif: not a readable structure" in err  # one bad file: exit 1, the rest done
    assert out.strip() == str((tmp_path / "out" / "Si.png").resolve())
    info = json.loads((tmp_path / "out" / "Si.json").read_text())
    assert info["settings"]["cutoff"] == 250 and info["setups"] == {"Si": "paw"} and info["cache"] == "hit"
