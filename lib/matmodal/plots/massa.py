"""massa2024 tables and figures from protocol scores, with the paper's numbers beside ours.

Inputs are the long score frames of :func:`matmodal.protocols.run_protocol` (one row per run ×
fold × model stage × split). :func:`summarise` averages the folds of each run, then gives the
mean ± sd over runs; the tables put the paper's R²/RMSE next to them (massa2024 Table 1 for
CLIP, Fig. 2 for the stacked model's stages; the paper's data are ECD images of 592 FCC
crystals, so only the ECD rows are like for like).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from io import StringIO
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from matmodal.evaluation import write_table
from matmodal.plots.metrics import save_figure
from matmodal.targets import LABELS, UNITS

KEYS = ["dataset", "target", "family", "stage", "text_level", "split"]
STAGE_ORDER = ["mean", "clip", "image", "text", "image+text"]
SPLIT_ORDER = ["train", "val", "test", "test_ensemble"]

# massa2024 Table 1 (CLIP, text "All"): R²/RMSE per run (#1-#3) and their mean; val = folds average.
_TABLE1 = """target,run,split,r2,rmse
e_form,1,val,0.91,0.21
e_form,1,test,0.72,0.36
e_form,2,val,0.88,0.23
e_form,2,test,0.89,0.24
e_form,3,val,0.77,0.35
e_form,3,test,0.67,0.35
e_form,mean,val,0.85,0.26
e_form,mean,test,0.76,0.31
e_fermi,1,val,0.90,0.89
e_fermi,1,test,0.87,0.90
e_fermi,2,val,0.90,0.88
e_fermi,2,test,0.82,1.25
e_fermi,3,val,0.90,0.86
e_fermi,3,test,0.51,2.07
e_fermi,mean,val,0.90,0.86
e_fermi,mean,test,0.73,1.41
k_vrh,1,val,0.91,21.9
k_vrh,1,test,0.88,24.4
k_vrh,2,val,0.88,24.1
k_vrh,2,test,0.80,35.3
k_vrh,3,val,0.92,21.1
k_vrh,3,test,0.80,36.5
k_vrh,mean,val,0.90,22.4
k_vrh,mean,test,0.83,32.1
"""

# massa2024 Fig. 2 (stacked model stages): R²/RMSE for train, val, test per text level and stage.
_FIG2 = {
    "e_form": ["0.71/0.42 0.62/0.36 0.72/0.17", "0.88/0.27 0.65/0.35 0.64/0.29", "0.95/0.17 0.59/0.38 0.68/0.27",
               "0.61/0.49 0.55/0.40 0.49/0.35", "0.94/0.19 0.75/0.30 0.84/0.19", "0.94/0.19 0.68/0.33 0.78/0.23",
               "0.61/0.49 0.53/0.40 0.65/0.29", "0.92/0.22 0.71/0.32 0.60/0.31", "0.95/0.17 0.70/0.32 0.73/0.25"],
    "e_fermi": ["0.77/1.47 0.63/1.76 0.60/1.56", "0.91/0.92 0.71/1.55 0.86/0.92", "0.99/0.31 0.78/1.35 0.88/0.86",
                "0.82/1.30 0.72/1.53 0.63/1.50", "0.92/0.87 0.84/1.16 0.86/0.92", "0.97/0.53 0.84/1.16 0.87/0.89",
                "0.80/1.37 0.64/1.73 0.56/1.64", "0.94/0.75 0.77/1.38 0.87/0.89", "0.97/0.53 0.80/1.29 0.84/0.99"],
    "k_vrh": ["0.77/36.61 0.84/31.04 0.84/28.09", "0.90/24.14 0.81/33.82 0.82/29.79",
              "0.97/13.22 0.87/27.98 0.87/25.32", "0.80/34.14 0.85/30.05 0.84/28.09",
              "0.94/18.70 0.76/38.01 0.83/28.95", "0.95/17.07 0.81/33.82 0.81/30.61",
              "0.79/34.98 0.83/31.99 0.79/32.18", "0.80/34.14 0.75/38.80 0.75/35.11",
              "0.92/21.59 0.75/38.80 0.71/37.81"],
}


def paper_clip() -> pd.DataFrame:
    """massa2024 Table 1: target, run (1-3 or mean), split (val, test), r2, rmse."""
    return pd.read_csv(StringIO(_TABLE1), dtype={"run": str})


def paper_stacked() -> pd.DataFrame:
    """massa2024 Fig. 2: target, text_level, stage, split (train/val/test), r2, rmse.

    The paper's 'Image' stage is listed once per text level (independent image-only runs)."""
    rows = []
    for target, cells in _FIG2.items():
        for k, cell in enumerate(cells):
            level, stage = ("formula", "keywords", "all")[k // 3], ("image", "text", "image+text")[k % 3]
            for split, pair in zip(("train", "val", "test"), cell.split(), strict=True):
                r2, rmse = map(float, pair.split("/"))
                rows.append({"target": target, "text_level": level, "stage": stage, "split": split,
                             "r2": r2, "rmse": rmse})
    return pd.DataFrame(rows)


def summarise(scores: pd.DataFrame, metrics: Sequence[str] = ("r2", "rmse"),
              keys: Sequence[str] = KEYS) -> pd.DataFrame:
    """Mean ± sd over runs of the per-run fold averages: ``keys`` + ``<metric>_mean``/``_sd``, runs."""
    keys = list(keys)
    per_run = scores.groupby([*keys, "run"], dropna=False)[list(metrics)].mean().reset_index()
    stats = per_run.groupby(keys, dropna=False)[list(metrics)].agg(["mean", "std"])
    stats.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in stats.columns]
    stats["runs"] = per_run.groupby(keys, dropna=False)["run"].nunique()
    return stats.reset_index()


