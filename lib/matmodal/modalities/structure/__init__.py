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

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from matmodal.manifest import Issue
from matmodal.modalities.structure import chgnet, composition, potnet_featuriser
from matmodal.modalities.structure.base import FeaturiserInfo, Run, run_featuriser

__all__ = ["FEATURISERS", "FeaturiserInfo", "featurise"]

FEATURISERS: dict[str, FeaturiserInfo] = {
    info.name: info for info in (potnet_featuriser.INFO, chgnet.INFO, composition.INFO)
}


def _start(name: str, items: Sequence[tuple[str, Structure]], *, mode: str, seed: int,
           targets: pd.Series | None, cache_dir: Path | None) -> Run:
    if name == "potnet":
        return potnet_featuriser.PotNetRun(items, mode=mode, seed=seed, targets=targets,
                                           cache_dir=cache_dir)
    if name == "chgnet":
        return chgnet.CHGNetRun()
    return composition.MagpieRun()


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
    """
    if name not in FEATURISERS:
        raise KeyError(f"unknown structure featuriser {name!r}; choose from {sorted(FEATURISERS)}")
    info = FEATURISERS[name]
    if mode not in info.modes:
        raise ValueError(f"featuriser {name!r} supports modes {info.modes}, not {mode!r}")
    del n_jobs  # single process, one torch thread: deterministic, and no oversubscription
    run = _start(name, items, mode=mode, seed=seed, targets=targets, cache_dir=cache_dir)
    return run_featuriser(info, run, items, mode=mode, seed=seed, cache_dir=cache_dir,
                          progress=progress)
