"""costa2025 Figures 1-4 from our runs, with the paper's values beside ours, plus parity and
modality-attribution plots. Inputs are the long frames of :mod:`matmodal.evaluation`
(``summary``/``comparison``: one row per model × target × metric with mean, sd, paper)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from matmodal.metrics import METRIC_LABELS
from matmodal.reporting.costa import row_order, target_order
from matmodal.targets import LABELS, UNITS


def save_figure(fig: Figure, folder: Path, stem: str, dpi: int = 200) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` into ``folder`` (same figure -> same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight")
    fig.savefig(paths[1], dpi=dpi, bbox_inches="tight", metadata={"CreationDate": None})  # reproducible bytes
    return paths


# costa2025's numbers are on Alexandria with the paper's backbones: drawn beside ours, never "the same run"
PAPER_LABEL = "costa2025 (Alexandria, pretrained, GPU)"


def _palette(labels: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """Greys for baselines, one distinct colour per model (stable order): tab10, tab20 past 10
    models, evenly spaced hues past 20 (tab10 alone repeats colours after ten)."""
    baselines = [x for x in labels if x.startswith("Baseline")]
    models = [x for x in labels if x not in baselines]
    greys = sns.color_palette("Greys", n_colors=len(baselines) + 2)[1:]
    name = "tab10" if len(models) <= 10 else "tab20" if len(models) <= 20 else "husl"
    return {**dict(zip(baselines, greys, strict=False)),
            **dict(zip(models, sns.color_palette(name, n_colors=max(len(models), 3)), strict=False))}


def grouped_bars(ax: Axes, part: pd.DataFrame, groups: Sequence[str], hues: Sequence[str],
                 colours: Mapping[str, tuple[float, float, float]]) -> None:
    """Bars ``mean`` ± ``sd`` per (target group, model hue); paper values as black diamonds."""
    width = 0.8 / max(len(hues), 1)
    indexed = part.set_index(["target", "label"])
    paper_label = PAPER_LABEL
    for j, hue in enumerate(hues):
        x = np.arange(len(groups)) + (j - (len(hues) - 1) / 2) * width
        rows = [indexed.loc[(g, hue)] if (g, hue) in indexed.index else None for g in groups]
        means = [r["mean"] if r is not None else np.nan for r in rows]
        sds = [r["sd"] if r is not None and np.isfinite(r["sd"]) else 0.0 for r in rows]
        ax.bar(x, means, width, yerr=sds, capsize=2, color=colours[hue], label=hue,
               error_kw={"elinewidth": 0.8})
        paper = [r["paper"] if r is not None and "paper" in r else np.nan for r in rows]
        if np.isfinite(np.asarray(paper, dtype=float)).any():
            ax.scatter(x, paper, marker="D", s=14, color="black", zorder=3, label=paper_label)
            paper_label = None


def _handles(axes: Sequence[Axes]) -> tuple[list, list[str]]:
    """Legend entries of all panels, each label once (panels miss models or paper values)."""
    found: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    paper = found.pop(PAPER_LABEL, None)
    found.update({PAPER_LABEL: paper} if paper is not None else {})
    return list(found.values()), list(found)


def metric_bars(comparison: pd.DataFrame, metric: str, ncols: int = 4) -> Figure:
    """Figures 1-2: one panel per target (own unit), bars = models, error bars = sd over seeds."""
    part = comparison[comparison["metric"] == metric]
    targets = target_order(part["target"])
    hues = row_order(part["label"].unique())
    colours = _palette(hues)
    ncols = min(ncols, len(targets))
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.0 * nrows), squeeze=False)
    for ax, target in zip(axes.flat, targets, strict=False):
        grouped_bars(ax, part[part["target"] == target], [target], hues, colours)
        ax.set_xticks([])
        ax.set_title(LABELS.get(target, target), fontsize=10)
        ax.set_ylabel(f"{METRIC_LABELS[metric]} ({UNITS.get(target, '')})")
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    fig.tight_layout()
    handles, labels = _handles(axes.flat)  # below the panels, never over them (saved with bbox "tight")
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    return fig


def scaled_bars(comparison: pd.DataFrame, metrics: Sequence[str] = ("mae_mad", "rmse_rmsd")) -> Figure:
    """Figure 3: MAE/MAD (left) and RMSE/RMSD (right), x = target, bars = models; 1 = mean predictor."""
    part = comparison[comparison["metric"].isin(metrics)]
    targets = target_order(part["target"])
    hues = row_order(part["label"].unique())
    colours = _palette(hues)
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(6.0, 1.6 * len(targets)) * len(metrics) / 1.4, 3.6),
                             squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        grouped_bars(ax, part[part["metric"] == metric], targets, hues, colours)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(targets)), [LABELS.get(t, t) for t in targets])
        ax.set_ylabel(METRIC_LABELS[metric])
    fig.tight_layout()
    handles, labels = _handles(axes.flat)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    return fig


def heatmaps(comparison: pd.DataFrame, metrics: Sequence[str] = ("mae_mad", "rmse_rmsd"),
             value: str = "mean", vmax: float = 2.0) -> Figure:
    """Figure 4: heat maps (models × targets) of the scaled errors; ``value="paper"`` draws the
    paper's numbers instead of ours. Colours saturate at ``vmax`` (the numbers do not)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        part = comparison[comparison["metric"] == metric]
        grid = part.pivot_table(index="label", columns="target", values=value, sort=False)
        grid = grid.reindex(index=row_order(grid.index), columns=target_order(grid.columns)).dropna(how="all")
        grid.columns = [LABELS.get(c, c) for c in grid.columns]
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="rocket_r", vmin=0.0, vmax=vmax,
                    cbar_kws={"label": METRIC_LABELS[metric], "extend": "max"}, annot_kws={"fontsize": 7})
        ax.set_ylabel("")
        ax.set_title(f"{METRIC_LABELS[metric]} ({'costa2025' if value == 'paper' else 'ours'})")
    fig.tight_layout()
    return fig


def parity_plots(predictions: Mapping[str, pd.DataFrame], titles: Mapping[str, str] | None = None,
                 ncols: int = 4) -> Figure:
    """Predicted vs true per target (``y_true``, ``y_pred`` columns), with the y = x line."""
    names = target_order(list(predictions))
    ncols = min(ncols, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, target in zip(axes.flat, names, strict=False):
        frame = predictions[target]
        ax.scatter(frame["y_true"], frame["y_pred"], s=8, alpha=0.6)
        low = float(min(frame["y_true"].min(), frame["y_pred"].min()))
        high = float(max(frame["y_true"].max(), frame["y_pred"].max()))
        ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
        unit = UNITS.get(target, "")
        ax.set_xlabel(f"true {LABELS.get(target, target)} ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        ax.set_title((titles or {}).get(target, ""), fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def attribution_plot(attribution: pd.DataFrame, metric: str = "d_mae_mad") -> Figure:
    """Change in the test error of the all-modality model when one modality is removed or
    shuffled at test time (mean ± sd over seeds); one panel per target."""
    targets = target_order(attribution["target"])
    ncols = min(4, len(targets))
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.0 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    for ax, target in zip(axes.flat, targets, strict=False):
        part = attribution[attribution["target"] == target]
        sns.barplot(part, x="modality", y=metric, hue="mode", ax=ax, errorbar="sd", capsize=0.1,
                    err_kws={"linewidth": 0.8})
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(LABELS.get(target, target), fontsize=10)
        ax.set_ylabel(f"Δ {METRIC_LABELS.get(metric.removeprefix('d_'), metric)} vs full input")
    fig.tight_layout()
    return fig