def _cell(frame: pd.DataFrame, digits: int) -> str:
    """``R² ± sd / RMSE ± sd`` of one summary row (sd omitted with one run)."""
    if frame.empty:
        return "–"
    row = frame.iloc[0]

    def one(m: str, d: int) -> str:
        sd = row[f"{m}_sd"]
        return f"{row[f'{m}_mean']:.{d}f}" + (f"±{sd:.{d}f}" if np.isfinite(sd) else "")

    return f"{one('r2', 2)} / {one('rmse', digits)}"


def _paper_cell(paper: pd.DataFrame) -> str:
    return "–" if paper.empty else f"{paper.r2.iloc[0]:.2f} / {paper.rmse.iloc[0]:g}"


def _digits(target: str) -> int:
    return 1 if UNITS.get(target) == "GPa" else 3


def stage_table(summary: pd.DataFrame, dataset: str, target: str, family: str = "stacked") -> pd.DataFrame:
    """Fig. 2 layout for one dataset/target: rows (text level, stage), columns = splits (ours, paper).

    ``family``: the stacked family shown (``stacked``, or a control such as ``stacked_random``);
    the mean baseline is always kept."""
    ours = summary[(summary.dataset == dataset) & (summary.target == target)
                   & summary.family.isin([family, "baseline"])]
    paper = paper_stacked()
    paper = paper[paper.target == target]
    rows = {}
    for _, key in ours[["stage", "text_level"]].drop_duplicates().iterrows():
        label = f"{key.stage} ({key.text_level})" if key.text_level else key.stage
        cells = {}
        for split in ("train", "val", "test", "test_ensemble"):
            part = ours[(ours.stage == key.stage) & (ours.text_level == key.text_level) & (ours.split == split)]
            cells[split] = _cell(part, _digits(target))
            ref = paper[(paper.stage == key.stage) & (paper.split == split)
                        & (paper.text_level == (key.text_level or "formula"))]
            if split != "test_ensemble":
                cells[f"{split} paper"] = _paper_cell(ref)
        rows[label] = cells
    order = sorted(rows, key=lambda s: (STAGE_ORDER.index(s.split(" ")[0]) if s.split(" ")[0] in STAGE_ORDER else 9, s))
    table = pd.DataFrame(rows).T.reindex(order)
    table.index.name = f"{LABELS.get(target, target)}: R² / RMSE [{UNITS.get(target, '')}]"
    return table


