"""costa2025 Figures 1-4 from our runs, with the paper's values beside ours, plus parity and
modality-attribution plots. Inputs are the long frames of :mod:`matmodal.reporting.costa`
(``summary``/``comparison``: one row per model × target × metric with mean, sd, n_seeds, paper).

Every figure takes ``about``: subtitle lines drawn on the figure (dataset, n_test, seeds, epochs,
pretrained backbones: :meth:`matmodal.reporting.costa.GridProvenance.lines`), so a saved PNG says
what it shows. Error bars are drawn only where a cell has two or more seeds (sd over seeds);
parity panels print MAE, R² and n; scaled errors of ill-conditioned targets (a tiny test MAD,
:func:`~matmodal.reporting.costa.ill_conditioned`) are clipped, hatched, their value written, and
a note says why, so the other targets stay readable."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from matmodal.metrics import METRIC_LABELS, regression_metrics
from matmodal.reporting.costa import ill_conditioned, ill_conditioned_note, row_order, target_order
from matmodal.reporting.tables import number
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
PAPER_ABOUT = "costa2025 Tables 4-5 as printed: Alexandria, 1,000 entries, the paper's pretrained backbones on a GPU"


def subtitle(fig: Figure, lines: Sequence[str]) -> None:
    """Draw ``lines`` (what the figure shows, where its numbers come from) above the panels; call
    after ``tight_layout`` (``save_figure``'s tight bounding box keeps them)."""
    width = max(60, int(fig.get_figwidth() * 19))  # characters per line at 7 pt
    lines = [wrapped for line in lines if line for wrapped in textwrap.wrap(line, width)]
    if lines:
        fig.suptitle("\n".join(lines), fontsize=7, y=1.0, va="bottom", color="0.25")


def _colours(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct non-grey colours (greys are the baselines'): tab10 without its grey (9),
    tab20 without its two greys (18), evenly spaced hues past that."""
    for name, greys in (("tab10", {7}), ("tab20", {14, 15})):
        colours = [c for i, c in enumerate(sns.color_palette(name)) if i not in greys]
        if n <= len(colours):
            return colours[:n]
    return sns.color_palette("husl", n_colors=n)


def _palette(labels: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """Greys for baselines, one distinct non-grey colour per model (stable order)."""
    baselines = [x for x in labels if x.startswith("Baseline")]
    models = [x for x in labels if x not in baselines]
    greys = sns.color_palette("Greys", n_colors=len(baselines) + 2)[1:]
    return {**dict(zip(baselines, greys, strict=False)), **dict(zip(models, _colours(len(models)), strict=True))}


def _error(row: pd.Series | None) -> float:
    """sd over seeds, only from two or more seeds (one seed: no error bar, not a zero-height one)."""
    if row is None or row.get("n_seeds", 2) < 2 or not np.isfinite(row["sd"]):
        return np.nan
    return float(row["sd"])


def grouped_bars(ax: Axes, part: pd.DataFrame, groups: Sequence[str], hues: Sequence[str],
                 colours: Mapping[str, tuple[float, float, float]], clip: float | None = None) -> None:
    """Bars ``mean`` (± ``sd`` where ≥ 2 seeds) per (target group, model hue); paper values as
    black diamonds. ``clip``: bars above it end there, hatched, with their value written."""
    width = 0.8 / max(len(hues), 1)
    indexed = part.set_index(["target", "label"])
    paper_label = PAPER_LABEL
    for j, hue in enumerate(hues):
        x = np.arange(len(groups)) + (j - (len(hues) - 1) / 2) * width
        rows = [indexed.loc[(g, hue)] if (g, hue) in indexed.index else None for g in groups]
        means = np.array([r["mean"] if r is not None else np.nan for r in rows], dtype=float)
        errors = np.array([_error(r) for r in rows])
        over = np.isfinite(means) & (means > clip) if clip else np.zeros(len(means), bool)
        heights = np.where(over, clip or 0.0, means)
        bars = ax.bar(x, heights, width, yerr=np.where(over | ~np.isfinite(errors), np.nan, errors), capsize=2,
                      color=colours[hue], label=hue, error_kw={"elinewidth": 0.8})
        for bar, value in ((b, v) for b, v, o in zip(bars, means, over, strict=True) if o):
            bar.set_hatch("////")
            ax.text(bar.get_x() + bar.get_width() / 2, clip * 0.97, f"{value:,.0f}", rotation=90, ha="center",
                    va="top", fontsize=6, color="black", bbox={"facecolor": "white", "lw": 0, "pad": 0.5})
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


def _legend_below(fig: Figure, axes: Sequence[Axes]) -> None:
    handles, labels = _handles(axes)  # below the panels, never over them (saved with bbox "tight")
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), fontsize=8,
               bbox_to_anchor=(0.5, 0.0))


def metric_bars(comparison: pd.DataFrame, metric: str, ncols: int = 4, about: Sequence[str] = ()) -> Figure:
    """Figures 1-2: one panel per target (own unit), bars = models, error bars = sd over seeds
    (only with ≥ 2 seeds); ``about``: subtitle lines (:func:`subtitle`)."""
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
    _legend_below(fig, list(axes.flat))
    subtitle(fig, about)
    return fig


def clip_limit(part: pd.DataFrame, bad: Sequence[str]) -> float | None:
    """Top of a shared scaled-error axis: 15 % above the largest bar, error bar or paper value of
    the well-conditioned targets (at least 1.2, so the mean predictor's 1 shows); None when no
    target is ill-conditioned (nothing to clip) or every one is."""
    fine = part[~part["target"].isin(bad)]
    if not len(bad) or fine.empty:
        return None
    tops = fine["mean"] + fine["sd"].where(fine.get("n_seeds", 2) >= 2).fillna(0.0)
    paper = fine["paper"] if "paper" in fine else pd.Series(dtype=float)
    return max(1.2, 1.15 * float(pd.concat([tops, paper]).max()))


def scaled_bars(comparison: pd.DataFrame, metrics: Sequence[str] = ("mae_mad", "rmse_rmsd"),
                about: Sequence[str] = (), spread: pd.DataFrame | None = None) -> Figure:
    """Figure 3: MAE/MAD (left) and RMSE/RMSD (right), x = target, bars = models; 1 = mean predictor.

    Ill-conditioned targets (:func:`~matmodal.reporting.costa.ill_conditioned`) would flatten every
    other bar: the axis ends above the others, their bars are clipped there, hatched and labelled
    with their value, and a subtitle line names them (with ``spread``: their tiny test MAD)."""
    part = comparison[comparison["metric"].isin(metrics)]
    targets = target_order(part["target"])
    hues = row_order(part["label"].unique())
    colours = _palette(hues)
    bad = list(ill_conditioned(part))
    clip = clip_limit(part, bad)
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(6.0, 1.6 * len(targets)) * len(metrics) / 1.4, 3.6),
                             squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        grouped_bars(ax, part[part["metric"] == metric], targets, hues, colours, clip=clip)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(targets)), [LABELS.get(t, t) + (" *" if t in bad else "") for t in targets])
        ax.set_ylabel(METRIC_LABELS[metric])
        if clip:
            ax.set_ylim(0.0, clip)
    fig.tight_layout()
    _legend_below(fig, list(axes.flat))
    note = ill_conditioned_note(part, spread)
    clipped = f"* bars clipped at {clip:.2f} (hatched, value written). " if clip else ""
    subtitle(fig, [*about, f"{clipped}{note}" if note else ""])
    return fig


def _annotation(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def heatmaps(comparison: pd.DataFrame, metrics: Sequence[str] = ("mae_mad", "rmse_rmsd"),
             value: str = "mean", vmax: float = 2.0, about: Sequence[str] = (),
             spread: pd.DataFrame | None = None) -> Figure:
    """Figure 4: heat maps (models × targets) of the scaled errors; ``value="paper"`` draws the
    paper's numbers instead of ours. Colours saturate at ``vmax`` (the numbers do not); a
    subtitle line names ill-conditioned targets (see :func:`scaled_bars`)."""
    grids = {}
    for metric in metrics:
        part = comparison[comparison["metric"] == metric]
        grid = part.pivot_table(index="label", columns="target", values=value, sort=False)
        grid = grid.reindex(index=row_order(grid.index), columns=target_order(grid.columns)).dropna(how="all")
        grid.columns = [LABELS.get(c, c) for c in grid.columns]
        grids[metric] = grid
    rows = max(len(g) for g in grids.values())
    columns = max(len(g.columns) for g in grids.values())
    label = max((len(str(x)) for g in grids.values() for x in g.index), default=10)  # row labels, left panel
    width = len(metrics) * max(4.0, 0.6 * columns + 2.5) + 0.07 * label
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 1.6 + 0.32 * max(rows, 8)), squeeze=False)
    first = next(iter(grids.values()))
    for i, (ax, (metric, grid)) in enumerate(zip(axes.flat, grids.items(), strict=True)):
        same_rows = i > 0 and list(grid.index) == list(first.index)  # row labels once, on the left
        sns.heatmap(grid, ax=ax, annot=grid.map(_annotation), fmt="", cmap="rocket_r", vmin=0.0, vmax=vmax,
                    cbar_kws={"label": METRIC_LABELS[metric], "extend": "max"}, annot_kws={"fontsize": 7},
                    yticklabels=not same_rows)
        ax.set_ylabel("")
        ax.set_title(f"{METRIC_LABELS[metric]} ({'costa2025' if value == 'paper' else 'ours'})")
    fig.tight_layout()
    note = ill_conditioned_note(comparison, spread) if value == "mean" else ""
    subtitle(fig, [*about, f"Colours saturate at {vmax:g}, numbers do not. {note}".strip()])
    return fig


def parity_plots(predictions: Mapping[str, pd.DataFrame], titles: Mapping[str, str] | None = None,
                 ncols: int = 4, about: Sequence[str] = ()) -> Figure:
    """Predicted vs true per target (``y_true``, ``y_pred`` columns), with the y = x line and the
    panel's MAE (target unit), R² and n written inside it."""
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
        scores = regression_metrics(frame["y_true"], frame["y_pred"])
        r2 = "n/a (constant labels)" if not np.isfinite(scores["r2"]) else f"{scores['r2']:.3f}"
        ax.text(0.03, 0.97, f"MAE = {number(scores['mae'])} {unit}\nR² = {r2}\nn = {len(frame)}",
                transform=ax.transAxes, ha="left", va="top", fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0.5, "edgecolor": "0.7"})
        ax.set_xlabel(f"true {LABELS.get(target, target)} ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        ax.set_title((titles or {}).get(target, ""), fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    subtitle(fig, about)
    return fig


def attribution_plot(attribution: pd.DataFrame, metric: str = "d_mae_mad", about: Sequence[str] = ()) -> Figure:
    """Change in the test error of the all-modality model when one modality is removed or
    shuffled at test time (mean over seeds, ± sd only with ≥ 2 seeds); one panel per target."""
    targets = target_order(attribution["target"])
    ncols = min(4, len(targets))
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.0 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    for ax, target in zip(axes.flat, targets, strict=False):
        part = attribution[attribution["target"] == target]
        several = part.groupby(["modality", "mode"])["seed"].nunique().min() >= 2
        sns.barplot(part, x="modality", y=metric, hue="mode", ax=ax, errorbar="sd" if several else None,
                    capsize=0.1, err_kws={"linewidth": 0.8})
        ax.axhline(0.0, color="grey", lw=0.8)
        if part[metric].isna().all():  # e.g. MAE/MAD of constant test labels
            ax.text(0.5, 0.5, "undefined\n(constant test labels)", transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_title(LABELS.get(target, target), fontsize=10)
        ax.set_ylabel(f"Δ {METRIC_LABELS.get(metric.removeprefix('d_'), metric)} vs full input")
    fig.tight_layout()
    seeds = attribution.groupby(["target", "modality", "mode"])["seed"].nunique()
    recipes = attribution["recipe"].fillna("") if "recipe" in attribution else pd.Series("", index=attribution.index)
    named = attribution.get("combination", pd.Series("", index=attribution.index)).str.cat(
        recipes.map(lambda r: f" (recipe {r})" if r else ""))
    models = ", ".join(dict.fromkeys(named.dropna()))
    drawn = (f"attribution of {models or 'the model'}: {_span_text(seeds)} per bar"
             + (": error bars = sd" if seeds.min() >= 2 else ": no error bars (one seed)"))
    subtitle(fig, [*about, drawn])
    return fig


def _span_text(seeds: pd.Series) -> str:
    low, high = int(seeds.min()), int(seeds.max())
    count = str(low) if low == high else f"{low}–{high}"
    return f"{count} seed{'' if high == 1 else 's'}"
