"""Periodic crystal graph for PotNet: local neighbour edges plus complete "infinite" edges.

* Local edges (message passing over bonds): for each atom, its ``k`` nearest periodic
  neighbours, the whole shell at the k-th distance included (ties within 1e-3 Å, so the
  graph keeps the crystal's symmetry), searched within ``local_cutoff`` Å; feature: distance.
* Infinite edges: every ordered pair of cell sites ``(i, j)`` including ``i == j``; feature:
  the three lattice sums of :mod:`.lattice_sums` (Coulomb, London, Pauli).

Edge arrays follow the "message flows from ``src`` to ``dst``" convention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from pymatgen.core import Structure

from matmodal.modalities.structure.lattice_sums import LatticeSumSettings, potential_sums

SHELL_TOL = 1e-3  # Å: neighbours this close to the k-th distance join the shell


@dataclass(frozen=True)
class GraphSettings:
    """How the periodic graph is built (lengths in Å)."""

    max_neighbours: int = 12
    local_cutoff: float = 8.0
    max_sites: int = 500  # larger cells are rejected (infinite edges grow as N²)
    sums: LatticeSumSettings = field(default_factory=LatticeSumSettings)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PeriodicGraph:
    """Arrays of one crystal graph (numpy; converted to torch when batched)."""

    atomic_numbers: np.ndarray  # (N,) int64
    local_src: np.ndarray  # (E,) int64 neighbour j
    local_dst: np.ndarray  # (E,) int64 centre i
    local_distance: np.ndarray  # (E,) Å
    potentials: np.ndarray  # (N*N, 3) Coulomb Å⁻¹, London Å⁻⁶, Pauli; row i*N+j = pair (i, j)

    @property
    def n_sites(self) -> int:
        return int(self.atomic_numbers.size)

    def to_npz(self) -> dict[str, np.ndarray]:
        return asdict(self)

    @classmethod
    def from_npz(cls, arrays: dict[str, np.ndarray]) -> PeriodicGraph:
        return cls(**{k: np.asarray(arrays[k]) for k in cls.__dataclass_fields__})


def atomic_numbers(structure: Structure) -> np.ndarray:
    """Atomic numbers Z of an ordered structure (ValueError for dummy/disordered species)."""
    if not structure.is_ordered:
        raise ValueError("disordered (partial occupancy) sites are not supported")
    numbers = []
    for site in structure:
        z = getattr(site.specie, "Z", None)
        if z is None or not 1 <= z <= 118:
            raise ValueError(f"species {site.species_string!r} has no atomic number")
        numbers.append(z)
    return np.asarray(numbers, dtype=np.int64)


def local_edges(structure: Structure, max_neighbours: int, cutoff: float) -> tuple[np.ndarray, ...]:
    """``(src, dst, distance)`` of the k-nearest-shell neighbour edges within ``cutoff`` Å."""
    centre, neighbour, _, distance = structure.get_neighbor_list(cutoff, exclude_self=True)
    keep = np.zeros(distance.size, dtype=bool)
    for i in range(len(structure)):
        rows = np.flatnonzero(centre == i)
        if rows.size == 0:
            raise ValueError(f"site {i} has no neighbour within {cutoff} Å")
        ordered = np.sort(distance[rows])
        shell = ordered[min(max_neighbours, ordered.size) - 1] + SHELL_TOL
        keep[rows[distance[rows] <= shell]] = True
    order = np.lexsort((distance[keep], neighbour[keep], centre[keep]))
    return (neighbour[keep][order].astype(np.int64), centre[keep][order].astype(np.int64),
            distance[keep][order].astype(np.float64))


def build_graph(structure: Structure, settings: GraphSettings | None = None) -> PeriodicGraph:
    """The PotNet graph of one structure; ``ValueError`` with a reason when it cannot be built."""
    settings = settings or GraphSettings()
    if len(structure) > settings.max_sites:
        raise ValueError(f"{len(structure)} sites exceed max_sites={settings.max_sites}")
    numbers = atomic_numbers(structure)
    potentials = potential_sums(structure, settings.sums)
    src, dst, distance = local_edges(structure, settings.max_neighbours, settings.local_cutoff)
    return PeriodicGraph(numbers, src, dst, distance, potentials.reshape(-1, 3))
