"""Tabular modality: fixed-length structure embeddings, selectable by name.

>>> frame, issues = featurise("potnet", [(record_id, structure), ...], cache_dir=Path("cache"))

=========  ====  ==========  ==============================================================
name       dim   pretrained  what it sees
=========  ====  ==========  ==============================================================
potnet     128   no          Z, distances, infinite-lattice 1/r, 1/r⁶, e^(-αr) sums (costa2025)
chgnet     64    yes         Z and full geometry; CHGNet 0.3.0 weights from the chgnet wheel
magpie     132   no          composition only (matminer Magpie elemental statistics)
=========  ====  ==========  ==============================================================

See ``FEATURISERS[name]`` for weights and leakage notes, and docs/structure_embeddings.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from matmodal.isolation import Limits
from matmodal.manifest import Issue
from matmodal.modalities.structure import base, chgnet, composition, potnet_featuriser
from matmodal.modalities.structure.base import FeaturiserInfo, Run, run_featuriser

__all__ = ["FEATURISERS", "FeaturiserInfo", "featurise", "register"]

# start(items, mode=, seed=, targets=, cache_dir=) -> Run
Start = Callable[..., Run]

FEATURISERS: dict[str, FeaturiserInfo] = {}
_STARTS: dict[str, Start] = {}


def register(info: FeaturiserInfo, start: Start) -> None:
    """Add featuriser ``info.name`` (its Run must pickle, to be sent to the worker process)."""
    FEATURISERS[info.name] = info
    _STARTS[info.name] = start


def unregister(name: str) -> None:
    FEATURISERS.pop(name, None)
    _STARTS.pop(name, None)


register(potnet_featuriser.INFO, lambda items, *, mode, seed, targets, cache_dir: potnet_featuriser.PotNetRun(
    items, mode=mode, seed=seed, targets=targets, cache_dir=cache_dir))
register(chgnet.INFO, lambda items, **_: chgnet.CHGNetRun())
register(composition.INFO, lambda items, **_: composition.MagpieRun())


def featurise(
    name: str,
    items: Sequence[tuple[str, Structure]],
    *,
    cache_dir: Path | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    seed: int = 0,
    targets: pd.Series | None = None,
    mode: str = "frozen",
    isolate: bool | Limits = False,
) -> tuple[pd.DataFrame, list[Issue]]:
    """Embed ``(record_id, structure)`` items with featuriser ``name``.

    Returns a float32 DataFrame indexed by ``record_id`` with columns ``f"{name}_{i:03d}"``
    (records that failed are absent and reported as ``dropped`` issues at stage
    ``"structure:<name>"``) and ``frame.attrs["provenance"]``. ``mode="trained"`` (PotNet
    only) trains on ``targets`` (indexed by record id: pass training-split ids only).
    Vectors are cached per structure and settings under ``cache_dir/"structure"/name``.
    ``n_jobs`` is accepted for the builder's uniform interface but unused: every featuriser
    runs in-process on one torch thread (measured faster than 2 threads on the shared
    2-core machine, and bit-for-bit reproducible).

    ``isolate``: compute in a worker process with memory/time limits (``True``:
    ``base.LIMITS``; or a :class:`~matmodal.isolation.Limits`): a record that crashes native
    code, exhausts the limit or hangs is one ``dropped`` issue naming the reason, the others
    get the vectors the in-process path gives (same chunks). The dataset build isolates.
    """
    if name not in FEATURISERS:
        raise KeyError(f"unknown structure featuriser {name!r}; choose from {sorted(FEATURISERS)}")
    info = FEATURISERS[name]
    if mode not in info.modes:
        raise ValueError(f"featuriser {name!r} supports modes {info.modes}, not {mode!r}")
    del n_jobs  # single process, one torch thread: deterministic, and no oversubscription
    run = _STARTS[name](items, mode=mode, seed=seed, targets=targets, cache_dir=cache_dir)
    limits = base.LIMITS if isolate is True else (isolate or None)
    return run_featuriser(info, run, items, mode=mode, seed=seed, cache_dir=cache_dir,
                          progress=progress, limits=limits)