def clip_table(scores: pd.DataFrame, dataset: str, target: str, family: str = "clip") -> pd.DataFrame:
    """Table 1 layout: per run the validation-folds average and test, then the mean; paper beside.

    ``family``: ``clip`` (massa2024's CLIP) or a CLIP-style family such as ``clip_towers``."""
    part = scores[(scores.dataset == dataset) & (scores.target == target) & (scores.family == family)]
    per_run = part.groupby(["run", "split"])[["r2", "rmse"]].mean()
    paper = paper_clip()
    paper = paper[paper.target == target].set_index(["run", "split"])
    digits = _digits(target)
    rows = {}
    for run in sorted(part.run.unique()):
        for split in ("val", "test"):
            ours = per_run.loc[(run, split)] if (run, split) in per_run.index else None
            ref = paper.loc[(str(run + 1), split)] if (str(run + 1), split) in paper.index else None
            rows[f"#{run + 1} {split}"] = {
                "ours R² / RMSE": "–" if ours is None else f"{ours.r2:.2f} / {ours.rmse:.{digits}f}",
                "paper R² / RMSE": "–" if ref is None else f"{ref.r2:.2f} / {ref.rmse:g}"}
    for split in ("val", "test"):
        mean = per_run.xs(split, level="split") if split in per_run.index.get_level_values("split") else None
        ref = paper.loc[("mean", split)] if ("mean", split) in paper.index else None
        rows[f"⟨#⟩ {split}"] = {
            "ours R² / RMSE": "–" if mean is None else
            f"{mean.r2.mean():.2f}±{mean.r2.std(ddof=1) if len(mean) > 1 else 0:.2f} / {mean.rmse.mean():.{digits}f}",
            "paper R² / RMSE": "–" if ref is None else f"{ref.r2:.2f} / {ref.rmse:g}"}
    table = pd.DataFrame(rows).T
    table.index.name = f"{family} {LABELS.get(target, target)} [{UNITS.get(target, '')}]"
    return table


