"""matmodal.predict on real mirror structures: every input layout, bad inputs skipped with the reason,
duplicate stems, modalities rebuilt from the dataset's provenance (no train/serve skew), model
folders refused unless their files match the hashes the run recorded."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from pymatgen.core import Structure

from matmodal import predict as p
from matmodal.models.automm import RESULT, RunConfig
from matmodal.sources.download import tree_sha256
from tests.fixtures import ALEX_FILES, real_entries, write_dump

MP = "materials_project"


def _elastic_columns(mirror: Path) -> dict:
    return json.loads((mirror / MP / "mp_elastic_1000.json").read_text())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Input files in every accepted layout, made by the test from real mirror entries, plus bad ones."""
    from tests.conftest import MIRROR

    if not (MIRROR / "alexandria").is_dir():
        pytest.skip(f"mirror not found at {MIRROR}")
    root = tmp_path_factory.mktemp("inputs")
    columns = _elastic_columns(MIRROR)
    index = list(columns["material_id"])[:3]
    extract = root / "mp_extract.json"  # the project's MP extract layout ("dict of columns")
    extract.write_text(json.dumps({k: {i: v[i] for i in index} for k, v in columns.items()}))
    first = Structure.from_str(columns["cif"][index[0]], fmt="cif")
    (root / "a").mkdir()
    (root / "b").mkdir()
    first.to(filename=str(root / "a" / "x.cif"))
    first.to(filename=str(root / "b" / "x.cif"))  # same stem, other folder
    first.to(filename=str(root / "POSCAR"), fmt="poscar")
    binary = json.loads(gzip.decompress((MIRROR / MP / "mp_binary_elasticity_2025_3884.json.gz").read_bytes()))[:2]
    (root / "binary.json").write_text(json.dumps(binary))  # list of {mp_id, structure dict, ...}
    devset = json.loads((MIRROR / MP / "mp_devset_200.json").read_text())[:1]
    (root / "devset.json").write_text(json.dumps(devset))  # lattice_matrix / species / frac_coords
    dump = write_dump(root / "alex.json.bz2", real_entries(MIRROR, ALEX_FILES[1])[:2])
    (root / "structure.json").write_text(json.dumps(first.as_dict()))  # a bare pymatgen Structure dict
    bad_cif = root / "bad.cif"
    bad_cif.write_text("data_broken\n_cell_length_a oops\n")
    mixed = root / "mixed.json"  # one good entry, one without a structure, one too dense
    squeezed = first.copy()
    squeezed.scale_lattice(first.volume * 0.01)
    mixed.write_text(json.dumps([{"material_id": "good", "structure": first.as_dict()},
                                 {"material_id": "nothing", "energy": 1.0},
                                 {"material_id": "squeezed", "structure": squeezed.as_dict()}]))
    files = [root / "a" / "x.cif", root / "b" / "x.cif", root / "POSCAR", extract, root / "binary.json",
             root / "devset.json", dump, root / "structure.json", bad_cif, mixed, root / "missing.cif"]
    return root, files


def test_every_layout_is_read_and_bad_inputs_are_skipped_with_the_reason(inputs):
    from tests.conftest import MIRROR

    root, files = inputs
    found, skipped = p.read_structures(files)
    names = [s.name for s in found]
    assert names[:3] == ["x", "x", "POSCAR"]
    assert names[3:6] == ["mp-1002165", "mp-10025", "mp-10030"]
    assert names[6:8] == [d["mp_id"] for d in json.loads((root / "binary.json").read_text())]
    assert names[8] == "devset"  # devset records carry no id: the file stem names it
    assert names[9:11] == [e["data"]["mat_id"] for e in real_entries(MIRROR, ALEX_FILES[1])[:2]]
    assert names[11:] == ["structure", "good"]
    assert len({s.key for s in found}) == len(found)  # duplicate stems stay two structures
    by_input = {s.input: s.reason for s in skipped}
    assert set(by_input) == {str(root / "bad.cif"), f"{root / 'mixed.json'}#1", f"{root / 'mixed.json'}#2",
                             str(root / "missing.cif")}
    assert by_input[str(root / "bad.cif")] == "Invalid CIF file with no structures!"
    assert by_input[f"{root / 'mixed.json'}#1"].startswith("no structure: expected 'structure'")
    assert "closer than" in by_input[f"{root / 'mixed.json'}#2"] or "volume per atom" in by_input[f"{root / 'mixed.json'}#2"]
    assert "No such file" in by_input[str(root / "missing.cif")]


