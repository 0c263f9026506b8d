"""massa2024 tables from protocol scores, with the paper's numbers beside ours.

Inputs are the long score frames of :func:`matmodal.protocols.run_protocol` (one row per run ×
fold × model stage × split). :func:`summarise` averages the folds of each run, then gives the
mean ± sd over runs; the tables put the paper's R²/RMSE next to them (massa2024 Table 1 for
CLIP, Fig. 2 for the stacked model's stages, transcribed in ``matmodal/data/massa2024_*.csv``; the
paper's data are ECD images of 592 FCC crystals, so only the ECD rows are like for like).
:func:`beside_costa_grid` puts both studies side by side on one dataset and test split.
Figures of these tables: :mod:`matmodal.plots.massa`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from matmodal.paths import machine_neutral
from matmodal.reporting.tables import write_table
from matmodal.targets import LABELS, UNITS


def _reference(name: str, **dtypes: type) -> pd.DataFrame:
    """One transcribed table of massa2024 (package data)."""
    return pd.read_csv(Path(str(files("matmodal") / "data" / name)), comment="#", dtype=dtypes or None)


KEYS = ["dataset", "target", "family", "stage", "text_level", "split"]
STAGE_ORDER = ["mean", "clip", "image", "text", "image+text"]
SPLIT_ORDER = ["train", "val", "test", "test_ensemble"]

def paper_clip() -> pd.DataFrame:
    """massa2024 Table 1: target, run (1-3 or mean), split (val, test), r2, rmse."""
    return _reference("massa2024_table1_clip.csv", run=str)


def paper_stacked() -> pd.DataFrame:
    """massa2024 Fig. 2: target, text_level, stage, split (train/val/test), r2, rmse.

    The paper's 'Image' stage is listed once per text level (independent image-only runs)."""
    return _reference("massa2024_fig2_stacked.csv")


RESULT_KEY = ("dataset", "target", "family", "stage", "text_level", "run", "fold", "split")


def load_scores(folder: Path, pattern: str = "scores_*.parquet") -> tuple[pd.DataFrame, list[Path]]:
    """Every score file of notebook 07 in ``folder``, one row per result.

    Notebook 07 writes one file per dataset list (``scores_<datasets>.parquet``), so a rerun with
    another list leaves the older file beside the new one, and the same (dataset, target, family,
    stage, text level, run, fold, split) result appears twice. The newest file's row is kept
    (files read oldest first by modification time), so counts and spreads are not doubled.
    """
    paths = sorted(folder.glob(pattern), key=lambda path: (path.stat().st_mtime, path.name))
    if not paths:
        return pd.DataFrame(), []
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    key = [column for column in RESULT_KEY if column in frame.columns]
    return frame.drop_duplicates(subset=key, keep="last").reset_index(drop=True), paths


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


COLUMNS = ["dataset", "target", "label", "source", "r2", "rmse", "n_test"]


def beside_costa_grid(summary: pd.DataFrame, grid: pd.DataFrame, seed: int, where: str = "the runs folder") -> tuple[pd.DataFrame, str]:
    """Test R²/RMSE of both studies per (dataset, target), and ``""`` — or an empty frame and the
    reason it is empty (no grid runs, none ok at ``seed`` on these datasets, no shared target)."""
    empty = pd.DataFrame(columns=COLUMNS)
    if summary.empty:
        return empty, "no massa2024 scores (run notebook 07 first)"
    if grid.empty:
        return empty, f"no costa2025 grid runs under {where} (run notebook 04 first)"
    datasets = sorted(summary["dataset"].unique())
    ok = grid[(grid["status"] == "ok") & (grid["seed"] == seed) & grid["dataset"].isin(datasets)]
    if ok.empty:
        return empty, (f"the costa2025 grid under {where} has no ok seed-{seed} run on {', '.join(datasets)} "
                       f"(it has: {', '.join(sorted(grid['dataset'].unique()))})")
    ours = summary[summary["split"].isin(["test", "test_ensemble"])]
    ours = ours.assign(label=ours["family"] + ": " + ours["stage"]
                       + ours["text_level"].map(lambda t: f" ({t})" if t else "") + " [" + ours["split"] + "]")
    beside = pd.concat([
        ok.assign(source="costa2025 grid (AutoGluon)")[COLUMNS],
        ours.assign(source="massa2024 models").rename(columns={"r2_mean": "r2", "rmse_mean": "rmse"})[COLUMNS[:-1]],
    ], ignore_index=True)
    beside = beside[beside["target"].isin(ours["target"].unique())
                    & beside["target"].isin(ok["target"].unique())]
    if beside.empty:
        return empty, (f"no target in both: grid {sorted(ok['target'].unique())}, "
                       f"massa2024 {sorted(ours['target'].unique())}")
    return beside.sort_values(["dataset", "target", "source", "label"]).reset_index(drop=True), ""


