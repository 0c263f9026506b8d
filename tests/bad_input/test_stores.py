"""Faults in what a build or a grid left on disk: named, and handled as unfinished work."""

from __future__ import annotations

import logging

import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, DatasetFileError, load
from matmodal.datasets.costa import build_alexandria
from matmodal.models.automm import RESULT
from matmodal.paths import read_json_object
from matmodal.runs import Grid, conflicts, finished, results_frame, run_dir, run_grid
from tests.grid_fixtures import tiny_elastic


def test_truncated_result_json_is_not_a_finished_run(tmp_path, caplog):
    config = Grid("d", ["k_vrh"], [], seeds=[0]).configs()[0]
    path = run_dir(tmp_path, config) / RESULT
    path.parent.mkdir(parents=True)
    path.write_text('{"status": "ok", "key": "' + config.key[:5])
    with caplog.at_level(logging.WARNING):
        assert finished(path.parent, config) is None and conflicts([config], tmp_path) == []
    assert f"{path} is unreadable (JSONDecodeError" in caplog.text and "it is redone" in caplog.text


@pytest.mark.slow  # builds the tiny MP dataset (about 25 s alone; shared with tests/test_runs.py)
def test_truncated_result_json_is_an_unfinished_run_redone_and_said(mirror_dir, tmp_path, caplog):
    dataset = tiny_elastic(mirror_dir)
    grid = Grid(dataset.name, ["k_vrh"], [], seeds=[0])  # the two baselines: seconds
    run_grid(grid, dataset.table, tmp_path, verbosity=0)
    mean = next(c for c in grid.configs() if c.model == "mean")
    path = run_dir(tmp_path, mean) / RESULT
    path.write_text(path.read_text()[:40])  # a run killed while writing its result
    with caplog.at_level(logging.WARNING):
        results = run_grid(grid, dataset.table, tmp_path, verbosity=0)
    assert f"{path} is unreadable (JSONDecodeError" in caplog.text and "it is redone" in caplog.text
    assert (results["status"] == "ok").all() and len(results) == 2
    assert read_json_object(path)["status"] == "ok"


def test_result_json_that_is_not_an_object_is_skipped_by_the_tables(tmp_path, caplog):
    folder = tmp_path / "d" / "run"
    folder.mkdir(parents=True)
    (folder / RESULT).write_text("[1, 2]")
    with caplog.at_level(logging.WARNING):
        assert results_frame(tmp_path).empty
    assert "holds a list, not an object" in caplog.text


def test_broken_table_parquet_names_the_dataset_and_the_fix(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    dataset = build_alexandria(["hyllios_benchmark_pressure_10.json.bz2"], options=BuildOptions(robocrys=False),
                               settings=settings)
    table = dataset.folder / "table.parquet"
    table.write_bytes(table.read_bytes()[:100])
    with pytest.raises(DatasetFileError, match=r"dataset 'alexandria' in .* is unreadable \(ArrowInvalid: .*"
                                               r"rebuild it with `matmodal build alexandria`"):
        load("alexandria", settings)


def test_materials_project_offline_is_one_line_with_the_hint(monkeypatch, tmp_path, capsys):
    import mp_api.client
    import requests

    from matmodal.cli import main

    class Unreachable:
        def __init__(self, *args, **kwargs):
            raise requests.ConnectionError("Failed to resolve 'api.materialsproject.org'")

    monkeypatch.setattr(mp_api.client, "MPRester", Unreachable)
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    monkeypatch.delenv("MATMODAL_MIRROR_DIR", raising=False)
    code = main(["--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                 "fetch", "materials_project"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("matmodal: error: could not reach the network to fetch Materials Project data. "
                          "Provide a local mirror with MATMODAL_MIRROR_DIR=<dir>")