def trial_table(trials: pd.DataFrame, target: str, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """massa2024 Table 2 layout: per trial its hyper-parameters, ours (val = folds average, test =
    fold-model average; mean ± sd over runs) and the paper's values beside them. The paper's
    trials are for the formation energy (eV/atom): R² compares across targets, RMSE only there.

    ``trials``: notebook 07's ``trials_*.parquet`` (protocol scores + a ``trial`` column).
    ``reference``: :data:`matmodal.protocols.TRIALS` (default).
    """
    if reference is None:
        from matmodal.protocols import TRIALS as reference
    part = trials[(trials.target == target) & (trials.family == "clip") & trials.split.isin(["val", "test"])]
    if part.empty:
        raise ValueError(f"no CLIP trial scores for target {target!r}")
    stats = summarise(part, keys=["trial", "split"]).set_index(["trial", "split"])
    digits = _digits(target)
    rows = {}
    for trial in sorted(part.trial.unique()):
        ref = reference.loc[trial] if trial in reference.index else None
        row = {"batch": "–", "lr": "–", "patience": "–", "patch": "–"} if ref is None else {
            "batch": int(ref.batch_size), "lr": f"{ref.lr:g}", "patience": int(ref.patience), "patch": int(ref.patch)}
        for split in ("val", "test"):
            cell = stats.loc[[(trial, split)]] if (trial, split) in stats.index else pd.DataFrame()
            row[f"{split} ours"] = _cell(cell, digits)
            row[f"{split} paper"] = "–" if ref is None else \
                f"{ref[f'paper_{split}_r2']:.2f} / {ref[f'paper_{split}_rmse']:g}"
        rows[trial] = row
    table = pd.DataFrame(rows).T
    table.index.name = (f"CLIP trials, ours {LABELS.get(target, target)} [{UNITS.get(target, '')}]; "
                        "paper: formation energy [eV/atom]")
    return table


def cross_table(summary: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Both model families (and the mean baseline) on every dataset × target: R² / RMSE, mean ± sd."""
    part = summary[summary.split == split]
    rows: dict[str, dict[str, str]] = {}
    for _, key in part[["family", "stage", "text_level"]].drop_duplicates().iterrows():
        label = f"{key.family}: {key.stage}" + (f" ({key.text_level})" if key.text_level else "")
        rows[label] = {}
        for (dataset, target), sub in part.groupby(["dataset", "target"]):
            sel = sub[(sub.family == key.family) & (sub.stage == key.stage) & (sub.text_level == key.text_level)]
            rows[label][f"{dataset} {LABELS.get(target, target)}"] = _cell(sel, _digits(target))
    table = pd.DataFrame(rows).T.fillna("–")
    table.index.name = f"{split}: R² / RMSE"
    return table


def alignment_table(scores: pd.DataFrame) -> pd.DataFrame:
    """What the contrastive alignment of the CLIP-style families did, per dataset/target/family:
    validation image→text top-1 retrieval before/after (chance = 1/n_val) and the last
    alignment loss, mean over runs × folds (one row per fold model in ``scores``' train split)."""
    if "aligned" not in scores.columns:
        return pd.DataFrame()
    part = scores[(scores.split == "train") & scores.aligned.eq(True)].copy()
    if part.empty:
        return pd.DataFrame()
    part["last_align_loss"] = part.align_curve.map(lambda c: json.loads(c)[-1] if json.loads(c) else np.nan)
    columns = ["val_top1_before", "val_top1_after", "val_chance", "last_align_loss"]
    table = part.groupby(["dataset", "target", "family", "text_level"])[columns].mean()
    table["fold_models"] = part.groupby(["dataset", "target", "family", "text_level"]).size()
    return table.reset_index()


def write(table: pd.DataFrame, long: pd.DataFrame, folder: Path, stem: str, caption: str) -> list[Path]:
    """CSV (numbers), Markdown and LaTeX of a display table (see :func:`matmodal.evaluation.write_table`)."""
    return write_table(long, table, folder, stem, caption)


def stage_bars(summary: pd.DataFrame, dataset: str, targets: Sequence[str], metric: str = "r2",
               family: str = "stacked") -> Figure:
    """R² (or RMSE) per stage and split, error bars = sd over runs; paper Fig. 2 values as crosses.

    Bars: the mean baseline, ``family``'s stages and massa2024's CLIP when present."""
    fig, axes = plt.subplots(1, len(targets), figsize=(6.4 * len(targets), 4.2), squeeze=False)
    paper = paper_stacked()
    for ax, target in zip(axes[0], targets, strict=True):
        part = summary[(summary.dataset == dataset) & (summary.target == target)
                       & summary.family.isin([family, "baseline", "clip"])
                       & summary.split.isin(["train", "val", "test"])].copy()
        part["model"] = part.stage + part.text_level.map(lambda t: f"\n({t})" if t else "")
        order = sorted(part.model.unique(), key=lambda m: STAGE_ORDER.index(m.split("\n")[0]))
        sns.barplot(part, x="model", y=f"{metric}_mean", hue="split", order=order,
                    hue_order=["train", "val", "test"], ax=ax, palette="Set2")
        for bar_group, split in zip(ax.containers, ["train", "val", "test"], strict=False):
            sds = part.set_index("model").query("split == @split")[f"{metric}_sd"].reindex(order)
            centres = [b.get_x() + b.get_width() / 2 for b in bar_group]
            heights = [b.get_height() for b in bar_group]
            ax.errorbar(centres, heights, yerr=sds.fillna(0).to_numpy(), fmt="none", ecolor="k", lw=1)
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
    fig.suptitle("Stacked model stages (bars: ours, mean ± sd over runs; ×: massa2024 Fig. 2, ECD data)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def curves_frame(scores: pd.DataFrame, family: str, stage: str, text_level: str = "", run: int = 0,
                 ) -> pd.DataFrame:
    """Per-epoch losses of every fold of one run: fold, epoch (counted across stages), stage, losses."""
    part = scores[(scores.family == family) & (scores.stage == stage) & (scores.text_level == text_level)
                  & (scores.run == run) & (scores.split == "train")]
    rows = []
    for fold, text in zip(part.fold, part.curves, strict=True):
        epoch = 0
        for curve in json.loads(text):
            for train, val in zip(curve["train"], curve["val"], strict=True):
                epoch += 1
                rows.append({"fold": fold, "epoch": epoch, "stage": curve["stage"], "train_loss": train,
                             "val_loss": val})
    return pd.DataFrame(rows)


def learning_curves(histories: pd.DataFrame, title: str = "") -> Figure:
    """Train/validation loss (standardised MSE) per epoch, one line per fold (massa2024 Fig. 6)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    long = histories.melt(id_vars=["fold", "epoch"], value_vars=["train_loss", "val_loss"], var_name="curve")
    sns.lineplot(long, x="epoch", y="value", hue="fold", style="curve", ax=ax, palette="tab10")
    ax.set(yscale="log", ylabel="MSE (standardised target)", title=title)
    fig.tight_layout()
    return fig


def save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """PNG + PDF (see :func:`matmodal.plots.metrics.save_figure`)."""
    paths = save_figure(fig, folder, stem)
    plt.close(fig)
    return paths
