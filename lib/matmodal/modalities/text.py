"""Text modality: costa2025's composition string and Robocrystallographer descriptions.

``composition_text`` follows costa2025 §4.2.3 exactly: each element symbol followed by its
count in the cell when the count is not 1, space separated, in the entry's composition order
(``{Ac: 1, Hg: 2, Cd: 2}`` -> ``"Ac Hg 2 Cd 2"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

from pymatgen.core import Composition, Structure

log = logging.getLogger(__name__)


def _count(amount: float) -> str:
    return str(round(amount)) if abs(amount - round(amount)) < 1e-8 else f"{amount:g}"


def composition_text(composition: Composition | Structure | dict[str, float]) -> str:
    """costa2025 composition string, e.g. ``"Ac Hg 2 Cd 2"`` (cell counts, entry order)."""
    if isinstance(composition, Structure):
        composition = composition.composition
    items = composition.items() if isinstance(composition, dict) else composition.get_el_amt_dict().items()
    parts = []
    for element, amount in items:
        parts.append(str(element) if abs(amount - 1) < 1e-8 else f"{element} {_count(amount)}")
    return " ".join(parts)


def structure_key(structure: Structure, *extra: str) -> str:
    """Content hash of a structure (lattice, species, coordinates) plus settings strings."""
    payload = json.dumps(
        [structure.lattice.matrix.round(6).tolist(), [s.species_string for s in structure],
         structure.frac_coords.round(6).tolist(), list(extra)]
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _robocrys_version() -> str:
    from importlib.metadata import version

    return version("robocrys")


def describe(structure: Structure) -> str:
    """Robocrystallographer's full description (condense then describe)."""
    from robocrys import StructureCondenser, StructureDescriber

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condensed = StructureCondenser().condense_structure(structure)
        return StructureDescriber().describe(condensed)


def robocrys_description(structure: Structure, *, cache_dir: Path | None = None) -> tuple[str, str | None]:
    """``(text, failure)``: robocrys' description, cached by structure + robocrys version.

    When robocrys fails, the composition string is returned with the reason (logged), so the
    record stays usable and the manifest can say it was degraded.
    """
    path = None
    if cache_dir is not None:
        path = cache_dir / "robocrys" / f"{structure_key(structure, _robocrys_version())}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            return cached["text"], cached["failure"]
    try:
        text, failure = describe(structure), None
    except Exception as error:  # robocrys raises many types on odd cells
        failure = f"robocrys failed ({type(error).__name__}: {error}); composition string used"
        text = composition_text(structure)
        log.warning("%s: %s", structure.composition.reduced_formula, failure)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"text": text, "failure": failure}))
    return text, failure
