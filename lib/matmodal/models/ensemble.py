"""Ensembles of stored runs: the unweighted mean of the test predictions of member runs.

``RunConfig(model="ensemble", extra=(("ensemble.members", "gbm:tabular|automm:tabular+text"),))``
averages, per (target, seed), the predictions of the member runs found beside it in the same
runs folder: a member ``family:modalities`` is the run ``<family>[-<features>][-log10]__<target>__
<modalities>__seed<seed>`` (the run's ``features``; ``gbm`` and ``mean`` runs are named
``tabular``); ``automm-cached:tabular+text`` names a member of recipe ``cached``
(``RunConfig.recipe_name``; no recipe = the run without one). Nothing is fitted — equal weights, so no test information enters — and the members
must have finished first (``study_configs`` puts ensembles last). Each member's test ids must
equal the others'.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matmodal.models.run_spec import (
    ID,
    PREDICTIONS,
    RESULT,
    RunConfig,
    combination_label,
    combination_name,
    features_label,
    prepare_split,
    run_summary,
    write_predictions,
)

if TYPE_CHECKING:
    from matmodal.config import Settings

KEY = "ensemble.members"
_WORD = {"gbm": "GBM", "mean": "mean", "automm": "AutoMM", "fusion_gbm": "Fusion GBM", "fusion_mlp": "Fusion MLP",
         "fusion_late": "Late fusion"}


def members(config: RunConfig | dict[str, Any]) -> list[tuple[str, str, str]]:
    """``[(family, modalities, recipe), ...]`` of an ensemble config (recipe ``""``: none named)."""
    extra = dict(tuple(e) for e in (config.extra if isinstance(config, RunConfig) else config.get("extra", [])))
    if KEY not in extra:
        raise ValueError(f"ensemble run needs ({KEY!r}, 'family:modalities|...') in extra")
    out = []
    for part in str(extra[KEY]).split("|"):
        family, _, modalities = part.partition(":")
        family, _, recipe = family.partition("-")
        out.append((family, combination_name(modalities or "tabular"), recipe))
    return out


def label(config: dict[str, Any]) -> str:
    """e.g. ``Ensemble (mean): GBM Tabular + AutoMM Tabular + Text (CHGNet + Magpie)``."""
    parts = [f"{_WORD.get(f, f)} {combination_label(m)}{f' (recipe {r})' if r else ''}" for f, m, r in members(config)]
    feats = f" ({features_label(config['features'])})" if config.get("features") else ""
    return f"Ensemble (mean): {' + '.join(parts)}{feats}"


def member_folder(runs: Path, config: RunConfig, family: str, modalities: str, recipe: str = "") -> Path:
    """The one finished run folder of a member (raises naming what is missing)."""
    combo = "tabular" if family in ("gbm", "mean") else modalities
    feats = f"-{'+'.join(config.features)}" if config.features and "tabular" in modalities and family != "mean" else ""
    named = f"-{recipe}" if recipe else ""
    pattern = f"{family}{feats}*__{config.target}__{combo}__seed{config.seed}"
    prefixes = (f"{family}{feats}{named}", f"{family}{feats}-log10{named}")
    found = [p for p in sorted(runs.glob(pattern)) if p.name.split("__")[0] in prefixes]
    ok = [p for p in found if (p / RESULT).exists() and json.loads((p / RESULT).read_text()).get("status") == "ok"]
    if len(ok) != 1:
        raise FileNotFoundError(f"ensemble member {family}:{modalities}: {len(ok)} finished run(s) matching "
                                f"{runs / pattern} (need exactly 1; run the members first)")
    return ok[0]


def train_ensemble(table: pd.DataFrame, config: RunConfig, run_dir: Path, *, settings: Settings | None = None,
                   **_: Any) -> dict[str, Any]:
    """Average the members' stored test predictions; writes predictions, returns the result."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_split(table, config)
    frames = {}
    for family, modalities, recipe in members(config):
        folder = member_folder(run_dir.parent, config, family, modalities, recipe)
        frame = pd.read_parquet(folder / PREDICTIONS).set_index(ID)
        if set(frame.index) != set(split.test[ID]):
            raise ValueError(f"ensemble member {folder.name}: its test ids differ from this run's split")
        frames[folder.name] = frame["y_pred"].reindex(split.test[ID]).to_numpy(float)
    pred = np.mean(list(frames.values()), axis=0)
    write_predictions(split, pred, config, run_dir)
    return run_summary(split, pred, config, started, settings, members=list(frames),
                       backbones={"ensemble": {"kind": "ensemble", "name": "+".join(frames), "path": None,
                                               "pretrained": False, "source": "mean of stored member predictions"}},
                       pretrained={})
