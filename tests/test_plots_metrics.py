"""Figures 1-4, parity and attribution plots are drawn and saved as PNG + PDF."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.collections import PathCollection

from matmodal.evaluation import compare, load_reference, summarise
from matmodal.models.automm import combination_label
from matmodal.plots.metrics import (
    PAPER_LABEL,
    attribution_plot,
    heatmaps,
    metric_bars,
    parity_plots,
    save_figure,
    scaled_bars,
)
from tests.test_evaluation import RESULTS

COMPARISON = compare(summarise(RESULTS), load_reference())


def test_bar_figures_show_ours_with_error_bars_and_the_paper_values(tmp_path):
    fig = metric_bars(COMPARISON, "mae")
    gap = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in gap.patches if p.get_height() > 0)
    assert heights == [2.0, 2.25, 6.0]  # text, images + text, mean baseline
    assert [c.get_label() for c in gap.collections].count(PAPER_LABEL) == 1  # one legend entry
    paper = sorted(round(float(c.get_offsets()[0, 1]), 3) for c in gap.collections if isinstance(c, PathCollection))
    assert paper == [0.093, 0.13]  # Table 2: Images + Text and Text, Gap
    paths = save_figure(fig, tmp_path, "figure1_mae")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
    assert len(scaled_bars(COMPARISON).axes) == 2


def test_heatmaps_draw_ours_and_the_papers_numbers():
    ours = heatmaps(COMPARISON)
    assert len(ours.axes) == 4  # two heat maps + two colour bars
    paper = load_reference().rename(columns={"value": "paper"})
    paper["label"] = paper["combination"].map(combination_label)
    fig = heatmaps(paper, value="paper")
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "1.43" in texts  # Table 4, Images + Text, Gap = 1.427


def test_parity_and_attribution_plots(tmp_path):
    pred = pd.DataFrame({"y_true": [1.0, 2.0, 3.0], "y_pred": [1.1, 1.9, 3.2]})
    fig = parity_plots({"k_vrh": pred, "g_vrh": pred})
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    rows = pd.DataFrame([{"target": "k_vrh", "modality": m, "mode": mode, "seed": s, "d_mae_mad": v}
                         for m in ("text", "tabular") for mode in ("remove", "shuffle") for s, v in ((0, 0.1), (1, 0.3))])
    save_figure(attribution_plot(rows), tmp_path, "attribution")
    assert (tmp_path / "attribution.png").exists()


# ---------------------------------------------------------------- figures of the committed real runs

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "paper_figures" / "costa2025" / "full"
SMOKE = pd.read_csv(FIGURES / "alexandria_smoke" / "summary_long.csv")  # 1 seed, 1 epoch, 16 test rows
ELASTIC = pd.read_csv(FIGURES / "mp_elastic" / "summary_long.csv")  # 3 seeds


def _error_segments(fig) -> int:
    """Error-bar segments drawn (NaN ones are not drawn)."""
    return sum(np.asarray(seg).size > 0 and np.isfinite(np.asarray(seg)).all() for ax in fig.axes
               for c in ax.containers if isinstance(c, ErrorbarContainer)
               for lines in c.lines[2:] for lc in lines for seg in lc.get_segments())


def test_one_seed_draws_no_error_bars_three_seeds_do():
    assert _error_segments(metric_bars(SMOKE, "mae")) == 0
    assert _error_segments(scaled_bars(SMOKE)) == 0
    three = ELASTIC[(ELASTIC.metric == "mae") & (ELASTIC.n_seeds >= 2)]
    assert _error_segments(metric_bars(ELASTIC, "mae")) == len(three)


def test_every_figure_carries_its_subtitle():
    about = ["alexandria · n_test = 16", "epochs 1 · pretrained: image x"]
    for fig in (metric_bars(SMOKE, "mae", about=about), scaled_bars(SMOKE, about=about), heatmaps(SMOKE, about=about)):
        assert fig._suptitle.get_text().startswith("alexandria · n_test = 16\nepochs 1 · pretrained: image x")


def test_ill_conditioned_scaled_errors_are_clipped_hatched_and_written():
    fig = scaled_bars(SMOKE)
    ax = fig.axes[0]  # MAE/MAD
    top = ax.get_ylim()[1]
    fine = SMOKE[(SMOKE.metric.isin(["mae_mad", "rmse_rmsd"])) & (SMOKE.target != "mag_per_vol")]
    assert top == pytest.approx(1.15 * max(fine["mean"].max(), fine["paper"].max()))
    hatched = [p for p in ax.patches if p.get_hatch()]
    magvol = SMOKE[(SMOKE.metric == "mae_mad") & (SMOKE.target == "mag_per_vol")]
    assert len(hatched) == len(magvol) == 9 and all(p.get_height() == top for p in hatched)
    assert {t.get_text() for t in ax.texts} == {f"{v:,.0f}" for v in magvol["mean"]}
    assert "1,704" in {t.get_text() for t in ax.texts}
    assert "Ill-conditioned: Mag/vol (up to 1,704)" in fig._suptitle.get_text().replace("\n", " ")
    assert [t.get_text() for t in ax.get_xticklabels()][4] == "Mag/vol *"
    assert not [p for p in scaled_bars(ELASTIC).axes[0].patches if p.get_hatch()]  # nothing to clip


def test_parity_panels_print_mae_r2_and_n():
    from matmodal.metrics import regression_metrics

    rng = np.random.default_rng(0)
    truth = rng.normal(100, 30, 40)
    pred = pd.DataFrame({"y_true": truth, "y_pred": truth + rng.normal(0, 10, 40)})
    scores = regression_metrics(pred.y_true, pred.y_pred)
    fig = parity_plots({"k_vrh": pred})
    assert fig.axes[0].texts[0].get_text() == f"MAE = {scores['mae']:.3f} GPa\nR² = {scores['r2']:.3f}\nn = 40"
    constant = pd.DataFrame({"y_true": [0.0, 0.0, 0.0], "y_pred": [0.1, -0.1, 0.0]})
    assert "R² = n/a (constant labels)" in parity_plots({"gap": constant}).axes[0].texts[0].get_text()


def test_every_model_gets_its_own_non_grey_colour_baselines_are_grey():
    from matmodal.plots.metrics import _palette

    for labels in (SMOKE.label.unique(), ELASTIC.label.unique(), COMPARISON.label.unique()):
        colours = _palette(list(labels))
        models = [c for label, c in colours.items() if not label.startswith("Baseline")]
        assert len(set(models)) == len(models)
        assert not [c for c in models if np.ptp(c) < 1e-6]  # no grey: greys mean baselines
        assert all(np.ptp(c) < 1e-6 for label, c in colours.items() if label.startswith("Baseline"))
