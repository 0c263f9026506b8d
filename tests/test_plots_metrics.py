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
