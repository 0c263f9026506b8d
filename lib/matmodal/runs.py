"""The costa2025 grid: modality combinations × targets × seeds (+ baselines), resumable.

Each run lives in ``<root>/<dataset>/<run_id>/`` (``root`` = ``Layout.runs_root``, i.e.
``<output>/runs/<profile>``) with ``config.json``, ``result.json`` (``status`` ok: metrics,
timings, backbones; ``status`` failed: the reason and traceback), ``predictions.parquet`` and,
when kept, the AutoMM ``model/``. A rerun skips every run whose ``result.json`` says ok for the
same config key, and retries failed ones. A finished run is never replaced by a run with other
settings: :func:`run_grid` refuses the whole grid up front (:class:`RunConflictError`, naming the
run and the settings that differ), so one runs folder always holds one configuration per run id.
Runs are serial by default; ``parallel=N`` runs N at a time on Ray (which AutoGluon already
depends on).

    grid = Grid("mp_elastic", targets=["k_vrh"], seeds=[0, 1, 2], settings={"epochs": 2})
    results = run_grid(grid, dataset.table, root=layout.runs_root)
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from matmodal.metrics import METRICS
from matmodal.models.automm import (
    COMBINATIONS,
    CONFIG,
    MODEL,
    PREDICTIONS,
    RESULT,
    RunConfig,
    parse_combination,
)
from matmodal.models.baselines import BASELINES
from matmodal.paths import read_json_object
from matmodal.sources.download import tree_sha256

log = logging.getLogger(__name__)


@dataclass
class Grid:
    """Which runs: every (target, combination, seed) AutoMM run plus baselines per (target, seed).

    ``settings`` holds the other :class:`RunConfig` fields (epochs, backbone_profile,
    image_size, max_rows, ...), shared by every run of the grid.
    """

    dataset: str
    targets: Sequence[str]
    combinations: Sequence[str | Sequence[str]] = COMBINATIONS
    seeds: Sequence[int] = (0,)
    baselines: Sequence[str] = BASELINES
    settings: dict[str, Any] = field(default_factory=dict)

    def configs(self) -> list[RunConfig]:
        """Seed by seed (a partial grid covers every cell once), per target the baselines
        (seconds) then the combinations."""
        configs = []
        for seed in self.seeds:
            for target in self.targets:
                configs += [RunConfig(self.dataset, target, ("tabular",), seed=seed, model=b,
                                      **self._baseline_settings()) for b in self.baselines]
                configs += [RunConfig(self.dataset, target, parse_combination(c), seed=seed, **self.settings)
                            for c in self.combinations]
        return configs

    def _baseline_settings(self) -> dict[str, Any]:
        shared = ("test_fraction", "max_rows", "features", "profile", "validation_fraction", "target_transform")
        return {k: v for k, v in self.settings.items() if k in shared}


def run_dir(root: Path, config: RunConfig) -> Path:
    return root / config.dataset / config.run_id


class RunConflictError(RuntimeError):
    """A runs folder already holds a finished run of the same id with other settings."""


class NoRunsError(RuntimeError):
    """Nothing to evaluate: no finished run of a dataset under a runs folder."""


def _stored(folder: Path) -> dict[str, Any] | None:
    # a truncated result.json (a run killed while writing) is an unfinished run: said, and redone
    return read_json_object(folder / RESULT, "treated as an unfinished run (it is redone)")


def conflicts(configs: Iterable[RunConfig], root: Path) -> list[str]:
    """One line per config whose folder holds an *ok* run with another key (failed runs are retried)."""
    lines = []
    for config in configs:
        stored = _stored(run_dir(root, config))
        if stored and stored.get("status") == "ok" and stored.get("key") != config.key:
            old, new = stored.get("config", {}), config.as_dict()
            changed = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
            what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items()) or "same fields, other key"
            lines.append(f"{run_dir(root, config)} ({what})")
    return lines


def finished(folder: Path, config: RunConfig) -> dict[str, Any] | None:
    """The stored result when the run finished ok with this exact config, else None."""
    result = _stored(folder)
    if result is None:
        return None
    return result if result.get("status") == "ok" and result.get("key") == config.key else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(data, indent=1, default=str))
    partial.replace(path)


def execute(config: RunConfig, table: pd.DataFrame, folder: Path, *, cache_dir: Path | None = None,
            keep_model: bool = True, verbosity: int = 1) -> dict[str, Any]:
    """Run one config into ``folder``; a failure is recorded (reason + traceback), not raised."""
    from matmodal.models.families import train

    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / CONFIG, {**config.as_dict(), "key": config.key})
    started = time.perf_counter()
    try:
        result = train(table, config, folder, cache_dir=cache_dir, keep_model=keep_model, verbosity=verbosity)
        if (folder / MODEL).is_dir():  # predict refuses a model folder whose files differ from these
            result["model_files"] = tree_sha256(folder / MODEL)
    except Exception as error:
        log.warning("run %s failed: %s", config.run_id, error)
        result = {"status": "failed", "run_id": config.run_id, "key": config.key, "config": config.as_dict(),
                  "reason": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(),
                  "wall_s": round(time.perf_counter() - started, 2)}
    _write_json(folder / RESULT, result)
    return result


def _keep(config: RunConfig, seeds: Sequence[int], keep_models: str) -> bool:
    return keep_models == "all" or (keep_models == "first_seed" and config.seed == min(seeds))


def _ray_map(jobs: list[tuple[RunConfig, Path, bool]], table: pd.DataFrame, parallel: int,
             cache_dir: Path | None) -> list[dict[str, Any]]:
    import ray

    threads = max(1, (os.cpu_count() or 1) // parallel)
    ray.init(num_cpus=parallel, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
                                       "TRANSFORMERS_OFFLINE": "1"}})
    remote = ray.remote(num_cpus=1)(execute)
    ref = ray.put(table)
    futures = [remote.remote(c, ref, f, cache_dir=cache_dir, keep_model=k, verbosity=0) for c, f, k in jobs]
    return ray.get(futures)


@contextmanager
def torch_thread_count(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch intra-op threads inside the block (None: leave as is)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_grid(
    grid: Grid | Iterable[RunConfig], table: pd.DataFrame, root: Path, *, parallel: int = 1,
    retry_failed: bool = True, keep_models: str = "first_seed", cache_dir: Path | None = None,
    verbosity: int = 1, torch_threads: int | None = None,
) -> pd.DataFrame:
    """Run every config not yet finished; returns :func:`results_frame` of the whole grid.

    ``keep_models``: ``"all"``, ``"first_seed"`` (the lowest seed's models, for predict and
    parity plots) or ``"none"``. ``parallel > 1`` uses Ray with that many concurrent runs.
    ``torch_threads`` sets torch's intra-op threads for serial runs (1 is often fastest on a
    shared small CPU; thread counts can change float summation order, so compare at equal settings).
    """
    configs = grid.configs() if isinstance(grid, Grid) else list(grid)
    clashes = conflicts(configs, root)
    if clashes:
        raise RunConflictError(
            f"{len(clashes)} finished run(s) under {root} have other settings; nothing was run. Use another "
            f"runs folder (notebook 04: runs_dir) or delete the old runs. First: {clashes[0]}")
    seeds = sorted({c.seed for c in configs}) or [0]
    jobs = []
    for config in configs:
        folder = run_dir(root, config)
        stored = _stored(folder)
        if finished(folder, config) or (stored and stored.get("key") == config.key and not retry_failed):
            continue
        jobs.append((config, folder, _keep(config, seeds, keep_models)))
    log.info("grid: %d runs, %d to do", len(configs), len(jobs))
    if parallel > 1 and len(jobs) > 1:
        _ray_map(jobs, table, parallel, cache_dir)
    else:
        with torch_thread_count(torch_threads):
            for i, (config, folder, keep) in enumerate(jobs, 1):
                result = execute(config, table, folder, cache_dir=cache_dir, keep_model=keep, verbosity=verbosity)
                print(f"[grid] {i}/{len(jobs)} {config.run_id}: {result['status']} in {result['wall_s']:.1f} s",
                      flush=True)
    return results_frame(root, [run_dir(root, c) for c in configs])


def model_label(config: dict[str, Any]) -> str:
    """Table row label: the paper's combination label, or the family's (baselines, fusion)."""
    from matmodal.models.families import row_label

    return row_label(config)


RESULT_COLUMNS = [
    "dataset", "target", "model", "combination", "label", "seed", "status", "reason", *METRICS, "wall_s",
    "fit_s", "n_train", "n_test", "epochs", "backbone_profile", "backbones", "pretrained", "model_dir", "run_id",
]


def _row(result: dict[str, Any]) -> dict[str, Any]:
    config = result["config"]
    backbones = result.get("backbones", {})
    return {
        "dataset": config["dataset"], "target": config["target"], "model": config["model"],
        "combination": "+".join(config["modalities"]) if config["model"] == "automm" else config["model"],
        "label": model_label(config), "seed": config["seed"], "status": result["status"],
        "reason": result.get("reason", ""), **{m: result.get("metrics", {}).get(m) for m in METRICS},
        "wall_s": result.get("wall_s"), "fit_s": result.get("fit_s"), "n_train": result.get("n_train"),
        "n_test": result.get("n_test"), "epochs": config.get("epochs"),
        "backbone_profile": config.get("backbone_profile"),
        "backbones": "; ".join(f"{k}={b['name']}" for k, b in backbones.items()),
        "pretrained": "; ".join(f"{k}={b['pretrained']}" for k, b in backbones.items()),
        "model_dir": result.get("model_dir"), "run_id": result["run_id"],
    }


def _result_paths(root: Path, folders: Sequence[Path] | None, dataset: str | None) -> list[Path]:
    return [f / RESULT for f in folders] if folders is not None else sorted(root.glob(f"{dataset or '*'}/*/{RESULT}"))


def results_frame(root: Path, folders: Sequence[Path] | None = None, dataset: str | None = None) -> pd.DataFrame:
    """One row per stored run (ok or failed) under ``root`` (or just ``folders``, or one dataset)."""
    paths = _result_paths(root, folders, dataset)
    rows = [_row(result) for p in paths if (result := _stored(p.parent)) is not None]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS) if rows else pd.DataFrame(columns=RESULT_COLUMNS)


def finished_results(root: Path, dataset: str) -> pd.DataFrame:
    """:func:`results_frame` of one dataset; :class:`NoRunsError` when it has no ok run (so an
    evaluation notebook stops before writing anything)."""
    results = results_frame(root, dataset=dataset)
    if not (results["status"] == "ok").any():
        failed = f" ({len(results)} failed; first: {results['reason'].iloc[0]})" if len(results) else ""
        raise NoRunsError(f"no runs under {root / dataset}{failed} — run 04 first")
    return results


def attribution_frame(root: Path, folders: Sequence[Path] | None = None, dataset: str | None = None) -> pd.DataFrame:
    """Modality attribution rows (run, modality, remove/shuffle, metrics and their change)."""
    paths = _result_paths(root, folders, dataset)
    rows = []
    for path in paths:
        result = _stored(path.parent) or {}
        for row in result.get("attribution", []):
            config = result["config"]
            rows.append({"dataset": config["dataset"], "target": config["target"], "seed": config["seed"],
                         "combination": "+".join(config["modalities"]), "recipe": config.get("recipe_name", ""),
                         **row})
    return pd.DataFrame(rows)


def best_predictions(results: pd.DataFrame, best: pd.Series, root: Path) -> dict[str, pd.DataFrame]:
    """Test predictions of the best combination per target (its lowest seed)."""
    out = {}
    for target, combination in best.items():
        rows = results[(results["target"] == target) & (results["combination"] == combination)
                       & (results["status"] == "ok")].sort_values("seed")
        if len(rows):
            row = rows.iloc[0]
            out[str(target)] = pd.read_parquet(root / row["dataset"] / row["run_id"] / PREDICTIONS)
    return out


def timing_table(results: pd.DataFrame) -> pd.DataFrame:
    """Wall time (s) per run by model/combination: mean, max, runs, total (ok runs)."""
    ok = results[results["status"] == "ok"]
    stats = ok.groupby(["label"], sort=False)["wall_s"].agg(["mean", "max", "count", "sum"])
    stats.loc["all runs"] = [ok["wall_s"].mean(), ok["wall_s"].max(), len(ok), ok["wall_s"].sum()]
    return stats.rename(columns={"mean": "mean_s", "max": "max_s", "count": "runs", "sum": "total_s"}).round(1)
