"""PotNet as a featuriser: graphs (cached), frozen or briefly trained encoder, 128-d vectors.

* ``mode="frozen"``: weights drawn from ``torch.manual_seed(seed)`` and never trained, the
  setting costa2025 §4.2.2 describes ("freezing the prediction phase").
* ``mode="trained"``: encoder + scalar head trained on ``targets`` (record ids of the
  caller's training split only) for a few epochs, then frozen; all records are embedded.
  The trained weights are cached under ``cache_dir/structure/potnet/models``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

from matmodal.modalities.structure.base import FeaturiserInfo, Item, Outcome, Run, digest
from matmodal.modalities.structure.graph import GraphSettings, PeriodicGraph, build_graph
from matmodal.modalities.structure.potnet import (
    PotNetEncoder,
    PotNetSettings,
    TrainSettings,
    deterministic_torch,
    embed_graphs,
    make_encoder,
    train_encoder,
)
from matmodal.modalities.text import structure_key

log = logging.getLogger(__name__)
VERSION = 1  # bump when the graph or encoder code changes meaning
MIN_TRAIN = 8

INFO = FeaturiserInfo(
    name="potnet",
    dim=128,
    pretrained=False,
    weights="none: random initialisation from torch.manual_seed(seed) (mode 'frozen', as in "
    "costa2025), or trained briefly on the caller's training-split target (mode 'trained')",
    sees="atomic numbers, interatomic distances (12 nearest neighbours) and infinite-lattice "
    "sums of 1/r, 1/r⁶ and exp(-3r) between all atoms of the cell, i.e. the full geometry",
    leakage="geometry implies vol/atom (a costa2025 target) and density-related elastic "
    "moduli; 'trained' additionally encodes the training target, so only training-split ids "
    "may be passed as targets (the provenance records their count and hash).",
    modes=("frozen", "trained"),
)


def _build(structure: Structure, settings: GraphSettings) -> PeriodicGraph | str:
    """The graph, or the reason it cannot be built."""
    try:
        return build_graph(structure, settings)
    except Exception as error:  # ValueError with reason; anything else is reported as well
        return f"graph failed ({type(error).__name__}: {error})"


class GraphStore:
    """PotNet graphs keyed by structure content + graph settings, on disk when a folder is set."""

    def __init__(self, folder: Path | None, settings: GraphSettings) -> None:
        self.folder, self.settings = folder, settings
        self.tag = digest(settings.as_dict())
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _path(self, structure: Structure) -> Path | None:
        return None if self.folder is None else self.folder / f"{structure_key(structure, self.tag)}.npz"

    def _load(self, structure: Structure) -> PeriodicGraph | None:
        path = self._path(structure)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as arrays:
                return PeriodicGraph.from_npz(dict(arrays))
        except (OSError, ValueError, KeyError):
            return None

    def _save(self, structure: Structure, graph: PeriodicGraph) -> None:
        path = self._path(structure)
        if path is not None:
            temporary = path.with_suffix(".tmp.npz")
            np.savez(temporary, **graph.to_npz())
            temporary.replace(path)

    def graphs(self, items: Sequence[Item]) -> tuple[dict[str, PeriodicGraph], dict[str, str]]:
        """Graphs per record id and failure reasons per record id."""
        found = {rid: g for rid, s in items if (g := self._load(s)) is not None}
        todo = [(rid, s) for rid, s in items if rid not in found]
        failures: dict[str, str] = {}
        for record_id, structure in todo:
            result = _build(structure, self.settings)
            if isinstance(result, str):
                failures[record_id] = result
            else:
                found[record_id] = result
                self._save(structure, result)
        return found, failures


def training_set(items: Sequence[Item], targets: pd.Series | None) -> list[tuple[str, Structure, float]]:
    """``(record_id, structure, y)`` for items with a finite target (caller's training ids)."""
    if targets is None:
        raise ValueError("mode='trained' needs targets (a Series indexed by training record ids)")
    if targets.index.has_duplicates:
        raise ValueError("targets index has duplicate record ids")
    values = pd.to_numeric(targets, errors="coerce")
    rows = [(rid, s, float(values[rid])) for rid, s in items
            if rid in values.index and np.isfinite(values[rid])]
    if len(rows) < MIN_TRAIN:
        raise ValueError(f"mode='trained' needs at least {MIN_TRAIN} records with finite targets, "
                         f"got {len(rows)}")
    return rows


class PotNetRun(Run):
    """Frozen or trained PotNet encoder over cached graphs."""

    def __init__(self, items: Sequence[Item], *, mode: str, seed: int, targets: pd.Series | None,
                 cache_dir: Path | None, graph: GraphSettings | None = None,
                 model: PotNetSettings | None = None, train: TrainSettings | None = None) -> None:
        self.mode, self.seed = mode, seed
        self.graph_settings = graph or GraphSettings()
        self.model_settings = model or PotNetSettings()
        self.train_settings = train or TrainSettings()
        root = None if cache_dir is None else Path(cache_dir) / "structure"
        self.graphs = GraphStore(None if root is None else root / "potnet_graph",
                                 self.graph_settings)
        self.model_folder = None if root is None else root / "potnet" / "models"
        self.fingerprint: dict[str, Any] = {
            "version": VERSION, "seed": seed, "graph": self.graph_settings.as_dict(),
            "model": self.model_settings.as_dict(), "torch": torch.__version__}
        self.training: list[tuple[str, Structure, float]] = []
        self.extra: dict[str, Any] = {}
        if mode == "trained":
            self.training = training_set(items, targets)
            pairs = sorted((structure_key(s), y) for _, s, y in self.training)
            self.fingerprint["train"] = self.train_settings.as_dict()
            self.fingerprint["training_set_sha"] = digest(pairs)
            self.extra = {"target": str(getattr(targets, "name", None)),
                          "n_train": len(self.training),
                          "train_ids_sha": digest(sorted(r for r, _, _ in self.training))}
        self._encoder: PotNetEncoder | None = None

    @property
    def alpha(self) -> float:
        return self.graph_settings.sums.alpha

    def encoder(self) -> PotNetEncoder:
        """The frozen encoder (trained first in mode 'trained'; weights cached on disk)."""
        if self._encoder is None:
            with deterministic_torch():
                self._encoder = self._trained() if self.mode == "trained" else make_encoder(
                    self.seed, self.model_settings)
            for parameter in self._encoder.parameters():
                parameter.requires_grad_(False)
        return self._encoder

    def _trained(self) -> PotNetEncoder:
        encoder = make_encoder(self.seed, self.model_settings)
        path = None
        if self.model_folder is not None:
            path = self.model_folder / f"{digest(self.fingerprint)}.pt"
            if path.exists():
                encoder.load_state_dict(torch.load(path, weights_only=True))
                self.extra["training"] = json.loads(path.with_suffix(".json").read_text())
                self.extra["training"]["loaded_from_cache"] = True
                return encoder
        graphs, failures = self.graphs.graphs([(r, s) for r, s, _ in self.training])
        kept = [(graphs[r], y) for r, _, y in self.training if r in graphs]
        log.info("training PotNet on %d structures (%d without graph)", len(kept), len(failures))
        figures = train_encoder(encoder, [g for g, _ in kept], np.array([y for _, y in kept]),
                                self.alpha, self.seed, self.train_settings)
        self.extra["training"] = figures
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(encoder.state_dict(), path)
            path.with_suffix(".json").write_text(json.dumps(figures))
        return encoder

    def compute(self, items: Sequence[Item]) -> Outcome:
        graphs, failures = self.graphs.graphs(items)
        order = [rid for rid, _ in items if rid in graphs]
        encoder = self.encoder()
        with deterministic_torch():
            matrix = embed_graphs(encoder, [graphs[r] for r in order], self.alpha)
        return Outcome(dict(zip(order, matrix, strict=True)), failures)

    def provenance(self) -> dict[str, Any]:
        return dict(self.extra)

    def prepare(self) -> None:
        self.encoder()  # train (mode 'trained') here, once, not in each worker process