BACKBONE_COLUMNS = ("dataset", "family", "stage", "clip_pretrained", "clip_source", "image_backbone",
                    "image_pretrained", "image_source", "text_backbone", "text_model_type", "text_pretrained",
                    "text_source", "tokenizer_source")


def as_ran(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with ``text_backbone`` naming what ran: score files written before
    :mod:`matmodal.models.stacked` said so name the requested ``roberta-base`` although their
    ``text_source`` is the MiniLM checkpoint (or its architecture); those read
    ``all-MiniLM-L6-v2 (in place of roberta-base)``."""
    if not {"text_backbone", "text_source"} <= set(scores.columns):
        return scores
    name, source = scores["text_backbone"].astype("string"), scores["text_source"].astype("string").str.lower()
    stale = source.str.contains("minilm", na=False) & ~name.str.contains("MiniLM", na=True)
    if not stale.any():
        return scores
    out = scores.copy()
    out.loc[stale, "text_backbone"] = "all-MiniLM-L6-v2 (in place of " + name[stale] + ")"
    return out


def backbone_table(scores: pd.DataFrame, project: Path | None = None) -> pd.DataFrame:
    """Which backbone each family and stage ran, pretrained or not, from where (paths written
    relative to the project and the home folder, so the committed table names no machine)."""
    columns = [c for c in BACKBONE_COLUMNS if c in scores.columns]
    table = as_ran(scores)[columns].drop_duplicates().reset_index(drop=True) if len(scores) else pd.DataFrame()
    root = project or Path.cwd().parent
    return table.map(lambda v: machine_neutral(v, root) if isinstance(v, str) else v)


def _span(values: Sequence[int]) -> str:
    values = sorted(set(values))
    return "–" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _epochs_run(cells: pd.Series) -> str:
    """``"9+7", "30+10"`` (head + full epochs run, per fold) as ``9–30 + 7–10``."""
    pairs = [tuple(int(x) for x in str(c).split("+")) for c in cells.dropna() if str(c).replace("+", "").isdigit()]
    if not pairs:
        return "–"
    return " + ".join(_span([p[i] for p in pairs if len(p) > i]) for i in range(max(len(p) for p in pairs)))


def _backbones(part: pd.DataFrame) -> str:
    """``pretrained: image efficientnet_lite0, text all-MiniLM-L6-v2 · not pretrained: ...`` of the rows."""
    found: dict[bool, dict[str, None]] = {True: {}, False: {}}
    for kind in ("image", "text", "clip"):
        name, flag = f"{kind}_backbone", f"{kind}_pretrained"
        if name not in part or flag not in part:
            continue
        for backbone, pretrained in part[[name, flag]].dropna().drop_duplicates().itertuples(index=False):
            found[bool(pretrained)][f"{kind} {backbone}"] = None
    parts = [f"pretrained: {', '.join(found[True])}" if found[True] else "no pretrained backbone",
             f"not pretrained: {', '.join(found[False])}" if found[False] else ""]
    return " · ".join(p for p in parts if p)


def protocol_lines(scores: pd.DataFrame, dataset: str | None = None, target: str | None = None,
                   families: Sequence[str] | None = None) -> list[str]:
    """Subtitle lines of a massa2024 figure, from the score rows it draws: dataset and target,
    n_test, runs × folds (error bars or not), epochs run (head + full, per fold) and which
    backbones were pretrained."""
    part = scores
    for column, value in (("dataset", dataset), ("target", target)):
        if value is not None:
            part = part[part[column] == value]
    if families is not None:
        part = part[part["family"].isin(families)]
    if part.empty:
        return []
    runs = sorted(part["run"].unique())
    folds = part.loc[part["fold"] >= 0, "fold"].nunique()
    n_test = part.loc[part["split"] == "test", "n"].astype(int)
    what = ", ".join(f"{d} {LABELS.get(t, t)}" for d, t in part[["dataset", "target"]].drop_duplicates().itertuples(index=False))
    bars = f"{len(runs)} runs: error bars = sd over runs" if len(runs) > 1 else "1 run: no error bars"
    models = as_ran(part[part["family"] != "baseline"])
    return [f"{what} · n_test = {_span(n_test)} · {bars} (each the average of {folds} fold models)",
            f"epochs run (head + full, early stopping): {_epochs_run(models.get('epochs', pd.Series(dtype=str)))} · "
            f"{_backbones(models)}"]
