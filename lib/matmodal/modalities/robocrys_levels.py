"""massa2024's three text levels from a Robocrystallographer description (Fig. 1d):

* ``Formula``: only the composition name (reduced formula, e.g. ``"CaSmCd2"``);
* ``Keywords``: the formula plus robocrys' bond-length sentences
  (``"CaSmCd2. All Ca(1)-Cd(1) bond lengths are 3.31 Å. ..."``);
* ``All``: the entire description.

Descriptions come from :func:`matmodal.modalities.text.robocrys_description` (cached by
structure and robocrys version). When robocrys fails, ``All`` and ``Keywords`` fall back to the
formula and the failure reason is returned for the manifest.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pymatgen.core import Structure

from matmodal.modalities.text import robocrys_description

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BOND = re.compile(r"\bbond (lengths?|distances?)\b", re.IGNORECASE)


class TextLevel(StrEnum):
    formula = "Formula"
    keywords = "Keywords"
    all = "All"


COLUMNS: dict[TextLevel, str] = {
    TextLevel.formula: "text_formula", TextLevel.keywords: "text_keywords", TextLevel.all: "text_all",
}


def sentences(text: str) -> list[str]:
    """Split robocrys prose into sentences (it never abbreviates, so '. ' + capital is safe;
    decimals like '3.31 Å' have no space after the point)."""
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def bond_sentences(text: str) -> list[str]:
    """The sentences that state bond lengths/distances."""
    return [s for s in sentences(text) if _BOND.search(s)]


def levels_from_description(formula: str, description: str) -> dict[TextLevel, str]:
    """The three levels from a formula and a full description."""
    keywords = " ".join([f"{formula}.", *bond_sentences(description)])
    return {TextLevel.formula: formula, TextLevel.keywords: keywords, TextLevel.all: description}


def text_levels(structure: Structure, *, cache_dir: Path | None = None) -> tuple[dict[TextLevel, str], str | None]:
    """``({level: text}, failure)`` for one structure; failure is robocrys' reason or None."""
    formula = structure.composition.reduced_formula
    description, failure = robocrys_description(structure, cache_dir=cache_dir)
    if failure is not None:
        return {TextLevel.formula: formula, TextLevel.keywords: formula, TextLevel.all: formula}, failure
    return levels_from_description(formula, description), None
