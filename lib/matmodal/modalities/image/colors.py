"""Element colours and radii as Crystal Toolkit uses them.

Colours: the VESTA and Jmol schemes of ``pymatgen/vis/ElementColorSchemes.yaml`` (Crystal Toolkit
ships a fork of the same file; the 109 entries of each scheme are identical). Elements with no
entry get ``RenderSettings.unknown_color`` (Crystal Toolkit: black) and are reported.
Radii (Å): 'uniform' 0.5 for every atom (Crystal Toolkit's default), 'covalent' (Cordero),
'atomic' (pymatgen ``Element.atomic_radius``); unknown values fall back to 0.5 as in Crystal Toolkit.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pymatgen.vis
from monty.serialization import loadfn
from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
from pymatgen.core.periodic_table import Element

UNIFORM_RADIUS = 0.5  # Å, Crystal Toolkit Legend.uniform_radius
FALLBACK_RADIUS = 0.5  # Å, Crystal Toolkit Legend.fallback_radius
FALLBACK_COVALENT = 1.5  # Å, bond-rule radius for elements without a Cordero value


@cache
def color_table(scheme: str) -> dict[str, tuple[int, int, int]]:
    """Element symbol -> RGB (0-255) of the scheme ('VESTA' or 'Jmol')."""
    table = loadfn(Path(pymatgen.vis.__file__).parent / "ElementColorSchemes.yaml")
    if scheme not in table:
        raise ValueError(f"unknown colour scheme {scheme!r}; choose from {sorted(table)}")
    return {el: (int(c[0]), int(c[1]), int(c[2])) for el, c in table[scheme].items()}


def element_color(symbol: str, scheme: str) -> tuple[int, int, int] | None:
    """RGB of an element in the scheme, or None when the scheme has no entry."""
    return color_table(scheme).get(symbol)


def _element(symbol: str) -> Element | None:
    try:
        return Element(symbol)
    except ValueError:
        return None


@cache
def display_radius(symbol: str, strategy: str) -> float:
    """Sphere radius (Å) of an element under a Crystal Toolkit radius strategy."""
    if strategy == "uniform":
        return UNIFORM_RADIUS
    value: float | None = None
    if strategy == "covalent":
        value = CovalentRadius.radius.get(symbol)
    elif strategy == "atomic":
        el = _element(symbol)
        value = float(el.atomic_radius) if el is not None and el.atomic_radius else None
    else:
        raise ValueError(f"unknown radius strategy {strategy!r}")
    return float(value) if value else FALLBACK_RADIUS


@cache
def covalent_radius(symbol: str) -> float:
    """Covalent radius (Å, Cordero 2008) used by the cutoff bond rule; 1.5 Å when unknown."""
    value = CovalentRadius.radius.get(symbol)
    return float(value) if value else FALLBACK_COVALENT


def as_array(symbols: list[str], fn, *args) -> np.ndarray:
    """Vectorise a per-element lookup over a list of symbols."""
    return np.array([fn(s, *args) for s in symbols], dtype=float)