def test_no_readable_structure_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("not a cif")
    with pytest.raises(ValueError, match=r"no readable structure .*bad\.cif"):
        p.predict(tmp_path, [bad])


def test_render_settings_are_read_back_exactly_and_only_as_literals():
    from matmodal.modalities.image import RenderSettings

    chosen = RenderSettings(size=32, bonds="crystalnn", tilt_deg=(5.0, -2.5), polyhedra=True)
    assert p.render_settings(repr(chosen)) == chosen
    from dataclasses import asdict

    assert p.render_settings(json.loads(json.dumps(asdict(chosen)))) == chosen  # a dict (lists -> tuples)
    with pytest.raises(ValueError, match="cannot read the recorded image settings"):
        p.render_settings("RenderSettings(size=__import__('os').getpid())")
    with pytest.raises(ValueError, match="not a RenderSettings"):
        p.render_settings("print(1)")


def _model_folder(tmp_path: Path) -> tuple[Path, dict]:
    run = tmp_path / "run"
    (run / "model" / "hf_text").mkdir(parents=True)
    (run / "model" / "assets.json").write_text("{}")
    (run / "model" / "hf_text" / "config.json").write_text('{"a": 1}')
    result = {"model_files": tree_sha256(run / "model")}
    return run, result


def test_a_model_folder_must_match_the_hashes_its_run_recorded(tmp_path):
    run, result = _model_folder(tmp_path)
    p.verify_model_files(run, result)
    (run / "model" / "hf_text" / "config.json").write_text('{"a": 2}')
    with pytest.raises(p.ModelTrustError, match=r"changed: hf_text/config\.json"):
        p.verify_model_files(run, result)
    (run / "model" / "hf_text" / "config.json").write_text('{"a": 1}')
    (run / "model" / "evil.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(p.ModelTrustError, match=r"not recorded: evil\.pkl"):
        p.verify_model_files(run, result)


def test_a_run_without_recorded_hashes_is_refused_unless_trusted(tmp_path):
    run, _ = _model_folder(tmp_path)
    with pytest.raises(p.ModelTrustError, match=r"records no model file hashes.*--trust-unverified"):
        p.verify_model_files(run, {})
    p.verify_model_files(run, {}, trust_unverified=True)


def test_predictions_state_the_models_provenance():
    result = {"run_id": "automm__k_vrh__image+text__seed0", "n_train": 31,
              "config": {"model": "automm", "epochs": 1, "backbone_profile": "offline", "profile": "quick",
                         "dataset": "mp_elastic", "seed": 0},
              "pretrained": {"text": True, "image": False}, "provenance": {"code_version": "0.1.0+abc"}}
    assert p.model_provenance(result) == {
        "run_id": "automm__k_vrh__image+text__seed0", "model": "automm", "epochs": 1, "iterations": None,
        "pretrained": "image=False,text=True", "backbone_profile": "offline", "profile": "quick",
        "dataset": "mp_elastic", "seed": 0, "n_train": 31, "features": "all built", "code_version": "0.1.0+abc"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small real dataset (4 MP elastic materials) rendered at 32 px with Magpie embeddings, seed 3."""
    from matmodal.config import Settings
    from matmodal.datasets.build import BuildOptions
    from matmodal.datasets.elastic import build_elastic
    from matmodal.modalities.image import RenderSettings
    from tests.conftest import MIRROR

    if not (MIRROR / "alexandria").is_dir():
        pytest.skip(f"mirror not found at {MIRROR}")
    root = tmp_path_factory.mktemp("built")
    settings = Settings(mirror_dir=MIRROR, output_dir=root / "out", cache_dir=root / "cache", seed=3)
    ids = sorted(_elastic_columns(MIRROR)["material_id"].values())[:4]
    options = BuildOptions(robocrys=False, image=RenderSettings(size=32, show_cell=False), featurisers=("magpie",))
    return build_elastic(ids, options=options, settings=settings, name="tiny"), settings


def _structures(dataset) -> list[tuple[str, Structure]]:
    from matmodal.sources.materials_project import MaterialsProject

    frame = MaterialsProject(dataset[1]).elasticity().set_index("material_id")
    return [(i, frame.loc[i, "structure"]) for i in dataset[0].table["material_id"]]


def test_modalities_are_rebuilt_as_the_dataset_built_them(built, tmp_path):
    dataset, settings = built
    config = RunConfig(dataset="tiny", target="k_vrh", modalities=("tabular", "image", "text"), image_size=64)
    recipe = p.dataset_recipe(tmp_path, {}, config, settings, dataset_dir=dataset.folder)
    assert recipe.seed == 3 and recipe.featuriser_seed("magpie") == 3
    assert recipe.render.size == 32 and recipe.render.show_cell is False  # not RenderSettings(size=64)
    magpie = [c for c in dataset.table.columns if c.startswith("magpie_")]
    columns = {"tabular": magpie, "image": ["image_path"], "text": ["text_composition"]}
    items = _structures(built)
    frame, skipped = p.modality_frame(items, columns, config, recipe, tmp_path / "work", settings.cache_dir)
    assert skipped == {}
    table = dataset.table.set_index("material_id")
    assert frame.set_index("material_id")[magpie].equals(table.loc[frame.material_id, magpie])
    assert list(frame.text_composition) == list(table.loc[frame.material_id, "text_composition"])
    for ours, theirs in zip(frame.image_path, table.loc[frame.material_id, "image_path"], strict=True):
        assert Image.open(ours).size == (32, 32)
        assert Image.open(ours).tobytes() == Image.open(theirs).tobytes()  # pixel for pixel


def test_a_featuriser_whose_settings_changed_is_refused(built, tmp_path):
    dataset, settings = built
    info = json.loads((dataset.folder / p.PROVENANCE).read_text())
    info["modalities"]["featuriser:magpie"]["settings"]["preset"] = "deml"
    recipe = p.ModalityRecipe.from_provenance(info, "tampered provenance.json")
    config = RunConfig(dataset="tiny", target="k_vrh", modalities=("tabular",))
    columns = {"tabular": [c for c in dataset.table.columns if c.startswith("magpie_")]}
    with pytest.raises(ValueError, match="featuriser 'magpie' settings differ"):
        p.modality_frame(_structures(built)[:1], columns, config, recipe, tmp_path, settings.cache_dir)


def test_a_run_whose_dataset_provenance_is_missing_names_where_it_looked(tmp_path):
    from matmodal.config import Settings

    run = tmp_path / "out" / "runs" / "quick" / "gone" / "automm__k_vrh__text__seed0"
    run.mkdir(parents=True)
    config = RunConfig(dataset="gone", target="k_vrh", modalities=("text",))
    settings = Settings(output_dir=tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match=r"no provenance\.json of dataset 'gone'.*datasets/quick/gone.*--dataset"):
        p.dataset_recipe(run, {}, config, settings)


@pytest.mark.slow
@pytest.mark.ml
def test_cli_predict_end_to_end_csv_only_on_stdout(built, inputs, tmp_path, capfd):
    """Train one tiny AutoMM run on the real dataset, then `matmodal predict` on every input layout."""
    from matmodal import cli
    from matmodal.runs import Grid, run_grid

    dataset, settings = built
    grid = Grid("tiny", ["k_vrh"], ["tabular+image+text"], seeds=[0], baselines=(),
                settings={"epochs": 1, "max_text_len": 16, "batch_size": 4, "image_size": 32})
    runs = settings.layout.runs_root
    results = run_grid(grid, dataset.table, runs, keep_models="all", verbosity=0, torch_threads=1)
    assert (results.status == "ok").all(), results
    run = next(runs.glob("tiny/automm__*"))
    recorded = json.loads((run / RESULT).read_text())["model_files"]
    capfd.readouterr()

    _, files = inputs
    argv = ["--output-dir", str(settings.output_dir), "--cache-dir", str(settings.cache_dir),
            "predict", "--model", str(run), "--input", *map(str, files)]
    assert cli.main(argv) == 0
    out, err = capfd.readouterr()
    frame = pd.read_csv(pd.io.common.StringIO(out))  # stdout is exactly one CSV
    assert len(frame) == 13 and set(frame.epochs) == {1} and (frame.run_id == run.name).all()
    assert frame.pretrained.iloc[0] == "image=True,tabular=False,text=True"
    assert frame[frame.input.str.endswith("x.cif")].prediction.nunique() == 1  # same structure twice
    assert "matmodal: skipped" in err and "bad.cif" in err
    assert tree_sha256(run / "model") == recorded  # loading did not change the folder

    shutil.copy(run / "model" / "assets.json", run / "model" / "extra.json")
    assert cli.main(argv) == 2
    assert "refusing to unpickle" in capfd.readouterr().err


def test_cli_predict_with_a_saved_gbm_on_a_real_cif(mirror_dir, tmp_path, capfd):
    """Train the GBM baseline on 48 real MP elastic materials (Magpie), then `matmodal predict` on
    a real CIF of another material: one number in GPa, with the model's provenance columns."""
    from matmodal import cli
    from matmodal.runs import Grid, run_grid
    from tests.grid_fixtures import tiny_elastic

    dataset = tiny_elastic(mirror_dir)
    grid = Grid(dataset.name, ["k_vrh"], combinations=[], seeds=[2], baselines=("gbm",),
                settings={"features": ("magpie",)})
    results = run_grid(grid, dataset.table, tmp_path / "runs", verbosity=0)
    assert list(results.status) == ["ok"], results.reason.tolist()
    run = tmp_path / "runs" / dataset.name / "gbm-magpie__k_vrh__tabular__seed2"
    recorded = json.loads((run / RESULT).read_text())
    assert set(recorded["model_files"]) == {"gbm.skops", "gbm.json"}

    columns = _elastic_columns(mirror_dir)
    unseen = next(k for k, i in columns["material_id"].items() if i not in set(dataset.table["material_id"]))
    cif = tmp_path / f"{columns['material_id'][unseen]}.cif"
    cif.write_text(columns["cif"][unseen])
    capfd.readouterr()
    assert cli.main(["predict", "--model", str(run), "--dataset", str(dataset.folder), "--input", str(cif)]) == 0
    frame = pd.read_csv(pd.io.common.StringIO(capfd.readouterr().out))
    assert len(frame) == 1 and frame.unit[0] == "GPa" and 0 < frame.prediction[0] < 1000
    row = frame.iloc[0]
    assert (row.model, row.features, row.n_train, row.seed, row.pretrained) == ("gbm", "magpie", 41, 2, "none")
    assert pd.isna(row.epochs) and row.iterations == recorded["hyperparameters"]["n_iter"]  # no epochs: boosting rounds
    assert row.run_id == run.name and row.dataset == dataset.name

    (run / "model" / "gbm.json").write_text("{}")  # a tampered card is refused before anything loads
    assert cli.main(["predict", "--model", str(run), "--dataset", str(dataset.folder), "--input", str(cif)]) == 2
    assert "changed: gbm.json" in capfd.readouterr().err


def test_predict_with_cached_tower_features_uses_the_saved_projection(built, inputs, tmp_path):
    """A run of recipe ``towers: cached`` (frozen MiniLM + EfficientNet-Lite0 vectors, PCA fitted on
    its training rows, saved in model/) predicts a real CIF through the same vectors."""
    import numpy as np

    from matmodal.models.automm import MODEL, PROJECTION
    from matmodal.predict import predict
    from matmodal.runs import Grid, run_grid

    dataset, settings = built
    extra = (("matmodal.tower_pca", 2), ("matmodal.towers", "cached"))
    grid = Grid("tiny", ["k_vrh"], ["tabular+image+text"], seeds=[0], baselines=(),
                settings={"epochs": 1, "batch_size": 4, "image_size": 32, "extra": extra, "recipe_name": "cached"})
    runs = settings.layout.runs_root
    results = run_grid(grid, dataset.table, runs, keep_models="all", verbosity=0, torch_threads=1)
    assert (results.status == "ok").all(), results
    run = next(runs.glob("tiny/automm-cached__*"))
    assert (run / MODEL / PROJECTION).exists()
    _, files = inputs
    out = predict(run, [files[0]], settings=settings, work_dir=tmp_path)
    assert len(out.frame) == 1 and np.isfinite(out.frame.prediction).all()
