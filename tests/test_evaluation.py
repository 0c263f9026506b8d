"""Evaluation tables: mean ± sd over seeds, the paper's Tables 2-5 beside ours, CSV/MD/LaTeX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matmodal.evaluation import (
    attribution_summary,
    best_combinations,
    compare,
    load_reference,
    metric_table,
    regression_metrics,
    summarise,
    write_tables,
)
from matmodal.models.automm import COMBINATIONS, combination_name
from matmodal.runs import model_label


def _results(values: dict[tuple[str, str, str, int], float]) -> pd.DataFrame:
    """A results frame as :func:`matmodal.runs.results_frame` returns it (values = MAE)."""
    rows = []
    for (target, model, combination, seed), mae in values.items():
        label = model_label({"model": model, "modalities": combination.split("+")})
        rows.append({"dataset": "d", "target": target, "model": model, "combination": combination,
                     "label": label, "seed": seed, "status": "ok", "mae": mae, "rmse": 2 * mae,
                     "mae_mad": mae / 10, "rmse_rmsd": mae / 5, "r2": 1 - mae / 100})
    rows.append({**rows[-1], "seed": 99, "status": "failed", "mae": np.nan})
    return pd.DataFrame(rows)


RESULTS = _results({
    ("gap", "automm", "image+text", 0): 1.0, ("gap", "automm", "image+text", 1): 3.5,
    ("gap", "automm", "text", 0): 2.0, ("gap", "automm", "text", 1): 2.0,
    ("gap", "mean", "mean", 0): 5.0, ("gap", "mean", "mean", 1): 7.0,
    ("k_vrh", "automm", "text", 0): 10.0,
})


def test_reference_holds_tables_2_to_5_as_printed():
    ref = load_reference()
    assert len(ref) == 4 * 7 * 7
    assert set(ref["combination"]) == {combination_name(c) for c in COMBINATIONS}
    value = ref.set_index(["metric", "combination", "target"])["value"]
    # numbers quoted in the paper's prose
    assert value["mae", "image+text", "gap"] == 0.093
    assert value["rmse", "text", "gap"] == 0.239
    assert value["mae_mad", "text", "e_tot_per_atom"] == 0.306
    assert value["rmse_rmsd", "tabular+image+text", "mag_per_vol"] == 0.871


def test_summary_is_mean_and_sample_sd_over_ok_seeds():
    summary = summarise(RESULTS).set_index(["target", "combination", "metric"])
    row = summary.loc["gap", "image+text", "mae"]
    assert row["mean"] == 2.25 and row["sd"] == pytest.approx(np.sqrt(3.125)) and row["n_seeds"] == 2
    assert np.isnan(summary.loc["k_vrh", "text", "mae"]["sd"])  # one seed: no sd (the failed run is ignored)


def test_compare_puts_the_paper_value_and_difference_beside_ours():
    comparison = compare(summarise(RESULTS), load_reference()).set_index(["target", "combination", "metric"])
    row = comparison.loc["gap", "image+text", "mae"]
    assert row["paper"] == 0.093 and row["diff"] == pytest.approx(2.25 - 0.093)
    assert np.isnan(comparison.loc["k_vrh", "text", "mae"]["paper"])  # not in the paper


def test_metric_table_orders_rows_bolds_the_best_model_and_shows_paper_columns():
    table = metric_table(compare(summarise(RESULTS), load_reference()), "mae")
    assert list(table.index) == ["Baseline: mean", "Text", "Images + Text"]
    assert table.loc["Text", "Gap (eV)"] == "**2.000 ± 0.000**"  # the lowest mean of every row (here an AutoMM row)
    assert table.loc["Images + Text", "Gap (eV) paper"] == "0.093"
    assert table.loc["Images + Text", "Gap (eV) Δ"] == "+2.157"
    assert "K_VRH (GPa) paper" not in table.columns


def test_tables_are_written_as_csv_markdown_and_latex(tmp_path):
    written = write_tables(compare(summarise(RESULTS), load_reference()), tmp_path)
    csv, md, tex = written["mae"]
    assert csv.name == "table2_mae.csv" and written["rmse_rmsd"][0].name == "table5_rmse_rmsd.csv"
    assert pd.read_csv(csv)["paper"].notna().sum() == 2
    assert "| Images + Text" in md.read_text()
    latex = tex.read_text()
    assert r"K\_VRH" in latex and r"$\pm$" in latex and "**" not in latex


def test_best_combination_per_target_ignores_baselines():
    best = best_combinations(summarise(RESULTS), "mae")
    assert best.to_dict() == {"gap": "text", "k_vrh": "text"}


def test_attribution_summary_keeps_the_largest_combination():
    rows = pd.DataFrame([
        {"target": "gap", "combination": c, "seed": s, "modality": "text", "mode": "remove",
         "d_mae": d, "d_mae_mad": d, "d_r2": -d}
        for c, s, d in [("image+text", 0, 1.0), ("image+text", 1, 3.0), ("text", 0, 9.0)]
    ])
    kept, stats = attribution_summary(rows)
    assert set(kept["combination"]) == {"image+text"}
    assert stats.loc[("gap", "image+text", "", "text", "remove"), ("d_mae", "mean")] == 2.0  # "": no recipe named


def test_mean_predictor_scores_one_on_the_scaled_metrics():
    y = np.array([1.0, 2.0, 4.0, 9.0])
    metrics = regression_metrics(y, np.full_like(y, y.mean()))
    assert metrics["mae_mad"] == pytest.approx(1.0) and metrics["rmse_rmsd"] == pytest.approx(1.0)


def test_massa_beside_the_costa_grid_finds_the_runs_of_the_layout(mirror_dir, tmp_path):
    """Notebook 08 globbed <output>/runs/*/*/result.json while runs live in runs/<profile>/<dataset>/<run>:
    the section was always empty, silently."""
    from matmodal.layout import Layout
    from matmodal.reporting.massa import beside_costa_grid
    from matmodal.runs import Grid, results_frame, run_grid
    from tests.grid_fixtures import tiny_elastic

    dataset = tiny_elastic(mirror_dir)
    layout = Layout(tmp_path / "outputs", tmp_path / "figures", "quick")
    run_grid(Grid(dataset.name, ["k_vrh"], [], seeds=[0], baselines=("mean",)), dataset.table, layout.runs_root,
             verbosity=0)
    # one row in the shape of matmodal.plots.massa.summarise (values are placeholders, not results)
    summary = pd.DataFrame([{"dataset": dataset.name, "target": "k_vrh", "family": "stacked", "stage": "image",
                             "text_level": "", "split": "test", "r2_mean": 0.5, "rmse_mean": 30.0}])
    beside, why = beside_costa_grid(summary, results_frame(layout.runs_root), seed=0)
    assert why == "" and list(beside["source"]) == ["costa2025 grid (AutoGluon)", "massa2024 models"]
    assert beside.loc[0, "n_test"] == 7 and beside.loc[1, "label"] == "stacked: image [test]"
    old = results_frame(layout.output_dir / "runs")  # the old glob: <output>/runs/<dataset>/<run>
    assert beside_costa_grid(summary, old, seed=0, where="outputs/runs")[1] == \
        "no costa2025 grid runs under outputs/runs (run notebook 04 first)"
    assert "no ok seed-1 run on mp_elastic_tiny48" in beside_costa_grid(summary, results_frame(layout.runs_root), 1)[1]
