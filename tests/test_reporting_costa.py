"""What the costa2025 figures and tables say about their runs, from real run outputs: grid
provenance (n_test, seeds, epochs, pretrained backbones, smoke), the test labels' MAD, and the
ill-conditioned scaled metrics (the committed Alexandria smoke run: Mag/vol's test MAD ≈ 8e-6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matmodal.layout import Layout
from matmodal.reporting import costa
from tests.grid_fixtures import tiny_elastic

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "paper_figures" / "costa2025" / "full" / "alexandria_smoke"


@pytest.fixture(scope="module")
def grid(mirror_dir, tmp_path_factory):
    """The mean and GBM baselines on 48 real MP elastic materials, two targets, seeds 0 and 1."""
    from matmodal.runs import Grid, run_grid

    dataset = tiny_elastic(mirror_dir)
    root = tmp_path_factory.mktemp("runs")
    grid = Grid(dataset.name, ["k_vrh", "vol_per_atom"], combinations=[], seeds=[0, 1],
                baselines=("mean", "gbm"), settings={"features": ("magpie",)})
    return run_grid(grid, dataset.table, root, keep_models="none", verbosity=0), root


def test_grid_provenance_and_label_spread_come_from_the_runs(grid):
    results, root = grid
    assert (results.status == "ok").all()
    about = costa.grid_provenance(results)
    assert (about.n_test, about.n_train, about.seeds, about.epochs) == ((7,), (41,), (0, 1), ())
    assert not about.smoke  # two seeds
    assert about.lines() == [
        "mp_elastic_tiny48 · n_test = 7 (n_train = 41) per seed · 2 seeds (0, 1): error bars = sd",
        "no epoch-trained model · no pretrained backbone"]
    assert costa.grid_provenance(results[results.seed == 0]).smoke  # one seed, no epochs
    spread = costa.label_spread(results)
    for target in ("k_vrh", "vol_per_atom"):  # the MAD of each seed's test labels, mean over seeds
        mads = []
        for seed in (0, 1):
            truth = pd.read_parquet(root / results.dataset[0] / f"mean__{target}__tabular__seed{seed}" /
                                    "predictions.parquet")["y_true"]
            mads.append(np.mean(np.abs(truth - truth.mean())))
        assert spread.loc[target, "mad"] == pytest.approx(np.mean(mads), rel=1e-12)


def test_backbones_are_listed_once_each_pretrained_or_not():
    rows = pd.DataFrame({
        "status": "ok", "dataset": "mp_elastic", "seed": 0, "n_test": 30, "n_train": 170,
        "model": ["automm", "automm", "fusion_gbm", "gbm"], "epochs": [3, 1, 1, 1],
        "backbones": ["tabular=numerical_mlp", "image=tf_efficientnet_lite0; text=sentence-transformers/all-MiniLM-L6-v2",
                      "image=EfficientNet-Lite0; text=all-MiniLM-L6-v2, pretrained, frozen", "baseline=gbm"],
        "pretrained": ["tabular=False", "image=True; text=True", "image=True; text=True", "baseline=False"]})
    about = costa.grid_provenance(rows)
    assert about.epochs == (1, 3)  # AutoMM only: the GBM and fusion GBM have none
    assert about.lines()[1] == ("epochs 1–3 (AutoMM/MLP, early stopping) · pretrained: image tf_efficientnet_lite0, "
                                "text all-MiniLM-L6-v2 · not pretrained: tabular numerical_mlp")


def test_the_smoke_grid_gets_its_own_folder_outside_the_quick_profile(tmp_path):
    full = Layout(tmp_path / "out", tmp_path / "paper_figures", "full")
    assert full.figures_dir("costa2025", "alexandria", smoke=True) == tmp_path / "paper_figures/costa2025/full/alexandria_smoke"
    assert full.figures_dir("costa2025", "alexandria") == tmp_path / "paper_figures/costa2025/full/alexandria"
    quick = Layout(tmp_path / "out", tmp_path / "paper_figures", "quick")  # "quick" already says so
    assert quick.figures_dir("costa2025", "mp_elastic", smoke=True) == tmp_path / "paper_figures/costa2025/quick/mp_elastic"


def test_the_committed_alexandria_smoke_run_names_its_ill_conditioned_target():
    comparison = pd.read_csv(SMOKE / "summary_long.csv")
    spread = pd.read_csv(SMOKE / "test_label_spread.csv", index_col="target")
    worst = costa.ill_conditioned(comparison)
    assert list(worst) == ["mag_per_vol"] and worst["mag_per_vol"] == pytest.approx(1703.66, abs=0.01)
    assert spread.loc["mag_per_vol", "mad"] == pytest.approx(8.04001e-06, rel=1e-5)
    note = costa.ill_conditioned_note(comparison, spread)
    assert note.startswith("Ill-conditioned: Mag/vol (up to 1,704, MAD of the test labels 8.04e-06 μB/Å³)")
    assert note.endswith("Undefined: Gap (constant test labels, MAD = 0).")
    assert note in (SMOKE / "table4_mae_mad.md").read_text().splitlines()[0]
    assert "Ill-conditioned" not in (SMOKE / "table2_mae.md").read_text()  # MAE itself is fine


def test_attribution_keeps_one_combination_per_target_the_largest_with_most_seeds():
    rows = pd.read_csv(ROOT / "paper_figures/costa2025/full/mp_elastic/attribution.csv")  # real runs
    kept_per_target = rows.groupby("target").combination.unique().map(list)
    assert kept_per_target.map(len).eq(1).all()  # one combination per target in the committed file
    combination = rows.combination.iloc[0]
    smaller = rows.assign(combination="tabular+text" if combination.count("+") > 1 else "tabular")
    more_seeds = pd.concat([rows, rows.assign(seed=rows.seed + 100)]).assign(combination="zz+" + combination)
    fewer_seeds = rows[rows.seed == rows.seed.min()].assign(combination="aa+" + combination)
    kept, stats = costa.attribution_summary(pd.concat([smaller, fewer_seeds, more_seeds]))
    assert set(kept.combination) == {"zz+" + combination} and len(kept) == 2 * len(rows)  # largest, most seeds
    kept, _ = costa.attribution_summary(pd.concat([smaller, rows]))
    assert set(kept.combination) == {combination}  # the larger combination wins over more seeds
    part = rows[(rows.target == "k_vrh") & (rows.modality == "tabular") & (rows["mode"] == "shuffle")]
    _, stats = costa.attribution_summary(rows)
    recipe = rows.recipe.fillna("").iloc[0]
    assert stats.loc[("k_vrh", combination, recipe, "tabular", "shuffle"), ("d_mae_mad", "mean")] == pytest.approx(
        part.d_mae_mad.mean())
    other = rows.assign(recipe="other", seed=rows.seed + 100)  # the same combination, another recipe, as many seeds
    kept, _ = costa.attribution_summary(pd.concat([rows, other, other.assign(seed=other.seed + 100)]))
    assert set(kept.recipe) == {"other"} and len(kept) == 2 * len(rows)  # recipes are never pooled
