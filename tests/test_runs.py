"""The grid runner on real data: a tiny end-to-end AutoMM grid, resume, failures, determinism,
and ``predict`` on a new structure file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matmodal.models.automm import RESULT
from matmodal.runs import Grid, results_frame, run_dir, run_grid, timing_table
from tests.grid_fixtures import tiny_elastic

FAST = {"epochs": 1, "max_text_len": 16, "batch_size": 16, "tabular_model": "numerical_mlp"}


def test_grid_enumerates_baselines_then_every_combination_target_seed():
    configs = Grid("d", ["k_vrh", "g_vrh"], seeds=[0, 1, 2], settings={"epochs": 3}).configs()
    assert len(configs) == 2 * 3 * (2 + 7)
    assert [c.model for c in configs[:10]] == ["mean", "gbm", *["automm"] * 7, "mean"]
    assert [c.seed for c in configs[:18]] == [0] * 18  # seed by seed: a partial grid covers every cell
    assert {c.epochs for c in configs if c.model == "automm"} == {3}
    assert len({c.run_id for c in configs}) == len(configs)


@pytest.fixture(scope="module")
def grid_root(mirror_dir, tmp_path_factory):
    """One real tiny grid (48 MP materials, 1 epoch): tabular, tabular + text, and image (no images)."""
    root = tmp_path_factory.mktemp("runs")
    dataset = tiny_elastic(mirror_dir)
    grid = Grid(dataset.name, ["k_vrh"], ["tabular", "tabular+text", "image"], seeds=[0], settings=FAST)
    results = run_grid(grid, dataset.table, root, keep_models="all", verbosity=0, torch_threads=1)
    return root, grid, dataset, results


def test_tiny_grid_stores_metrics_predictions_and_backbones(grid_root):
    root, grid, _, results = grid_root
    ok = results.set_index("combination")
    assert set(ok.index) == {"mean", "gbm", "tabular", "tabular+text", "image"}
    assert (ok.drop(index="image")["status"] == "ok").all()
    mean_run = next(c for c in grid.configs() if c.model == "mean")
    assert pd.read_parquet(run_dir(root, mean_run) / "predictions.parquet")["y_pred"].nunique() == 1
    assert ok.loc["tabular+text", "pretrained"] == "tabular=False; text=True"
    assert "all-MiniLM-L6-v2" in ok.loc["tabular+text", "backbones"]
    config = next(c for c in grid.configs() if c.combination == "tabular+text")
    result = json.loads((run_dir(root, config) / RESULT).read_text())
    predictions = pd.read_parquet(run_dir(root, config) / "predictions.parquet")
    assert len(predictions) == result["n_test"] == 7 and result["n_train"] == 41
    assert {r["modality"] for r in result["attribution"]} == {"tabular", "text"}
    assert timing_table(results).loc["all runs", "runs"] == 4


def test_failures_are_recorded_with_the_reason(grid_root):
    results = grid_root[3].set_index("combination")
    assert results.loc["image", "status"] == "failed"
    assert "modality 'image' has no data" in results.loc["image", "reason"]


def test_rerun_skips_finished_runs_and_retries_failed_ones(grid_root):
    root, grid, dataset, _ = grid_root
    stamps = {c.run_id: (run_dir(root, c) / RESULT).stat().st_mtime_ns for c in grid.configs()}
    again = run_grid(grid, dataset.table, root, verbosity=0)
    after = {c.run_id: (run_dir(root, c) / RESULT).stat().st_mtime_ns for c in grid.configs()}
    changed = {k for k in stamps if stamps[k] != after[k]}
    assert changed == {"automm__k_vrh__image__seed0"}
    assert len(again) == 5 and len(results_frame(root)) == 5


def test_same_seed_gives_identical_results_on_cpu(grid_root, tmp_path):
    root, _, dataset, first = grid_root
    grid = Grid(dataset.name, ["k_vrh"], ["tabular"], seeds=[0], settings=FAST)
    second = run_grid(grid, dataset.table, tmp_path, keep_models="none", verbosity=0, torch_threads=1)
    a = first.set_index("combination").loc[["gbm", "tabular"], ["mae", "rmse", "r2"]]
    b = second.set_index("combination").loc[["gbm", "tabular"], ["mae", "rmse", "r2"]]
    assert a.equals(b)
    config = grid.configs()[-1]
    pa = pd.read_parquet(run_dir(root, config) / "predictions.parquet")
    pb = pd.read_parquet(run_dir(tmp_path, config) / "predictions.parquet")
    assert np.array_equal(pa["y_pred"].to_numpy(), pb["y_pred"].to_numpy())


def test_predict_builds_the_same_modalities_for_a_new_cif(grid_root, mirror_dir, tmp_path):
    from matmodal.config import Settings
    from matmodal.predict import predict
    from matmodal.sources.materials_project import MaterialsProject

    root, grid, dataset, _ = grid_root
    config = next(c for c in grid.configs() if c.combination == "tabular+text")
    stored = pd.read_parquet(run_dir(root, config) / "predictions.parquet").iloc[0]
    structure = MaterialsProject(Settings(mirror_dir=mirror_dir)).structure(stored["material_id"])
    path = tmp_path / f"{stored['material_id']}.cif"
    structure.to(filename=str(path))
    out = predict(run_dir(root, config), [path], dataset_dir=dataset.folder, work_dir=tmp_path / "work").frame
    assert {"material_id", "input", "target", "prediction", "unit", "run_id"} <= set(out.columns)
    assert out.loc[0, "target"] == "k_vrh" and out.loc[0, "unit"] == "GPa"
    assert out.loc[0, "prediction"] == pytest.approx(stored["y_pred"], rel=1e-4)


def test_predict_reads_cif_poscar_and_alexandria_json(mirror_dir, tmp_path):
    from pymatgen.core import Structure

    from matmodal.predict import read_structures
    from tests.fixtures import real_entries

    entries = real_entries(mirror_dir)[:2]
    (tmp_path / "dump.json").write_text(json.dumps({"entries": entries}))
    structure = Structure.from_dict(entries[0]["structure"])
    structure.to(filename=str(tmp_path / "POSCAR"))
    found, skipped = read_structures([tmp_path / "dump.json", tmp_path / "POSCAR"])
    assert [s.name for s in found][:2] == [e["data"]["mat_id"] for e in entries] and not skipped
    assert found[2].name == "POSCAR" and found[2].structure.composition == structure.composition


@pytest.mark.slow
def test_parallel_grid_on_ray_matches_the_serial_one(grid_root, tmp_path):
    _, _, dataset, serial = grid_root
    grid = Grid(dataset.name, ["k_vrh"], ["tabular"], seeds=[0], settings=FAST)
    parallel = run_grid(grid, dataset.table, tmp_path, parallel=2, keep_models="none")
    a = serial.set_index("combination").loc[["mean", "gbm", "tabular"], "mae"]
    b = parallel.set_index("combination").loc[["mean", "gbm", "tabular"], "mae"]
    assert (parallel["status"] == "ok").all() and np.allclose(a, b, rtol=1e-5)


def test_a_rerun_with_other_settings_is_refused_and_the_finished_run_kept(mirror_dir, tmp_path):
    from matmodal.runs import RunConflictError

    dataset = tiny_elastic(mirror_dir)
    first = Grid(dataset.name, ["k_vrh"], [], seeds=[0], baselines=("mean",), settings={"max_rows": 40})
    run_grid(first, dataset.table, tmp_path, verbosity=0)
    config = first.configs()[0]
    stored = (run_dir(tmp_path, config) / RESULT).read_text()
    assert json.loads(stored)["n_train"] + json.loads(stored)["n_test"] == 40
    changed = Grid(dataset.name, ["k_vrh"], [], seeds=[0], baselines=("mean",), settings={"max_rows": 30})
    with pytest.raises(RunConflictError, match=r"1 finished run\(s\) .* nothing was run.*max_rows: 40 -> 30"):
        run_grid(changed, dataset.table, tmp_path, verbosity=0)
    assert (run_dir(tmp_path, config) / RESULT).read_text() == stored
    assert len(run_grid(first, dataset.table, tmp_path, verbosity=0)) == 1  # the same settings still resume


def test_evaluating_before_training_names_the_empty_runs_folder(tmp_path):
    from matmodal.runs import NoRunsError, finished_results

    with pytest.raises(NoRunsError, match=f"no runs under {tmp_path / 'mp_elastic'} — run 04 first"):
        finished_results(tmp_path, "mp_elastic")
