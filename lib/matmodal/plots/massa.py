"""massa2024 figures from protocol scores: stage bars with the paper's Fig. 2 values, learning curves.

The tables (summaries, Fig. 2 / Table 1 layouts with the paper's numbers) live in
:mod:`matmodal.reporting.massa` and are re-exported here for older notebooks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from matmodal.plots.metrics import save_figure, subtitle
from matmodal.reporting.massa import (  # noqa: F401  (tables re-exported for notebooks written against plots.massa)
    KEYS,
    SPLIT_ORDER,
    STAGE_ORDER,
    alignment_table,
    clip_table,
    cross_table,
    paper_clip,
    paper_stacked,
    protocol_lines,
    stage_table,
    summarise,
    trial_table,
    write,
)
from matmodal.targets import LABELS, UNITS

FIGURE_FAMILIES = ("baseline", "clip")  # drawn beside the stacked family of :func:`stage_bars`


def stage_bars(summary: pd.DataFrame, dataset: str, targets: Sequence[str], metric: str = "r2",
               family: str = "stacked", about: Sequence[str] = ()) -> Figure:
    """R² (or RMSE) per stage and split, error bars = sd over runs (only with ≥ 2 runs); paper
    Fig. 2 values as crosses. ``about``: subtitle lines (:func:`~matmodal.reporting.massa.protocol_lines`).

    Bars: the mean baseline, ``family``'s stages and massa2024's CLIP when present."""
    fig, axes = plt.subplots(1, len(targets), figsize=(6.4 * len(targets), 4.2), squeeze=False)
    paper = paper_stacked()
    for ax, target in zip(axes[0], targets, strict=True):
        part = summary[(summary.dataset == dataset) & (summary.target == target)
                       & summary.family.isin([family, *FIGURE_FAMILIES])
                       & summary.split.isin(["train", "val", "test"])].copy()
        part["model"] = part.stage + part.text_level.map(lambda t: f"\n({t})" if t else "")
        order = sorted(part.model.unique(), key=lambda m: STAGE_ORDER.index(m.split("\n")[0]))
        sns.barplot(part, x="model", y=f"{metric}_mean", hue="split", order=order,
                    hue_order=["train", "val", "test"], ax=ax, palette="Set2", errorbar=None)
        for bar_group, split in zip(ax.containers, ["train", "val", "test"], strict=False):
            rows = part.set_index("model").query("split == @split").reindex(order)
            sds = rows[f"{metric}_sd"].where(rows["runs"] >= 2)  # one run: no error bar
            centres = [b.get_x() + b.get_width() / 2 for b in bar_group]
            heights = [b.get_height() for b in bar_group]
            if sds.notna().any():
                ax.errorbar(centres, heights, yerr=sds.to_numpy(dtype=float), fmt="none", ecolor="k", lw=1)
            ref = paper[(paper.target == target) & (paper.split == split)]
            for x, model in zip(centres, order, strict=True):
                stage, _, level = model.partition("\n")
                hit = ref[(ref.stage == stage) & (ref.text_level == (level.strip("()") or "formula"))]
                if len(hit):
                    ax.plot(x, hit[metric].iloc[0], "kx", ms=6)
        unit = "" if metric == "r2" else f" [{UNITS.get(target, '')}]"
        ax.set(title=f"{dataset}: {LABELS.get(target, target)}", xlabel="", ylabel=f"{metric.upper()}{unit}")
        if metric == "r2":
            ax.set_ylim(min(-0.2, float(np.nanmin(part.r2_mean)) - 0.05), 1.0)
        ax.tick_params(axis="x", labelsize=8)
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
        ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    subtitle(fig, ["Stacked model stages (bars: ours, mean over runs; ×: massa2024 Fig. 2, ECD images of 592 FCC crystals)",
                   *about])
    return fig


def curve_rows(scores: pd.DataFrame, family: str, stage: str, text_level: str = "", run: int = 0,
               splits: Sequence[str] = ("train",)) -> pd.DataFrame:
    """The ``splits`` rows of one model of one run, one per fold and split. The image stage is
    trained once per text level's subset (scores written before it carried the level have
    ``text_level`` "" for all of them): the largest is the one drawn."""
    part = scores[(scores.family == family) & (scores.stage == stage) & (scores.text_level == text_level)
                  & (scores.run == run) & scores.split.isin(splits)]
    return part[part.n == part.groupby("split").n.transform("max")] if len(part) else part


def curves_frame(scores: pd.DataFrame, family: str, stage: str, text_level: str = "", run: int = 0,
                 ) -> pd.DataFrame:
    """Per-epoch losses of every fold of one run (:func:`curve_rows`): fold, epoch (counted across
    stages), stage, losses."""
    part = curve_rows(scores, family, stage, text_level, run)
    rows = []
    for fold, text in zip(part.fold, part.curves, strict=True):
        epoch = 0
        for curve in json.loads(text):
            for train, val in zip(curve["train"], curve["val"], strict=True):
                epoch += 1
                rows.append({"fold": fold, "epoch": epoch, "stage": curve["stage"], "train_loss": train,
                             "val_loss": val})
    return pd.DataFrame(rows)


def learning_curves(histories: pd.DataFrame, title: str = "", about: Sequence[str] = ()) -> Figure:
    """Train/validation loss (standardised MSE) per epoch, one line per fold (massa2024 Fig. 6);
    ``about``: subtitle lines (dataset, n_test, runs, epochs, pretrained backbones)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    long = histories.melt(id_vars=["fold", "epoch"], value_vars=["train_loss", "val_loss"], var_name="curve")
    sns.lineplot(long, x="epoch", y="value", hue="fold", style="curve", ax=ax, palette="tab10", errorbar=None)
    ax.set(yscale="log", ylabel="MSE (standardised target)", title=title)
    fig.tight_layout()
    subtitle(fig, about)
    return fig


def save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """PNG + PDF (see :func:`matmodal.plots.metrics.save_figure`)."""
    paths = save_figure(fig, folder, stem)
    plt.close(fig)
    return paths
