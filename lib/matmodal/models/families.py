"""Model families by name (``RunConfig.model``): how to train one, how to label its table row.

``automm`` (costa2025's AutoGluon MultiModalPredictor), the baselines ``mean`` / ``gbm``, the
fusion family ``fusion_gbm`` / ``fusion_mlp`` / ``fusion_late``, and ``ensemble`` (the mean of
stored member runs). Every trainer has the signature
``train(table, config, run_dir, *, cache_dir, keep_model, verbosity, settings) -> result dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from matmodal.models import baselines, ensemble, fusion
from matmodal.models.run_spec import RunConfig, combination_label


@dataclass(frozen=True)
class Family:
    train: Callable[..., dict[str, Any]]
    label: Callable[[dict[str, Any]], str]


def _train_automm(table: pd.DataFrame, config: RunConfig, run_dir: Path, **kwargs: Any) -> dict[str, Any]:
    from matmodal.models.automm import train_automm

    return train_automm(table, config, run_dir, **kwargs)


def _automm_label(config: dict[str, Any]) -> str:
    """The paper's combination label; a named recipe adds ``(recipe <name>)``."""
    name = config.get("recipe_name", "")
    return combination_label(config["modalities"]) + (f" (recipe {name})" if name else "")


FAMILIES: dict[str, Family] = {
    "automm": Family(_train_automm, _automm_label),
    **{name: Family(baselines.train_baseline, baselines.label) for name in baselines.BASELINES},
    **{name: Family(fusion.train_fusion, fusion.label) for name in fusion.FAMILIES},
    "ensemble": Family(ensemble.train_ensemble, ensemble.label),
}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def train(table: pd.DataFrame, config: RunConfig, run_dir: Path, **kwargs: Any) -> dict[str, Any]:
    """Train ``config.model`` on ``table`` into ``run_dir``."""
    return family(config.model).train(table, config, run_dir, **kwargs)


def row_label(config: dict[str, Any]) -> str:
    """The table row label of a stored run config."""
    return FAMILIES[config["model"]].label(config) if config["model"] in FAMILIES else config["model"]
