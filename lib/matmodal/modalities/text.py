"""Text modality: costa2025's composition string and Robocrystallographer descriptions.

``composition_text`` follows costa2025 §4.2.3 exactly: each element symbol followed by its
count in the cell when the count is not 1, space separated, in the entry's composition order
(``{Ac: 1, Hg: 2, Cd: 2}`` -> ``"Ac Hg 2 Cd 2"``).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from pymatgen.core import Composition, Structure
from tqdm.auto import tqdm

from matmodal.hashing import rounded_structure_key
from matmodal.isolation import GIB, Limits, run_isolated

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
    return rounded_structure_key(structure, *extra)


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


MAX_ROBOCRYS_SITES = 200  # larger cells get the composition string (robocrys time grows steeply with sites)
ROBOCRYS_LIMITS = Limits(memory_bytes=4 * GIB, seconds=180.0)  # per structure, in an isolated worker


def _cache_path(structure: Structure, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    return cache_dir / "robocrys" / f"{structure_key(structure, _robocrys_version())}.json"


def _fallback(structure: Structure, reason: str) -> tuple[str, str]:
    failure = f"robocrys failed ({reason}); composition string used"
    log.warning("%s: %s", structure.composition.reduced_formula, failure)
    return composition_text(structure), failure


def _too_big(structure: Structure) -> str | None:
    n = len(structure)
    return f"{n} sites is more than the robocrys cap of {MAX_ROBOCRYS_SITES}" if n > MAX_ROBOCRYS_SITES else None


def _store(path: Path | None, text: str, failure: str | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"text": text, "failure": failure}))


def robocrys_description(structure: Structure, *, cache_dir: Path | None = None) -> tuple[str, str | None]:
    """``(text, failure)``: robocrys' description, cached by structure + robocrys version.

    When robocrys fails (or the cell has more than ``MAX_ROBOCRYS_SITES`` sites), the
    composition string is returned with the reason (logged), so the record stays usable and
    the manifest can say it was degraded. Runs in this process; :func:`robocrys_many` runs
    each structure in a worker with memory and time limits.
    """
    path = _cache_path(structure, cache_dir)
    if path is not None and path.exists():
        cached = json.loads(path.read_text())
        return cached["text"], cached["failure"]
    if too_big := _too_big(structure):
        text, failure = _fallback(structure, too_big)
    else:
        try:
            text, failure = describe(structure), None
        except Exception as error:  # robocrys raises many types on odd cells
            text, failure = _fallback(structure, f"{type(error).__name__}: {error}")
    _store(path, text, failure)
    return text, failure


def robocrys_many(
    structures: Sequence[Structure], *, cache_dir: Path | None = None, n_jobs: int = 1,
    limits: Limits = ROBOCRYS_LIMITS, progress: bool = True,
) -> list[tuple[str, str | None]]:
    """:func:`robocrys_description` for many structures, each uncached one in an isolated worker.

    A structure that crashes robocrys, exceeds ``limits`` (memory, seconds) or raises gets
    the composition string and the reason; the others are unaffected.
    """
    out: list[tuple[str, str | None] | None] = [None] * len(structures)
    todo = []
    for i, structure in enumerate(structures):
        path = _cache_path(structure, cache_dir)
        if path is not None and path.exists():
            cached = json.loads(path.read_text())
            out[i] = cached["text"], cached["failure"]
        elif too_big := _too_big(structure):
            out[i] = _fallback(structure, too_big)
            _store(path, *out[i])
        else:
            todo.append(i)
    results = run_isolated("matmodal.modalities.text:describe", [structures[i] for i in todo], limits,
                           n_workers=n_jobs)
    for i, (text, failure) in tqdm(zip(todo, results, strict=True), total=len(todo), desc="robocrys",
                                   unit="structure", disable=not progress):
        out[i] = (text, None) if failure is None else _fallback(structures[i], failure)
        _store(_cache_path(structures[i], cache_dir), *out[i])
    return out
