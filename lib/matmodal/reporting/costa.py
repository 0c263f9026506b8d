"""costa2025 Tables 2–5 (and R²) beside the paper, from the grid's results frame.

:func:`summarise` (mean ± sd over seeds) → :func:`compare` (the paper's value and ours − paper)
→ :func:`metric_table` / :func:`write_tables` (CSV, Markdown, LaTeX); :func:`best_combinations`
and :func:`attribution_summary` feed the parity and attribution figures.
:func:`grid_provenance` says what the figures show (dataset, n_test, seeds, epochs, pretrained
backbones: their subtitle) and whether the grid is a smoke run; :func:`label_spread` and
:func:`ill_conditioned` find targets whose scaled metrics are dominated by a tiny MAD.
The paper's numbers are transcribed in ``matmodal/data/costa2025_reference.csv``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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
# families trained by epochs (AutoMM, the fusion MLPs); mean, GBM and ensembles have none
EPOCH_MODELS = ("automm", "fusion_mlp", "fusion_late")
# a scaled error this many times the mean predictor's: the MAD / RMSD of the test labels is tiny
# (e.g. Mag/vol on the 16 Alexandria test rows, almost all 0), so the ratio says nothing about the model
ILL_CONDITIONED = 10.0
SCALED = ("mae_mad", "rmse_rmsd")
MODALITIES = ("tabular", "image", "text")


def _pairs(cell: object) -> list[tuple[str, str]]:
    """``"image=tf_efficientnet_lite0; text=..."`` (a results-frame cell) as (kind, value) pairs."""
    return [tuple(part.split("=", 1)) for part in str(cell or "").split("; ") if "=" in part]  # type: ignore[misc]


def _ints(column: pd.Series) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in column.dropna()}))


def _span(values: Sequence[int]) -> str:
    values = sorted(set(values))
    return "–" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


@dataclass(frozen=True)
class GridProvenance:
    """What a grid's figures show, read from its runs' ``result.json`` (ok runs only).

    ``epochs``: of the epoch-trained families (:data:`EPOCH_MODELS`); ``pretrained``: per
    modality, the backbone names that ran pretrained (True) or from scratch (False)."""

    dataset: str
    n_test: tuple[int, ...]
    n_train: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: tuple[int, ...]
    pretrained: tuple[tuple[str, str, bool], ...]  # (modality, backbone, pretrained)

    @property
    def smoke(self) -> bool:
        """One seed and at most one epoch: it shows that the pipeline runs, not what models can do."""
        return len(self.seeds) <= 1 and max(self.epochs, default=0) <= 1

    @property
    def seeds_text(self) -> str:
        n = len(self.seeds)
        listed = ", ".join(map(str, self.seeds))
        return f"1 seed ({listed}): no error bars" if n == 1 else f"{n} seeds ({listed}): error bars = sd"

    def backbones_text(self) -> str:
        """``pretrained: image tf_efficientnet_lite0, text all-MiniLM-L6-v2 · not pretrained: tabular numerical_mlp``
        (each backbone once, however its families spell it)."""
        def names(flag: bool) -> str:
            found: dict[str, str] = {}
            for kind, name, pretrained in self.pretrained:
                short = name.split("/")[-1].split(",")[0]
                key = f"{kind}:" + re.sub(r"[^a-z0-9]", "", short.lower()).removeprefix("tf")
                if pretrained == flag:
                    found.setdefault(key, f"{kind} {short}")
            return ", ".join(found.values())

        parts = [f"pretrained: {names(True)}" if names(True) else "no pretrained backbone",
                 f"not pretrained: {names(False)}" if names(False) else ""]
        return " · ".join(p for p in parts if p)

    def lines(self) -> list[str]:
        """Two subtitle lines: data and seeds; epochs and backbones."""
        smoke = " · SMOKE RUN (1 seed, ≤ 1 epoch: not a result)" if self.smoke else ""
        first = (f"{self.dataset} · n_test = {_span(self.n_test)} (n_train = {_span(self.n_train)}) per seed · "
                 f"{self.seeds_text}{smoke}")
        epochs = f"epochs {_span(self.epochs)} (AutoMM/MLP, early stopping)" if self.epochs else "no epoch-trained model"
        return [first, f"{epochs} · {self.backbones_text()}"]


def grid_provenance(results: pd.DataFrame) -> GridProvenance:
    """:class:`GridProvenance` of a results frame (:func:`matmodal.runs.results_frame`; ok runs)."""
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise ValueError("no ok run: nothing to describe")
    trained = ok[ok["model"].isin(EPOCH_MODELS)]
    found: dict[tuple[str, str, bool], None] = {}
    for names, flags in zip(ok["backbones"], ok["pretrained"], strict=True):
        for (kind, name), (_, flag) in zip(_pairs(names), _pairs(flags), strict=True):
            if kind in MODALITIES:
                found[(kind, name, flag == "True")] = None
    return GridProvenance(
        dataset=", ".join(dict.fromkeys(ok["dataset"])), n_test=_ints(ok["n_test"]), n_train=_ints(ok["n_train"]),
        seeds=_ints(ok["seed"]), epochs=_ints(trained["epochs"]), pretrained=tuple(found))


def label_spread(results: pd.DataFrame) -> pd.DataFrame:
    """Per target, the MAD and RMSD of the test labels (the scaled metrics' denominators, target
    unit), mean over seeds: ``MAE / (MAE/MAD)`` of any ok run (all runs of a seed share its test split)."""
    ok = results[(results["status"] == "ok")].dropna(subset=["mae", "mae_mad", "rmse", "rmse_rmsd"])
    per_seed = ok.assign(mad=ok["mae"] / ok["mae_mad"], rmsd=ok["rmse"] / ok["rmse_rmsd"]).groupby(
        ["target", "seed"])[["mad", "rmsd"]].median()
    return per_seed.groupby("target").mean().reindex(target_order(per_seed.index.get_level_values(0)))


def ill_conditioned(comparison: pd.DataFrame, threshold: float = ILL_CONDITIONED) -> dict[str, float]:
    """Targets whose largest mean scaled error (any row, baselines included) exceeds ``threshold``
    (the mean predictor scores ≈ 1): ``{target: largest value}``, in target order."""
    part = comparison[comparison["metric"].isin(SCALED)]
    worst = part.groupby("target")["mean"].max()
    return {t: float(worst[t]) for t in target_order(worst.index) if worst[t] > threshold}


def ill_conditioned_note(comparison: pd.DataFrame, spread: pd.DataFrame | None = None) -> str:
    """One sentence naming the ill-conditioned targets, their largest scaled error and (with
    ``spread``, :func:`label_spread`) the tiny MAD of their test labels, and the targets whose
    scaled errors are undefined (constant test labels); "" when there are none."""
    worst = ill_conditioned(comparison)
    part = comparison[comparison["metric"].isin(SCALED)]
    undefined = [t for t, values in part.groupby("target")["mean"] if values.isna().all()]
    notes = []
    if worst:
        parts = []
        for target, value in worst.items():
            mad = "" if spread is None or target not in spread.index else (
                f", MAD of the test labels {number(spread.loc[target, 'mad'], 3)} {UNITS.get(target, '')}".rstrip())
            parts.append(f"{LABELS.get(target, target)} (up to {value:,.0f}{mad})")
        notes.append(f"Ill-conditioned: {'; '.join(parts)}: the test labels barely vary, so the scaled errors "
                     f"of {'this target' if len(parts) == 1 else 'these targets'} measure the tiny MAD, not the model.")
    if undefined:
        names = ", ".join(LABELS.get(t, t) for t in target_order(undefined))
        notes.append(f"Undefined: {names} (constant test labels, MAD = 0).")
    return " ".join(notes)


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


def write_tables(comparison: pd.DataFrame, folder: Path, prefix: str = "", digits: int = 3,
                 spread: pd.DataFrame | None = None) -> dict[str, list[Path]]:
    """Tables 2-5 (MAE, RMSE, MAE/MAD, RMSE/RMSD) plus R², each as CSV/MD/LaTeX. The scaled
    tables' caption names ill-conditioned targets and (with ``spread``) their tiny test MAD."""
    note = ill_conditioned_note(comparison, spread)
    written = {}
    for metric in METRICS:
        table_number = TABLE_NUMBERS.get(metric)
        name = f"table{table_number}_{metric}" if table_number else f"table_{metric}"
        paper = f" (costa2025 Table {table_number} beside ours)" if table_number else ""
        part = comparison[comparison["metric"] == metric]
        low, high = (part["n_seeds"].min(), part["n_seeds"].max()) if len(part) else (0, 0)
        seeds = f"{low}" if low == high else f"{low}–{high}"
        caption = f"{METRIC_LABELS[metric]} on the test split, mean ± sd over seeds ({seeds} per cell){paper}; bold: the best row of each column, baselines included."
        if note and metric in SCALED:
            caption += f" {note}"
        written[metric] = write_table(part, metric_table(comparison, metric, digits), folder,
                                      f"{prefix}{name}", caption)
    return written


