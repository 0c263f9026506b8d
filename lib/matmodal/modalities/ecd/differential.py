"""Differential (deformation) density: the total density minus a superposition of free atoms.

Free-atom valence densities are modelled (no POTCAR or atomic DFT is available offline):
each atom contributes ``Z_val`` electrons in a normalised Slater exponential
``rho_a(r) = Z_val zeta^3 / (8 pi) exp(-zeta r)`` with mean radius ``<r> = 3/zeta`` set to the
element's empirical atomic radius. ``Z_val`` is the ZVAL of the POTCAR the Materials Project
uses for the element (pymatgen's MPRelaxSet + POTCAR summary table), so for an MP CHGCAR the
promolecule carries exactly the valence electrons of the calculation and the differential
density integrates to ~0. The superposition is evaluated in reciprocal space (exact periodic
sum, Fourier transform ``Z_val / (1 + k^2/zeta^2)^2``), band-limited to the density's grid.

* CHGCAR only: ``diff = CHGCAR - promolecule`` (pseudo-valence; semicore peaks partly remain).
* AECCAR0 + AECCAR2: ``diff = (AECCAR0 + AECCAR2) - (AECCAR0 + promolecule)``: the frozen core
  of AECCAR0 is the same superposition of atomic cores, so it cancels and the all-electron
  valence AECCAR2 is compared with the valence promolecule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Structure
from pymatgen.io.vasp import VolumetricData

# one tolerance and one valence table for the pairing check and the differential density
from matmodal.sources.charge_density import COUNT_TOLERANCE as COUNT_TOLERANCE
from matmodal.sources.materials_project import mp_zval as mp_zval


def all_electrons() -> dict[str, float]:
    """Element -> atomic number Z (for all-electron densities, e.g. AECCAR0 + AECCAR2 sums)."""
    return {el.symbol: float(el.Z) for el in Element}


def gpaw_valences() -> Mapping[str, float]:
    """Element -> valence electrons of GPAW's PBE PAW setups, for densities computed with
    :mod:`matmodal.modalities.ecd.dft` (needs the ``dft`` extra)."""
    from matmodal.modalities.ecd.dft import GpawValences

    return GpawValences()


ELECTRON_TABLES = {"mp-zval": mp_zval, "all-electron": all_electrons, "gpaw": gpaw_valences}
AUTO_TABLES = ("mp-zval", "all-electron")  # what electrons="auto" chooses between (no gpaw needed)


def closest_table(structure: Structure, grid_electrons: float) -> str:
    """The electron table (of :data:`AUTO_TABLES`) whose cell total is closest to the grid's electron count."""
    totals = {name: float(valence_electrons(structure, ELECTRON_TABLES[name]()).sum()) for name in AUTO_TABLES}
    return min(totals, key=lambda name: abs(totals[name] - grid_electrons))


def valence_electrons(structure: Structure, zval: Mapping[str, float] | None = None) -> np.ndarray:
    """Valence electrons per site (MP POTCAR ZVAL unless ``zval`` is given)."""
    table = mp_zval() if zval is None else zval
    try:
        return np.array([table[site.specie.symbol] for site in structure], dtype=float)
    except KeyError as error:
        raise ValueError(f"no valence electron count for element {error.args[0]}") from error


def slater_zeta(element: str) -> float:
    """Exponent (1/Å) of the model free-atom density: ``3 / atomic radius``."""
    el = Element(element)
    radius = el.atomic_radius or el.atomic_radius_calculated or 1.5
    return 3.0 / float(radius)


def promolecule(structure: Structure, shape: tuple[int, int, int], electrons: np.ndarray) -> np.ndarray:
    """Superposition of model free-atom densities on the grid (rho * V_cell, periodic).

    ``electrons``: electrons per site. Evaluated as a Fourier series on ``shape``; the grid mean
    equals ``electrons.sum()``."""
    freqs = [np.fft.fftfreq(n, d=1.0 / n) for n in shape]  # integer Miller indices m
    m1, m2, m3 = np.meshgrid(*freqs, indexing="ij")
    recip = structure.lattice.reciprocal_lattice.matrix  # includes 2 pi (1/Å)
    gx = m1[..., None] * recip[0] + m2[..., None] * recip[1] + m3[..., None] * recip[2]
    k2 = np.einsum("...i,...i->...", gx, gx)
    spectrum = np.zeros(shape, dtype=complex)
    zetas = np.array([slater_zeta(site.specie.symbol) for site in structure])
    for zeta in np.unique(zetas):
        form = 1.0 / (1.0 + k2 / zeta**2) ** 2
        mask = zetas == zeta
        phase = np.zeros(shape, dtype=complex)
        for frac, n_e in zip(structure.frac_coords[mask], electrons[mask], strict=True):
            e1, e2, e3 = (np.exp(-2j * np.pi * f * x) for f, x in zip(freqs, frac, strict=True))
            phase += n_e * e1[:, None, None] * e2[None, :, None] * e3[None, None, :]
        spectrum += form * phase
    return np.fft.ifftn(spectrum * np.prod(shape)).real


@dataclass(frozen=True)
class Differential:
    """A differential density (rho * V_cell) and how it was made."""

    data: np.ndarray
    method: str  # "aeccar" | "chgcar-promolecule"
    grid_electrons: float  # grid mean of the density the promolecule is subtracted from
    model_electrons: float  # electrons in the promolecule
    rescaled: bool  # promolecule scaled to the grid's count (non-MP POTCARs)

    @property
    def count_mismatch(self) -> float:
        """Relative difference between grid and ZVAL electron counts."""
        return abs(self.grid_electrons - self.model_electrons) / max(self.model_electrons, 1e-12)


def differential_density(
    total: VolumetricData | None = None,
    aeccar0: VolumetricData | None = None,
    aeccar2: VolumetricData | None = None,
    *,
    zval: Mapping[str, float] | None = None,
    rescale: bool = False,
) -> Differential:
    """Total minus the superposition of model free-atom densities (rho * V_cell).

    With both AECCARs the all-electron path is used, else the CHGCAR approximation.
    ``rescale=True`` scales the promolecule to the grid's electron count (for densities made
    with other POTCARs than MP's); otherwise counts come from ZVAL unchanged."""
    use_aeccar = aeccar0 is not None and aeccar2 is not None
    valence = aeccar2 if use_aeccar else total
    if valence is None:
        raise ValueError("a total density (CHGCAR) or an AECCAR0/AECCAR2 pair is needed")
    electrons = valence_electrons(valence.structure, zval)
    grid_electrons = float(np.mean(valence.data["total"]))
    pro = promolecule(valence.structure, tuple(valence.dim), electrons)  # type: ignore[arg-type]
    if rescale:
        pro *= grid_electrons / electrons.sum()
    if use_aeccar:
        core = np.asarray(aeccar0.data["total"], float)  # type: ignore[union-attr]
        data = (core + valence.data["total"]) - (core + pro)  # frozen core cancels
        return Differential(data, "aeccar", grid_electrons, float(electrons.sum()), rescale)
    return Differential(valence.data["total"] - pro, "chgcar-promolecule", grid_electrons,
                        float(electrons.sum()), rescale)
