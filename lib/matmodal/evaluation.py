"""Compatibility home of the result tables: they now live in :mod:`matmodal.reporting`
(metrics in :mod:`matmodal.metrics`). Import from there in new code."""

from __future__ import annotations

from matmodal.metrics import METRIC_LABELS, METRICS, regression_metrics
from matmodal.reporting.costa import (
    GROUP,
    LOWER_IS_BETTER,
    TABLE_NUMBERS,
    attribution_summary,
    best_combinations,
    compare,
    load_reference,
    metric_table,
    row_order,
    summarise,
    target_order,
    write_tables,
)
from matmodal.reporting.tables import cell, latex_text, number, write_table

__all__ = [
    "GROUP", "LOWER_IS_BETTER", "METRICS", "METRIC_LABELS", "TABLE_NUMBERS", "attribution_summary",
    "best_combinations", "cell", "compare", "latex_text", "load_reference", "metric_table", "number",
    "regression_metrics", "row_order", "summarise", "target_order", "write_table", "write_tables",
]
