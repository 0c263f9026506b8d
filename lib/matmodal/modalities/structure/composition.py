"""Magpie composition descriptors (Ward et al., npj Comput. Mater. 2, 16028, 2016) via matminer.

``ElementProperty.from_preset("magpie")``: min, max, range, mean, average deviation and mode
of 22 elemental properties over the composition's atom fractions (132 numbers). The
elemental tables ship inside the matminer wheel (no network). Missing elemental values are
imputed by matminer (``impute_nan=True``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from matmodal.modalities.structure.base import FeaturiserInfo, Item, Outcome, Run

INFO = FeaturiserInfo(
    name="magpie",
    dim=132,
    pretrained=False,
    weights="none (elemental property tables from the matminer wheel, Magpie preset)",
    sees="composition only (atom fractions of the elements); no lattice, no coordinates",
    leakage="cannot see volume or geometry: polymorphs get identical vectors. Elemental "
    "tables include GSvolume_pa (volume/atom of each element's ground-state solid) and "
    "GSmagmom, composition-weighted proxies of vol/atom and magnetisation (not computed "
    "from the record's targets).",
)


def _featuriser() -> Any:
    from matminer.featurizers.composition import ElementProperty

    return ElementProperty.from_preset("magpie", impute_nan=True)


class MagpieRun(Run):
    """Composition descriptors, one record at a time (about 1 ms each)."""

    def __init__(self) -> None:
        self.featuriser = _featuriser()
        self.fingerprint = {"preset": "magpie",
                            "impute_nan": True, "matminer": version("matminer")}

    def compute(self, items: Sequence[Item]) -> Outcome:
        outcome = Outcome()
        for record_id, structure in items:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = self.featuriser.featurize(structure.composition)
                outcome.vectors[record_id] = np.asarray(values, dtype=np.float64)
            except Exception as error:  # unknown element, empty composition
                outcome.failures[record_id] = f"magpie failed ({type(error).__name__}: {error})"
        return outcome

    def provenance(self) -> dict[str, Any]:
        return {"feature_labels": list(self.featuriser.feature_labels())}
