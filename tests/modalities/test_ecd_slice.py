"""The geometric slice against analytic periodic functions (plane waves) whose cut on a
lattice plane is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice

from matmodal.modalities.ecd.slicing import (
    plane_window,
    primitive_miller,
    sample_periodic,
    slice_plane,
)

FCC_PRIMITIVE = Lattice([[0.0, 2.0, 2.0], [2.0, 0.0, 2.0], [2.0, 2.0, 0.0]])  # a = 4 Å
TRICLINIC = Lattice.from_parameters(3.1, 3.7, 4.3, 77, 84, 101)


def plane_wave_grid(lattice: Lattice, m: tuple[int, int, int], shape=(60, 60, 60), phase=0.3):
    """Test fixture built here: rho(r) = 2 + cos(G.r + phase), G = 2 pi (m1 b1 + m2 b2 + m3 b3);
    on the grid, point n sits at fractional n / shape, so G.r = 2 pi m . n / shape."""
    idx = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    arg = 2 * np.pi * sum(mi * f for mi, f in zip(m, idx, strict=True))
    g_cart = np.dot(m, lattice.reciprocal_lattice.matrix)
    return 2 + np.cos(arg + phase), lambda r: 2 + np.cos(r @ g_cart + phase)


@pytest.mark.parametrize("lattice", [FCC_PRIMITIVE, TRICLINIC], ids=["fcc", "triclinic"])
@pytest.mark.parametrize("m", [(1, 0, 0), (1, -2, 1), (0, 2, -1)])
def test_slice_equals_closed_form_plane_wave(lattice, m):
    data, exact = plane_wave_grid(lattice, m)
    through = lattice.get_cartesian_coords([0.25, 0.1, 0.6])
    cut = slice_plane(data, lattice, (1, 1, 1), through=through, supercell=8, pixels=64, order=3)
    expected = exact(cut.plane.points(64))
    assert np.max(np.abs(cut.values - expected)) < 2e-3  # cubic spline on 60 points per period
    linear = slice_plane(data, lattice, (1, 1, 1), through=through, supercell=8, pixels=64, order=1)
    assert np.max(np.abs(linear.values - expected)) < 1e-2  # trilinear: (2 pi / 60)^2 / 8 * |m|^2


@pytest.mark.parametrize("lattice", [FCC_PRIMITIVE, TRICLINIC], ids=["fcc", "triclinic"])
def test_wave_along_the_plane_normal_is_constant_on_the_plane(lattice):
    """G parallel to the (111) normal: the cut is constant, 2 + cos(2 pi (h.f0) + phase)."""
    data, _ = plane_wave_grid(lattice, (1, 1, 1), phase=0.0)
    f0 = np.array([0.1, 0.2, 0.05])
    cut = slice_plane(data, lattice, (1, 1, 1), through=lattice.get_cartesian_coords(f0), pixels=48)
    assert np.ptp(cut.values) < 1e-3
    assert cut.values.mean() == pytest.approx(2 + np.cos(2 * np.pi * f0.sum()), abs=1e-3)


def test_window_geometry_fcc_111():
    through = FCC_PRIMITIVE.get_cartesian_coords([0.25, 0.25, 0.25])
    plane = plane_window(FCC_PRIMITIVE, (1, 1, 1), through, supercell=8)
    assert plane.spacing == pytest.approx(4 / np.sqrt(3))  # d_111 = a / sqrt(3)
    assert np.allclose(np.abs(plane.normal), 1 / np.sqrt(3))  # cubic [111]
    assert np.dot(plane.u, plane.normal) == pytest.approx(0, abs=1e-12)
    assert np.linalg.norm(plane.u) == pytest.approx(1) and np.linalg.norm(plane.v) == pytest.approx(1)
    # the plane goes through a lattice translate of the chosen atom
    steps = np.dot(plane.normal, plane.centre - through) / plane.spacing
    assert steps == pytest.approx(round(steps), abs=1e-9)
    # all four corners inside the 8x8x8 block, and one of them on its surface (largest square)
    corners = [plane.centre + plane.half_side * (a * plane.u + b * plane.v) for a in (1, -1) for b in (1, -1)]
    frac = np.array(corners) @ np.linalg.inv(8 * FCC_PRIMITIVE.matrix)
    assert frac.min() >= -1e-9 and frac.max() <= 1 + 1e-9
    assert min(frac.min(), 1 - frac.max()) == pytest.approx(0, abs=1e-9)


def test_sample_periodic_reproduces_grid_points_and_wraps():
    rng = np.random.default_rng(0)
    data = rng.random((8, 9, 10))
    lattice = TRICLINIC
    frac = np.array([[2, 3, 4], [7, 8, 9]]) / np.array([8, 9, 10])
    for shift in (0, 1, -3):  # periodic images give the same value
        points = lattice.get_cartesian_coords(frac + shift)
        values = sample_periodic(data, lattice, points, order=3)
        assert np.allclose(values, [data[2, 3, 4], data[7, 8, 9]])


def test_miller_indices_are_reduced_and_zero_rejected():
    assert primitive_miller((2, 2, 2)) == (1, 1, 1)
    with pytest.raises(ValueError):
        primitive_miller((0, 0, 0))
