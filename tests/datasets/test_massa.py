"""massa2024 dataset: FCC rule, text levels, and the builder on the mirror and through the API
code path (an in-test fake MPRester serving the mirror's real data)."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pymatgen.core import Lattice, Structure

from matmodal.config import Settings
from matmodal.datasets.massa import FCC_SPACEGROUPS, MassaOptions, build_massa, is_fcc
from matmodal.modalities.ecd import EcdSettings
from matmodal.modalities.robocrys_levels import (
    TextLevel,
    bond_sentences,
    levels_from_description,
    text_levels,
)
from matmodal.sources import materials_project
from matmodal.sources.charge_density import MultimatGrids, with_structure

IDS = ["mp-864620", "mp-1002165", "mp-12863", "mp-4131", "mp-1"]
DESCRIPTION = (  # robocrys' real output for mp-864620 (CaSmCd2)
    "CaSmCd2 is Heusler structured and crystallizes in the cubic Fm-3m space group. Ca(1) is bonded in a "
    "body-centered cubic geometry to eight equivalent Cd(1) atoms. All Ca(1)-Cd(1) bond lengths are 3.31 Å. "
    "Sm(1) is bonded in a body-centered cubic geometry to eight equivalent Cd(1) atoms. All Sm(1)-Cd(1) bond "
    "lengths are 3.31 Å. Cd(1) is bonded in a body-centered cubic geometry to four equivalent Ca(1) and four "
    "equivalent Sm(1) atoms."
)


def settings_for(tmp_path, mirror=None) -> Settings:
    return Settings(mirror_dir=mirror, cache_dir=tmp_path / "cache", output_dir=tmp_path / "out")


def test_fcc_rule():
    assert FCC_SPACEGROUPS == (196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228)
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert is_fcc(rocksalt) and is_fcc(rocksalt.get_primitive_structure())
    zincblende = Structure.from_spacegroup("F-43m", Lattice.cubic(5.4), ["Ga", "As"], [[0, 0, 0], [0.25] * 3])
    assert is_fcc(zincblende)
    bcc = Structure(Lattice.cubic(3.5), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert not is_fcc(bcc)


def test_text_levels_from_a_description():
    levels = levels_from_description("CaSmCd2", DESCRIPTION)
    assert levels[TextLevel.formula] == "CaSmCd2"
    assert levels[TextLevel.keywords] == (
        "CaSmCd2. All Ca(1)-Cd(1) bond lengths are 3.31 Å. All Sm(1)-Cd(1) bond lengths are 3.31 Å.")
    assert levels[TextLevel.all] == DESCRIPTION
    assert bond_sentences("There are a spread of Na-Cl bond distances ranging from 2.8-2.9 Å. Na is blue.") == [
        "There are a spread of Na-Cl bond distances ranging from 2.8-2.9 Å."]


def test_text_levels_fall_back_to_the_formula(monkeypatch):
    from matmodal.modalities import robocrys_levels

    monkeypatch.setattr(robocrys_levels, "robocrys_description", lambda s, cache_dir=None: ("Na Cl", "robocrys failed"))
    structure = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    levels, failure = text_levels(structure)
    assert failure == "robocrys failed" and set(levels.values()) == {"NaCl"}


def _options(fcc_only=True) -> MassaOptions:
    return MassaOptions(ecd=EcdSettings(pixels=48), fcc_only=fcc_only, robocrys=False, iqr_k=None)


def test_build_from_the_mirror(mirror_dir, tmp_path):
    dataset = build_massa(IDS, options=_options(), settings=settings_for(tmp_path, mirror_dir))
    table, manifest = dataset.table, dataset.manifest
    assert sorted(table["material_id"]) == ["mp-1002165", "mp-864620"]  # GeC, CaSmCd2: Fm-3m
    assert {"e_form", "e_fermi", "k_vrh", "text_formula", "text_keywords", "text_all", "ecd_image"} <= set(table)
    assert table.set_index("material_id").loc["mp-864620", "text_formula"] == "CaSmCd2"
    for path in table["ecd_image"]:
        with Image.open(path) as image:
            assert image.size == (48, 48)
    dropped = manifest[manifest.severity == "dropped"].set_index("record_id")
    assert dropped.loc["mp-12863", "stage"] == "pairing" and dropped.loc["mp-4131", "stage"] == "lattice"
    assert dropped.loc["mp-1", "stage"] == "lattice"  # Cs (mp2018 structure, verified): bcc
    on_disk = pd.read_parquet(dataset.folder / "table.parquet")
    assert list(on_disk["material_id"]) == list(table["material_id"])


def test_any_lattice_images_every_mirror_grid_with_a_structure(mirror_dir, tmp_path):
    dataset = build_massa(IDS, options=_options(fcc_only=False), settings=settings_for(tmp_path, mirror_dir))
    assert sorted(dataset.table["material_id"]) == ["mp-1", "mp-1002165", "mp-4131", "mp-864620"]
    dropped = dataset.manifest[dataset.manifest.severity == "dropped"].set_index("record_id")
    assert dropped.loc["mp-12863", "stage"] == "pairing"
    assert "lacks its symmetry" in dropped.loc["mp-12863", "reason"]  # the CIFs' setting does not fit the grid


class FakeRester:
    """Test double built here: answers the mp-api calls the sources make, from the mirror's real
    structures (mp_elastic_1000.json) and 32^3 grids; targets are made-up numbers."""

    def __init__(self, mirror_dir):
        settings = Settings(mirror_dir=mirror_dir)
        self.mp = materials_project.MaterialsProject(settings)
        self.grids = MultimatGrids(mirror_dir / "charge_density" / "multimat_mp_total_density_32.npz")
        ids = ["mp-864620", "mp-1002165"]
        self.docs = [{"material_id": m, "formula_pretty": self.mp.structure(m).composition.reduced_formula,
                      "structure": self.mp.structure(m), "formation_energy_per_atom": -0.1 * i, "efermi": 1.0 + i,
                      "band_gap": 0.0, "is_stable": True, "symmetry": {"number": 225}} for i, m in enumerate(ids)]
        self.materials = SimpleNamespace(summary=SimpleNamespace(search=self._summary),
                                         elasticity=SimpleNamespace(search=self._elasticity))
        self.calls: list[str] = []

    def _summary(self, fields=None, material_ids=None, spacegroup_number=None, is_stable=None):
        return [d for d in self.docs if spacegroup_number in (None, d["symmetry"]["number"])
                and (material_ids is None or d["material_id"] in material_ids)]

    def _elasticity(self, fields=None, material_ids=None):
        return [{"material_id": d["material_id"], "structure": d["structure"], "bulk_modulus": {"vrh": 50.0}}
                for d in self.docs if material_ids is None or d["material_id"] in material_ids]

    def get_charge_density_from_material_id(self, material_id):
        self.calls.append(material_id)
        return with_structure(self.grids.grid(material_id), self.mp.structure(material_id))

    def get_task_ids_associated_with_material_id(self, material_id, calc_types=None):
        return []  # no AECCARs


def test_api_code_path_gives_the_mirror_images(mirror_dir, tmp_path, monkeypatch):
    fake = FakeRester(mirror_dir)

    @contextmanager
    def rester():
        yield fake

    monkeypatch.setattr(materials_project, "mp_rester", rester)
    online = build_massa(options=_options(), settings=settings_for(tmp_path / "api"))
    assert sorted(online.table["material_id"]) == ["mp-1002165", "mp-864620"]
    assert online.table.set_index("material_id")["e_fermi"].to_dict() == {"mp-864620": 1.0, "mp-1002165": 2.0}
    cached = list((tmp_path / "api" / "cache" / "charge_density").glob("*.CHGCAR.hdf5"))
    assert len(cached) == 2  # densities cached as hdf5
    offline = build_massa(["mp-864620", "mp-1002165"], options=_options(), settings=settings_for(tmp_path, mirror_dir))
    for column in ("rho_min", "rho_max", "grid_electrons"):
        assert np.allclose(online.table.sort_values("material_id")[column],
                           offline.table.sort_values("material_id")[column])
    calls = len(fake.calls)
    build_massa(options=_options(), settings=settings_for(tmp_path / "api"))
    assert len(fake.calls) == calls  # second build: images and densities from the caches


@pytest.mark.slow
def test_robocrys_levels_on_a_real_structure(mirror_dir, tmp_path):
    structure = materials_project.MaterialsProject(Settings(mirror_dir=mirror_dir)).structure("mp-864620")
    levels, failure = text_levels(structure, cache_dir=tmp_path)
    assert failure is None and levels[TextLevel.keywords].startswith("CaSmCd2. All Ca(1)-Cd(1) bond lengths")


def test_unstable_tensor_gives_no_k_vrh_from_any_source(mirror_dir, tmp_path):
    # mp-1029446 (CaGeN2): mp_elastic_1000's tensor is not positive definite; the MultiMat side
    # column still lists a K_VRH for it, which must not enter the table either
    dataset = build_massa(["mp-1029446"], options=_options(fcc_only=False), settings=settings_for(tmp_path, mirror_dir))
    row = dataset.table.set_index("material_id").loc["mp-1029446"]
    assert np.isnan(row["k_vrh"]) and row["k_vrh_release"] is None
    quality = dataset.manifest[dataset.manifest.stage == "quality"]
    assert quality.record_id.tolist() == ["mp-1029446"] and "not positive definite" in quality.reason.iloc[0]
