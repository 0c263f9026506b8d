"""Pretrained CHGNet crystal features (Deng et al., Nat. Mach. Intell. 5, 1031, 2023).

The CHGNet 0.3.0 checkpoint ships inside the ``chgnet`` wheel (no download). The vector is
CHGNet's ``crystal_fea``: the mean over atoms of the last atom features, i.e. the input of
the energy readout (64 numbers). Inference only, CPU, ``torch.no_grad``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib.metadata import version
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matmodal.modalities.structure.base import FeaturiserInfo, Item, Outcome, Run
from matmodal.modalities.structure.lattice_sums import check_geometry
from matmodal.modalities.structure.potnet import deterministic_torch

MODEL_NAME = "0.3.0"

INFO = FeaturiserInfo(
    name="chgnet",
    dim=64,
    pretrained=True,
    weights=f"CHGNet {MODEL_NAME} checkpoint from the chgnet wheel (pretrained on MPtrj: "
    "Materials Project PBE/PBE+U relaxation energies, forces, stresses, magmoms)",
    sees="species and full geometry: atom graph within 6 Å and bond angles within 3 Å, "
    "so also cell volume and density",
    leakage="geometry implies vol/atom (a costa2025 target) and, through density, correlates "
    "with K_VRH/G_VRH. The network was trained on MP DFT energies and magnetic moments of "
    "MP structures, many of them the very materials of the MP elastic set; its features are "
    "close to energy per atom (Etot/atom, Eform targets) and magnetic moments (Mag/vol).",
)


@lru_cache(maxsize=1)
def load_model() -> Any:
    """The wheel's pretrained CHGNet on CPU (loaded once per process)."""
    from chgnet.model import CHGNet

    model = CHGNet.load(model_name=MODEL_NAME, use_device="cpu", verbose=False)
    model.eval()
    return model


def checkpoint_sha256() -> str:
    """sha256 of the wheel's checkpoint file (provenance of the weights)."""
    import chgnet

    folder = Path(chgnet.__file__).parent / "pretrained" / MODEL_NAME
    files = sorted(folder.glob("*.pth.tar"))
    return hashlib.sha256(files[0].read_bytes()).hexdigest() if files else "unknown"


class CHGNetRun(Run):
    """Streaming CHGNet: graphs are built ``batch_size`` records at a time, predicted, freed.

    Only one batch of graphs (and its activations) is alive at a time, so memory does not grow
    with the number of records; inference runs under ``torch.no_grad`` (the converter's
    coordinate tensors require grad, which otherwise records an autograd graph per batch:
    3x the peak memory, 20 % slower). A batch is ``batch_size`` consecutive records whose graph
    converts, the batches ``predict_structure(..., batch_size)`` forms, so the vectors are
    bit-identical to converting every graph first (test).
    """

    def __init__(self, batch_size: int = 32) -> None:
        self.model = load_model()
        self.batch_size = batch_size
        self.fingerprint = {"model": MODEL_NAME, "chgnet": version("chgnet"),
                            "checkpoint_sha256": checkpoint_sha256()}

    def _graphs(self, items: Sequence[Item], outcome: Outcome) -> Iterator[tuple[str, Any]]:
        """Converted graphs one at a time; a record that fails is reported and skipped."""
        for record_id, structure in items:
            try:
                check_geometry(structure)
                graph = self.model.graph_converter(structure, graph_id=record_id)
            except Exception as error:  # isolated atoms, unknown species
                outcome.failures[record_id] = f"CHGNet graph failed ({type(error).__name__}: {error})"
                continue
            yield record_id, graph

    def _predict(self, batch: list[tuple[str, Any]], outcome: Outcome) -> None:
        """``crystal_fea`` (64 floats) of one batch of graphs into ``outcome.vectors``."""
        predictions = self.model.predict_graph([graph for _, graph in batch], task="e",
                                               return_crystal_feas=True, batch_size=len(batch))
        if isinstance(predictions, dict):  # CHGNet unwraps a batch of one
            predictions = [predictions]
        for (record_id, _), prediction in zip(batch, predictions, strict=True):
            outcome.vectors[record_id] = np.asarray(prediction["crystal_fea"], dtype=np.float32)

    def compute(self, items: Sequence[Item]) -> Outcome:
        outcome = Outcome()
        graphs = self._graphs(items, outcome)
        with deterministic_torch(), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while batch := list(islice(graphs, self.batch_size)):
                self._predict(batch, outcome)
        return outcome
