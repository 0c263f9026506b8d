"""A geometric slice of a periodic density on a crystallographic plane.

The plane (Miller indices ``hkl``) passes through a chosen atom; the square image is the
largest square, centred on the plane's point nearest the supercell centre, that fits inside
the ``n x n x n`` supercell (massa2024: (111) of an 8x8x8 supercell). Points of the square are
mapped to fractional coordinates of the unit cell and the periodic grid is interpolated there
(cubic B-spline, wrapped), since the plane is in general not aligned with the grid.

Image axes: ``image[i, j]`` is at ``centre + x_j u + y_i v`` (``u`` an in-plane lattice
direction, ``v = n x u``); row 0 is ``y = -half_side`` (rendered at the bottom).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import reduce
from math import gcd

import numpy as np
from pymatgen.core import Lattice
from scipy.ndimage import map_coordinates


@dataclass(frozen=True)
class Plane:
    """A square window on a lattice plane (Cartesian, Å)."""

    normal: np.ndarray  # unit normal
    u: np.ndarray  # in-plane unit vector along a lattice direction
    v: np.ndarray  # normal x u
    centre: np.ndarray  # centre of the square (Å)
    half_side: float  # Å
    spacing: float  # interplanar distance d_hkl (Å)

    def points(self, pixels: int) -> np.ndarray:
        """Cartesian pixel centres, shape (pixels, pixels, 3): ``[i, j]`` at (x_j, y_i)."""
        ticks = (np.arange(pixels) + 0.5) / pixels * 2 * self.half_side - self.half_side
        y, x = np.meshgrid(ticks, ticks, indexing="ij")
        return self.centre + x[..., None] * self.u + y[..., None] * self.v


def primitive_miller(miller: tuple[int, int, int]) -> tuple[int, int, int]:
    """``(2, 2, 2)`` -> ``(1, 1, 1)``; rejects ``(0, 0, 0)``."""
    divisor = reduce(gcd, (abs(int(m)) for m in miller))
    if divisor == 0:
        raise ValueError("Miller indices (0, 0, 0) do not define a plane")
    return tuple(int(m) // divisor for m in miller)  # type: ignore[return-value]


def in_plane_direction(lattice: Lattice, miller: tuple[int, int, int], search: int = 3) -> np.ndarray:
    """Unit vector of the shortest lattice vector ``t`` with ``hkl . t = 0`` (lies in the plane)."""
    best, best_len = None, np.inf
    for t in itertools.product(range(-search, search + 1), repeat=3):
        if any(t) and np.dot(t, miller) == 0:
            vec = np.dot(t, lattice.matrix)
            length = float(np.linalg.norm(vec))
            if length < best_len - 1e-9:
                best, best_len = vec, length
    assert best is not None
    return best / best_len


def plane_window(
    lattice: Lattice, miller: tuple[int, int, int], through: np.ndarray, supercell: int = 8
) -> Plane:
    """The plane ``hkl`` through Cartesian point ``through`` (or a lattice translate of it) that
    passes nearest the centre of the ``supercell``^3 block, and its largest inscribed square."""
    hkl = primitive_miller(miller)
    g = np.dot(hkl, lattice.reciprocal_lattice_crystallographic.matrix)  # |g| = 1/d_hkl
    spacing = 1.0 / float(np.linalg.norm(g))
    normal = g * spacing
    u = in_plane_direction(lattice, hkl)
    v = np.cross(normal, u)
    block = supercell * lattice.matrix
    mid = 0.5 * block.sum(axis=0)
    offset = float(np.dot(normal, through))
    offset += round((float(np.dot(normal, mid)) - offset) / spacing) * spacing
    centre = mid - (float(np.dot(normal, mid)) - offset) * normal
    return Plane(normal, u, v, centre, _inscribed_half_side(block, centre, u, v), spacing)


def _inscribed_half_side(block: np.ndarray, centre: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    """Largest ``s`` with the square ``centre +- s u +- s v`` inside the parallelepiped ``block``."""
    inv = np.linalg.inv(block)
    f_centre = centre @ inv
    limit = np.inf
    for su, sv in itertools.product((1, -1), repeat=2):
        g = (su * u + sv * v) @ inv
        for fc, gi in zip(f_centre, g, strict=True):
            if gi > 1e-12:
                limit = min(limit, (1 - fc) / gi)
            elif gi < -1e-12:
                limit = min(limit, -fc / gi)
    if not np.isfinite(limit) or limit <= 0:
        raise ValueError("the plane misses the supercell")
    return float(limit)


def sample_periodic(data: np.ndarray, lattice: Lattice, points: np.ndarray, order: int = 3) -> np.ndarray:
    """Values of the periodic grid ``data`` (point ``n`` at fractional ``n / shape``) at
    Cartesian ``points`` (..., 3), by wrapped B-spline interpolation of ``order`` (0-5)."""
    frac = points.reshape(-1, 3) @ lattice.inv_matrix
    coords = (frac * np.array(data.shape)).T
    values = map_coordinates(np.asarray(data, float), coords, order=order, mode="grid-wrap")
    return values.reshape(points.shape[:-1])


@dataclass(frozen=True)
class Slice:
    """A sampled square: values in the input's units, the window, and the plane's atoms."""

    values: np.ndarray  # (pixels, pixels)
    plane: Plane
    miller: tuple[int, int, int]
    supercell: int

    @property
    def side(self) -> float:
        """Edge of the square (Å)."""
        return 2 * self.plane.half_side


def slice_plane(
    data: np.ndarray,
    lattice: Lattice,
    miller: tuple[int, int, int] = (1, 1, 1),
    *,
    through: np.ndarray | None = None,
    supercell: int = 8,
    pixels: int = 224,
    crop: float = 1.0,
    order: int = 3,
) -> Slice:
    """Sample ``data`` on the plane ``miller`` through Cartesian ``through`` (default: origin)
    within a ``supercell``^3 block; ``crop`` (0, 1] shrinks the square about its centre."""
    if not 0 < crop <= 1:
        raise ValueError(f"crop must be in (0, 1], got {crop}")
    origin = np.zeros(3) if through is None else np.asarray(through, float)
    plane = plane_window(lattice, miller, origin, supercell)
    if crop < 1:
        plane = Plane(plane.normal, plane.u, plane.v, plane.centre, plane.half_side * crop, plane.spacing)
    values = sample_periodic(data, lattice, plane.points(pixels), order)
    return Slice(values, plane, primitive_miller(miller), supercell)
