"""Regridding a periodic density onto a fixed grid (massa2024: 60^3 with mp-pyrho)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.io.vasp import Chgcar, Poscar, VolumetricData
from scipy.signal import resample

METHODS = ("pyrho", "fourier", "none")


def grid_shape(grid: int | Sequence[int]) -> tuple[int, int, int]:
    """``60`` -> ``(60, 60, 60)``. (pyrho reads a bare int as a point *density*, so the three
    sizes are always passed explicitly.)"""
    shape = (grid, grid, grid) if isinstance(grid, int) else tuple(int(g) for g in grid)
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(f"grid must be one size or three sizes >= 2, got {grid!r}")
    return shape  # type: ignore[return-value]


def regrid_pyrho(density: VolumetricData, shape: tuple[int, int, int]) -> Chgcar:
    """mp-pyrho: ``ChargeDensity.from_pmg(d).get_transformed(np.eye(3), grid_out=[n, n, n])``
    (trilinear interpolation of the periodic grid; every data key, CHGCAR convention kept)."""
    from pyrho.charge_density import ChargeDensity

    moved = ChargeDensity.from_pmg(density).get_transformed(np.eye(3), grid_out=list(shape))
    return moved.to_Chgcar()


def fourier_resample(data: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Band-limited (FFT) resampling of a periodic grid: keeps the grid mean (electron count)
    exactly and is exact for densities whose Fourier components fit both grids."""
    out = np.asarray(data, dtype=float)
    for axis, size in enumerate(shape):
        if out.shape[axis] != size:
            out = resample(out, size, axis=axis)
    return out


def regrid(density: VolumetricData, grid: int | Sequence[int] = 60, method: str = "pyrho") -> Chgcar:
    """``density`` on ``grid`` points per axis (rho * V_cell convention, all keys).

    ``method``: ``"pyrho"`` (the paper's, default), ``"fourier"`` (band-limited, conserves the
    electron count) or ``"none"`` (the input grid is kept)."""
    shape = grid_shape(grid)
    if method not in METHODS:
        raise ValueError(f"regrid method {method!r} not in {METHODS}")
    if method == "none" or (tuple(density.dim) == shape and method == "fourier"):
        return Chgcar(Poscar(density.structure), {k: np.asarray(v, float) for k, v in density.data.items()})
    if method == "pyrho":
        return regrid_pyrho(density, shape)
    data = {k: fourier_resample(v, shape) for k, v in density.data.items()}
    return Chgcar(Poscar(density.structure), data)
