"""Lattice sums against independent values: Madelung constant, pymatgen's Ewald, LJ lattice sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Lattice, Structure

from matmodal.modalities.structure.lattice_sums import (
    LatticeSumSettings,
    coulomb_sum,
    dispersion_sum,
    ewald_eta,
    pauli_sum,
    potential_sums,
)
from tests.modalities import test_structure_data as data

mp_structures = data.mp_structures  # shared real-data fixture
mp_table = data.mp_table  # shared real-data fixture

COULOMB_EV_A = 14.3996454784  # e²/(4πε₀) in eV·Å
# Lennard-Jones lattice sums Σ_{L≠0} (d_nn/|L|)⁶ (Jones & Ingham 1925; Lennard-Jones 1924)
A6 = {"sc": 8.40192397, "bcc": 12.25366982, "fcc": 14.45392195}


def rock_salt(a: float = 2.0) -> Structure:
    """Conventional NaCl cell (8 ions) with nearest-neighbour distance a/2 (test fixture)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def charges(structure: Structure) -> np.ndarray:
    return np.array([1.0 if site.specie.symbol == "Na" else -1.0 for site in structure])


def cubic_lattice(kind: str) -> Structure:
    """One-atom primitive cell of sc/bcc/fcc with nearest-neighbour distance 1 Å (fixture)."""
    if kind == "sc":
        return Structure(Lattice.cubic(1.0), ["Ar"], [[0, 0, 0]])
    group, a = ("Im-3m", 2 / math.sqrt(3)) if kind == "bcc" else ("Fm-3m", math.sqrt(2))
    return Structure.from_spacegroup(group, Lattice.cubic(a), ["Ar"], [[0, 0, 0]]).get_primitive_structure()


@pytest.mark.parametrize("primitive", [False, True])
def test_madelung_constant_of_rock_salt(primitive):
    structure = rock_salt().get_primitive_structure() if primitive else rock_salt()
    q = charges(structure)
    energy = 0.5 * q @ coulomb_sum(structure, LatticeSumSettings()) @ q  # 1/Å, d_nn = 1 Å
    ion_pairs = len(structure) / 2
    assert -energy / ion_pairs == pytest.approx(1.747564594633, abs=1e-8)


def test_coulomb_sum_matches_pymatgen_ewald_energy():
    structure = rock_salt(5.64)
    q = charges(structure)
    ours = 0.5 * q @ coulomb_sum(structure, LatticeSumSettings()) @ q * COULOMB_EV_A
    decorated = structure.copy()
    decorated.add_oxidation_state_by_element({"Na": 1, "Cl": -1})
    assert ours == pytest.approx(EwaldSummation(decorated).total_energy, rel=1e-5)


def test_coulomb_sum_independent_of_ewald_split_and_cutoff(mp_structures):
    structure = max(mp_structures[:50], key=len)
    reference = coulomb_sum(structure, LatticeSumSettings(cutoff=20.0))
    for cutoff in (6.0, 12.0):
        assert ewald_eta(structure.volume, cutoff, 1e-10) > 0
        np.testing.assert_allclose(coulomb_sum(structure, LatticeSumSettings(cutoff=cutoff)),
                                   reference, atol=1e-8)
    np.testing.assert_allclose(reference, reference.T, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(A6))
def test_dispersion_sum_matches_lennard_jones_lattice_sums(kind):
    structure = cubic_lattice(kind)
    assert dispersion_sum(structure, LatticeSumSettings())[0, 0] == pytest.approx(A6[kind], rel=1e-5)
    assert dispersion_sum(structure, LatticeSumSettings(cutoff=25.0))[0, 0] == pytest.approx(
        A6[kind], rel=1e-6)


def test_dispersion_sum_converges_with_cutoff(mp_structures):
    structure = mp_structures[0]
    values = [dispersion_sum(structure, LatticeSumSettings(cutoff=c)) for c in (8.0, 12.0, 16.0, 24.0)]
    errors = [np.abs(v - values[-1]).max() for v in values[:-1]]
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] < 2e-5  # Å⁻⁶, the documented accuracy at the default 12 Å


def test_pauli_sum_matches_brute_force_translation_loop():
    structure = rock_salt(4.0).get_primitive_structure()
    settings = LatticeSumSettings(alpha=1.0, cutoff=30.0)
    ours = pauli_sum(structure, settings)
    cart, lattice = structure.cart_coords, structure.lattice.matrix
    shifts = np.array([[i, j, k] for i in range(-12, 13) for j in range(-12, 13)
                       for k in range(-12, 13)]) @ lattice
    brute = np.zeros_like(ours)
    for i in range(len(structure)):
        for j in range(len(structure)):
            r = np.linalg.norm(cart[j] + shifts - cart[i], axis=1)
            brute[i, j] = np.exp(-settings.alpha * r[r > 1e-9]).sum()
    np.testing.assert_allclose(ours, brute, rtol=1e-9)


def test_potential_sums_shape_and_rejections(mp_structures):
    structure = mp_structures[3]
    sums = potential_sums(structure)
    assert sums.shape == (len(structure), len(structure), 3)
    assert np.isfinite(sums).all() and (sums[..., 1:] > 0).all()
    crowded = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.02, 0, 0]])
    with pytest.raises(ValueError, match="closer than"):
        potential_sums(crowded)
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        potential_sums(disordered)