def best_combinations(summary: pd.DataFrame, metric: str = "mae") -> pd.Series:
    """Per target, the AutoMM combination with the best mean ``metric``."""
    part = summary[(summary["metric"] == metric) & (summary["model"] == "automm")].dropna(subset=["mean"])
    pick = part.groupby("target")["mean"].idxmin() if LOWER_IS_BETTER[metric] else part.groupby("target")["mean"].idxmax()
    return part.loc[pick].set_index("target")["combination"]


def attribution_summary(attribution: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of one combination and recipe per target, the largest (the all-modality model when it
    ran; ties: the one with the most seeds, then by name), and their mean/sd over seeds of the
    change in MAE, MAE/MAD and R² per modality and mode (runs of two recipes are never pooled)."""
    if attribution.empty or "d_mae" not in attribution:
        return attribution, pd.DataFrame()
    rows = attribution.dropna(subset=["d_mae"]).copy()
    if "recipe" not in rows:
        rows["recipe"] = ""
    rows["recipe"] = rows["recipe"].fillna("")
    key = ["target", "combination", "recipe"]
    ranked = rows.groupby(key)["seed"].nunique().rename("seeds").reset_index()
    ranked["size"] = ranked["combination"].str.count(r"\+")
    best = ranked.sort_values(["size", "seeds", "combination", "recipe"],
                              ascending=[False, False, True, True]).groupby("target").head(1)
    rows = rows.merge(best[key], on=key)
    stats = rows.groupby([*key, "modality", "mode"])[["d_mae", "d_mae_mad", "d_r2"]]
    return rows, stats.agg(["mean", "std"])
