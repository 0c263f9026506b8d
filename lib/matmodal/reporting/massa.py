"""massa2024 models beside the costa2025 grid on the same dataset and test split.

The grid's seed-``seed`` test split is the protocol's test split (same ids, same seed), so the
AutoGluon/baseline test scores of :func:`matmodal.runs.results_frame` and the massa2024
summary (``matmodal.plots.massa.summarise``) can share one table.
"""

from __future__ import annotations

import pandas as pd

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
