"""An ECD model that `matmodal predict` loads (issue 13): trained on real MP densities of the
mirror (massa_mp_density_any), saved without pickle, and used on a CIF that has no MP density
(the density computed with GPAW when the dft extra is installed)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from matmodal import cli
from matmodal.config import Settings
from matmodal.modalities.ecd import EcdSettings
from matmodal.modalities.ecd.dft import DftSettings
from matmodal.models.stacked import ImageSpec, load_regressor
from matmodal.models.torch_common import StageConfig, TrainConfig, load_images
from matmodal.models.torch_common import predict as torch_predict
from matmodal.protocols.saved import SavedModelPlan, model_name, train_and_save

CHEAP = DftSettings(cutoff=250.0, kpoint_density=2.0, smearing=0.1)  # ~5 s for 2-atom Si here
PLAN = SavedModelPlan(ImageSpec("tiny_cnn", image_size=32, width=8),
                      TrainConfig(stages=(StageConfig("head", 4, 1e-3), StageConfig("full", 2, 1e-3)), batch_size=8),
                      seed=0, n_folds=3, dft=CHEAP)


@pytest.fixture(scope="module")
def trained(mirror_dir, tmp_path_factory):
    """A tiny ECD-image model on the first 30 real MP densities of the mirror (any lattice), saved."""
    from matmodal.datasets.massa import MassaOptions, build_massa_density

    root = tmp_path_factory.mktemp("ecd_model")
    settings = Settings(mirror_dir=mirror_dir, cache_dir=root / "cache", output_dir=root / "out")
    options = MassaOptions(ecd=EcdSettings(pixels=32), robocrys=False, limit=30)
    dataset = build_massa_density(options=options, settings=settings, fcc_only=False)
    folder = root / "model"
    config = train_and_save(dataset.table, "e_form", folder, PLAN, dataset=dataset.name,
                            dataset_provenance=dataset.provenance, log=lambda m: None)
    return dataset, folder, config, settings


def test_the_saved_model_records_what_predict_needs_and_reproduces_its_test_score(trained):
    dataset, folder, config, _ = trained
    rows = int(dataset.table["e_form"].notna().sum())
    assert config["n_train"] + config["n_val"] + config["n_test"] == rows
    assert (config["target"], config["unit"], config["dataset"]) == ("e_form", "eV/atom", "massa_mp_density_any")
    assert config["ecd"] == dataset.provenance["ecd"] and config["dft"] == CHEAP.describe()
    assert config["provenance"]["image_pretrained"] is False and config["seed"] == 0
    assert model_name("e_form", PLAN) == "ecd-image-e_form-tiny_cnn-s0"
    # reloaded from safetensors, the model scores the recorded test rows exactly as recorded
    model, _ = load_regressor(folder)
    table = dataset.table.dropna(subset=["e_form"]).sort_values("material_id").reset_index(drop=True)
    from matmodal.splits import train_test_split_ids

    _, test_ids = train_test_split_ids(table["material_id"].tolist(), 0.15, 0)
    test = table[table["material_id"].isin(test_ids)]
    image = config["inputs"]["image"]
    pixels = load_images(test["ecd_image"].tolist(), image["size"], image["mean"], image["std"], image["resample"])
    pred = torch_predict(model, {"pixel_values": pixels}, list(range(len(test))))
    pred = pred * config["standardiser"]["std"] + config["standardiser"]["mean"]
    mae = float(np.mean(np.abs(pred - test["e_form"].to_numpy())))
    assert len(test) == config["n_test"] and mae == pytest.approx(config["metrics"]["test"]["mae"], rel=1e-5)


def test_predict_without_gpaw_names_the_install_command(trained, tmp_path, monkeypatch, capsys):
    from pymatgen.core import Lattice, Structure

    _, folder, _, _ = trained
    cif = tmp_path / "NaCl.cif"
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(cif))
    monkeypatch.setitem(sys.modules, "gpaw", None)  # import gpaw -> ImportError
    code = cli.main(["--cache-dir", str(tmp_path / "cache"), "predict", "--model", str(folder), "--input", str(cif)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "predicts from charge densities computed here" in err and 'pip install -e ".[dft]"' in err


def test_cli_predicts_a_cif_without_mp_density_from_a_gpaw_density(trained, mirror_dir, tmp_path, capfd):
    """End to end: the mirror's 2-atom Si cell (the pyrho test file, no MultiMat density) as a CIF,
    plus a Tc cell (no GPAW setup): estimate on stderr first, CSV alone on stdout, Tc skipped."""
    pytest.importorskip("gpaw")
    from pymatgen.core import Lattice, Structure

    from matmodal.sources.charge_density import read_density

    _, folder, config, _ = trained
    si = read_density(mirror_dir / "charge_density" / "Si_diamond_60cube.hdf5").structure
    si.to(filename=str(tmp_path / "Si.cif"))
    Structure(Lattice.cubic(3.9), ["Tc"], [[0, 0, 0]]).to(filename=str(tmp_path / "Tc.cif"))
    args = ["--cache-dir", str(tmp_path / "cache"), "predict", "--model", str(folder),
            "--input", str(tmp_path / "Si.cif"), str(tmp_path / "Tc.cif")]
    assert cli.main(args) == 0
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("material_id,input,target,prediction,unit,density,")
    import io

    import pandas as pd

    row = pd.read_csv(io.StringIO(out)).iloc[0]
    assert (row["material_id"], row["target"], row["unit"]) == ("Si", "e_form", "eV/atom")
    assert np.isfinite(row["prediction"]) and row["density"] == "GPAW PBE pw 250 eV, k 2/Å (computed)"
    assert row["n_train"] == config["n_train"] and row["pretrained"] == "image=False"
    assert row["dataset"] == "massa_mp_density_any" and row["weights_sha256"] == config["weights_sha256"][:16]
    assert err.index("computing 2 charge densities with GPAW") < err.index("Si: done in")
    assert "skipped" in err and "no GPAW PBE PAW setup for Tc" in err
    # the same structure again: the density comes from the cache, the prediction is identical
    assert cli.main(args) == 0
    again, err2 = capfd.readouterr()
    assert again == out and "(hit)" in err2
    # changed weights are refused before anything is computed
    weights = folder / "weights.safetensors"
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        assert cli.main(args) == 2
        assert "refusing weights that are not the ones saved" in capfd.readouterr().err
    finally:
        weights.write_bytes(original)
    assert json.loads((folder / "model.json").read_text())["weights_sha256"] == config["weights_sha256"]


def test_on_grid_keeps_the_electron_count_of_a_real_density(mirror_dir):
    from matmodal.modalities.ecd.dft import on_grid
    from matmodal.sources.charge_density import ChargeDensitySource

    bate = ChargeDensitySource(Settings(mirror_dir=mirror_dir)).chgcar("mp-1000")  # MultiMat 32³, BaTe
    coarse = on_grid(bate, (24, 24, 24))
    assert coarse.dim == (24, 24, 24) and on_grid(bate, None) is bate and on_grid(bate, (32, 32, 32)) is bate
    assert np.mean(coarse.data["total"]) == pytest.approx(np.mean(bate.data["total"]), rel=1e-9)
