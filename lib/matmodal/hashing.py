"""Content hashes for cache keys: one structure digest, one payload digest (a leaf module).

``structure_digest`` hashes exactly what a structure is (lattice, fractional coordinates,
species and occupancies, as float64 bytes); ``payload_digest`` hashes any JSON-serialisable
payload (sorted keys) — a settings dict, or a rounded structure summary.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def structure_digest(structure: Any) -> str:
    """SHA-256 (hex) of a pymatgen ``Structure``: lattice, fractional coordinates, species and occupancies."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    h.update("|".join(",".join(f"{sp}:{occ!r}" for sp, occ in site.species.items()) for site in structure).encode())
    return h.hexdigest()


def payload_digest(payload: Any, length: int = 24) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``payload`` as JSON (sorted keys, ``str`` fallback)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:length]


def rounded_structure_key(structure: Any, *extra: str, decimals: int = 6, length: int = 24) -> str:
    """:func:`payload_digest` of a structure rounded to ``decimals`` (lattice, species, coordinates) plus
    settings strings: equal for structures that differ only below the rounding."""
    return payload_digest([structure.lattice.matrix.round(decimals).tolist(), [s.species_string for s in structure],
                           structure.frac_coords.round(decimals).tolist(), list(extra)], length)
