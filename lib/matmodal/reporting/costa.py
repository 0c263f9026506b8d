"""costa2025 Tables 2–5 (and R²) beside the paper, from the grid's results frame.

:func:`summarise` (mean ± sd over seeds) → :func:`compare` (the paper's value and ours − paper)
→ :func:`metric_table` / :func:`write_tables` (CSV, Markdown, LaTeX); :func:`best_combinations`
and :func:`attribution_summary` feed the parity and attribution figures.
The paper's numbers are transcribed in ``matmodal/data/costa2025_reference.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import pandas as pd

from matmodal.metrics import METRIC_LABELS, METRICS
from matmodal.models.automm import COMBINATIONS, combination_label
from matmodal.models.baselines import LABELS as BASELINE_LABELS
from matmodal.reporting.tables import cell, number, write_table
from matmodal.targets import LABELS, UNITS, TargetName

TABLE_NUMBERS = {"mae": 2, "rmse": 3, "mae_mad": 4, "rmse_rmsd": 5}
LOWER_IS_BETTER = {"mae": True, "rmse": True, "mae_mad": True, "rmse_rmsd": True, "r2": False}
GROUP = ["dataset", "target", "model", "combination", "label"]


def summarise(results: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean ± sample sd (ddof=1; NaN with one seed) over seeds of every ok run, long format.

    Columns: dataset, target, model, combination, label, metric, mean, sd, n_seeds.
    """
    ok = results[results["status"] == "ok"]
    long = ok.melt(id_vars=[*GROUP, "seed"], value_vars=list(metrics), var_name="metric")
    stats = long.groupby([*GROUP, "metric"], sort=False)["value"].agg(["mean", "std", "count"])
    return stats.rename(columns={"std": "sd", "count": "n_seeds"}).reset_index()


def load_reference(path: Path | None = None) -> pd.DataFrame:
    """costa2025's Tables 2-5 (long: paper_table, metric, combination, target, value)."""
    path = path or Path(str(files("matmodal") / "data" / "costa2025_reference.csv"))
    return pd.read_csv(path, comment="#")


def compare(summary: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """``summary`` with the paper's value and ``diff`` = ours - paper where both exist."""
    out = summary.copy()
    if reference is None or reference.empty:
        out["paper"] = float("nan")
    else:
        ref = reference.rename(columns={"value": "paper"})[["metric", "combination", "target", "paper"]]
        out = out.merge(ref, on=["metric", "combination", "target"], how="left")
    out["diff"] = out["mean"] - out["paper"]
    return out


def row_order(labels: Sequence[str]) -> list[str]:
    """Baselines first (also those named by their features), then the paper's combination order."""
    named = sorted(x for x in set(labels) if str(x).startswith("Baseline:") and x not in BASELINE_LABELS.values())
    order = [*BASELINE_LABELS.values(), *named, *(combination_label(c) for c in COMBINATIONS)]
    return [x for x in order if x in set(labels)] + sorted(set(labels) - set(order))


def target_order(targets: Sequence[str]) -> list[str]:
    """Targets in the registry's order (costa2025's column order first)."""
    rank = {name.value: i for i, name in enumerate(TargetName)}
    return sorted(dict.fromkeys(targets), key=lambda t: (rank.get(t, len(rank)), t))


def metric_table(comparison: pd.DataFrame, metric: str, digits: int = 3, bold: bool = True) -> pd.DataFrame:
    """Wide display table of one metric: rows = models, columns = target labels; with paper
    columns (``paper``, ``Δ``) for targets the paper reports. The best mean per target over
    *every* row (baselines, fusion and ensembles included, so a baseline that wins is seen to win)
    is wrapped in ``**`` when ``bold``."""
    part = comparison[comparison["metric"] == metric]
    columns: dict[str, pd.Series] = {}
    for target in target_order(part["target"]):
        rows = part[part["target"] == target].set_index("label")
        head = f"{LABELS.get(target, target)} ({UNITS.get(target, '')})" if metric in ("mae", "rmse") else LABELS.get(target, target)
        ours = pd.Series({k: cell(r["mean"], r["sd"], digits) for k, r in rows.iterrows()})
        models = rows["mean"].dropna()
        if bold and len(models):
            best = models.idxmin() if LOWER_IS_BETTER[metric] else models.idxmax()
            ours[best] = f"**{ours[best]}**"
        columns[head] = ours
        if rows["paper"].notna().any():
            columns[f"{head} paper"] = rows["paper"].map(lambda v: number(v, digits))
            columns[f"{head} Δ"] = rows["diff"].map(lambda v: number(v, digits, sign=True))
    table = pd.DataFrame(columns)
    table = table.reindex(row_order(table.index))
    table.index.name = "Modalities"
    return table.fillna("")


def write_tables(comparison: pd.DataFrame, folder: Path, prefix: str = "", digits: int = 3) -> dict[str, list[Path]]:
    """Tables 2-5 (MAE, RMSE, MAE/MAD, RMSE/RMSD) plus R², each as CSV/MD/LaTeX."""
    written = {}
    for metric in METRICS:
        table_number = TABLE_NUMBERS.get(metric)
        name = f"table{table_number}_{metric}" if table_number else f"table_{metric}"
        paper = f" (costa2025 Table {table_number} beside ours)" if table_number else ""
        part = comparison[comparison["metric"] == metric]
        low, high = (part["n_seeds"].min(), part["n_seeds"].max()) if len(part) else (0, 0)
        seeds = f"{low}" if low == high else f"{low}–{high}"
        caption = f"{METRIC_LABELS[metric]} on the test split, mean ± sd over seeds ({seeds} per cell){paper}; bold: the best row of each column, baselines included."
        written[metric] = write_table(part, metric_table(comparison, metric, digits), folder,
                                      f"{prefix}{name}", caption)
    return written


def best_combinations(summary: pd.DataFrame, metric: str = "mae") -> pd.Series:
    """Per target, the AutoMM combination with the best mean ``metric``."""
    part = summary[(summary["metric"] == metric) & (summary["model"] == "automm")].dropna(subset=["mean"])
    pick = part.groupby("target")["mean"].idxmin() if LOWER_IS_BETTER[metric] else part.groupby("target")["mean"].idxmax()
    return part.loc[pick].set_index("target")["combination"]


def attribution_summary(attribution: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the largest modality combination per target (the all-modality model when it ran)
    and their mean/sd over seeds of the change in MAE, MAE/MAD and R² per modality and mode."""
    if attribution.empty or "d_mae" not in attribution:
        return attribution, pd.DataFrame()
    rows = attribution.dropna(subset=["d_mae"]).copy()
    size = rows["combination"].str.count(r"\+")
    rows = rows[size == size.groupby(rows["target"]).transform("max")]
    stats = rows.groupby(["target", "combination", "modality", "mode"])[["d_mae", "d_mae_mad", "d_r2"]]
    return rows, stats.agg(["mean", "std"])
