"""First-principles charge densities (GPAW, PBE) for structures that have no Materials Project density.

:func:`compute_density` runs one self-consistent PBE calculation with GPAW (plane waves by
default) and returns the density as a pymatgen :class:`~pymatgen.io.vasp.outputs.Chgcar` in the
CHGCAR convention the ECD pipeline takes (``data["total"]`` = rho * V_cell in e, grid mean =
electrons in the cell; axes along the structure's lattice vectors a, b, c, point (0, 0, 0) at the
origin), so regrid, differential density, (111) slice and images run unchanged:

* ``all_electron=False``: the pseudo valence density plus valence compensation charges on GPAW's
  coarse grid (:func:`valence_pseudo_density`) — the analogue of a VASP CHGCAR (pseudo density +
  augmentation charges, no core); grid mean = GPAW's valence electrons, which differ from VASP's
  PAW valences for some elements, e.g. semicore states (:func:`valence_electrons`).
* ``all_electron=True``: the all-electron density (core + valence, PAW-reconstructed on a grid
  ``ae_refinement`` times finer; grid mean = sum of Z) — the convention of the pyrho Si test file.
* :func:`compute_aeccars`: ``(core, all-electron valence)``, the AECCAR0/AECCAR2 pair the
  pipeline's all-electron differential path takes.

One calculation gives all three; it is cached on disk under ``<cache_dir>/dft/<key>/`` keyed by
the structure (:func:`matmodal.hashing.structure_digest`) and every field of :class:`DftSettings`,
with its provenance (GPAW/ASE versions, PAW setups, settings, k-points, wall time) in ``info.json``.

GPAW is an optional extra (``pip install -e ".[dft]"`` or ``scripts/install.sh --dft``) and is
imported lazily; the PAW setups come from the ``gpaw-data`` wheel (no download).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pymatgen.core import Element, Structure
from pymatgen.io.vasp import Chgcar, Poscar

from matmodal.hashing import payload_digest, structure_digest

INSTALL_HINT = 'pip install -e ".[dft]" (or scripts/install.sh --dft, which also installs libxc-dev and libopenblas-dev)'
MODES = ("pw", "lcao")
SPIN = ("auto", "on", "off")
CACHE_SECTION = "dft"
FIELDS = ("pseudo", "ae_valence", "ae_total")  # cached grids (rho * V_cell)
# initial moments (mu_B) for spin-polarised runs: the Materials Project's MAGMOM defaults
# (pymatgen MPRelaxSet), by element; other elements start at DEFAULT_MAGMOM, as in MP
DEFAULT_MAGMOM = 0.6
# PAW setup per element: of the installed gpaw-data setups, the one whose valence count is closest to
# the Materials Project POTCAR's ZVAL (e.g. Ag.11, Ir.9, Pd.10, Pt.10), else GPAW's default
SETUP_RULE = "closest-mp-zval"


class DftUnavailableError(ImportError):
    """GPAW (the ``dft`` extra) is not installed."""


class DftError(RuntimeError):
    """A density calculation that failed (the structure and the reason are named)."""


@dataclass(frozen=True)
class DftSettings:
    """Every setting of the PBE density calculation (defaults: Materials Project-like).

    Units: ``cutoff`` eV (plane-wave kinetic-energy cutoff; MP uses 520 eV, ENCUT), ``kpoint_density``
    k-points per Å⁻¹ along each reciprocal vector (ASE convention, 2π included: n_i =
    ceil(2π |b_i| density)), ``smearing`` eV (Fermi-Dirac width), ``grid_spacing`` Å (None: GPAW's
    choice from the cutoff), ``density_convergence`` electrons per valence electron.
    Cost grows as ~cutoff^1.5 · k-points · electrons² (see :func:`estimate_seconds`)."""

    mode: str = "pw"  # "pw" (plane waves) | "lcao" (atomic orbitals, ``basis``; measured slower here)
    cutoff: float = 520.0
    kpoint_density: float = 3.5
    spin: str = "auto"  # "auto": spin-polarised when a magnetic element is present | "on" | "off"
    smearing: float = 0.05
    xc: str = "PBE"
    grid_spacing: float | None = None
    basis: str = "dzp"  # LCAO basis (ignored in pw mode)
    density_convergence: float = 1e-4
    maxiter: int = 333
    ae_refinement: int = 2  # all-electron grid = this x the coarse grid per axis
    symmetry_tolerance: float = 1e-4  # fractional coordinates; MP cells carry ~1e-6 noise (GPAW default 1e-7)

    def __post_init__(self) -> None:
        checks = [
            (self.mode in MODES, f"mode {self.mode!r} not in {MODES}"),
            (self.spin in SPIN, f"spin {self.spin!r} not in {SPIN}"),
            (self.cutoff > 0, f"cutoff must be > 0 eV, got {self.cutoff}"),
            (self.kpoint_density > 0, f"kpoint_density must be > 0 per Å⁻¹, got {self.kpoint_density}"),
            (self.smearing >= 0, f"smearing must be >= 0 eV, got {self.smearing}"),
            (self.grid_spacing is None or self.grid_spacing > 0, f"grid_spacing must be > 0 Å, got {self.grid_spacing}"),
            (self.density_convergence > 0, "density_convergence must be > 0"),
            (self.maxiter >= 1, "maxiter must be >= 1"),
            (self.ae_refinement in (1, 2, 4), f"ae_refinement must be 1, 2 or 4, got {self.ae_refinement}"),
            (self.symmetry_tolerance > 0, f"symmetry_tolerance must be > 0, got {self.symmetry_tolerance}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DftSettings: {message}")

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """Digest of every field and the setup rule (a changed setting never reuses a cached density)."""
        return payload_digest({**self.describe(), "setup_rule": SETUP_RULE}, 16)


# -- what the calculation will be ---------------------------------------------------------------
def magmom_table() -> dict[str, float]:
    """Element -> initial moment (mu_B): the largest MP MAGMOM default over the element's entries."""
    from pymatgen.io.vasp.sets import MPRelaxSet

    table: dict[str, float] = {}
    for name, value in MPRelaxSet.CONFIG["INCAR"]["MAGMOM"].items():
        symbol = name.rstrip("+-0123456789")
        table[symbol] = max(table.get(symbol, 0.0), float(value))
    return table


def is_magnetic(element: str) -> bool:
    """3d metals V-Ni, lanthanides and actinides, or an MP MAGMOM default >= 1 mu_B."""
    el = Element(element)
    return (23 <= el.Z <= 28) or el.is_lanthanoid or el.is_actinoid or magmom_table().get(element, 0.0) >= 1.0


def spin_polarised(structure: Structure, settings: DftSettings) -> bool:
    """Whether the calculation is spin-polarised (``spin="auto"``: any magnetic element)."""
    if settings.spin != "auto":
        return settings.spin == "on"
    return any(is_magnetic(el.symbol) for el in structure.composition.elements)


def initial_magmoms(structure: Structure) -> list[float]:
    """Per-site initial moments (mu_B), MP defaults."""
    table = magmom_table()
    return [table.get(site.specie.symbol, DEFAULT_MAGMOM) for site in structure]


def kpoint_grid(structure: Structure, density: float) -> tuple[int, int, int]:
    """Monkhorst-Pack sizes for ``density`` k-points per Å⁻¹ (n_i = ceil(2π |b_i| density), >= 1)."""
    recip = structure.lattice.reciprocal_lattice.abc  # includes 2π (1/Å)
    return tuple(max(1, math.ceil(b * density)) for b in recip)  # type: ignore[return-value]


def irreducible_kpoints(structure: Structure, mesh: tuple[int, int, int], symprec: float = 1e-4) -> int:
    """Irreducible k-points of a Γ-centred ``mesh`` under the structure's symmetry (spglib,
    ``symprec`` Å; time reversal included, as in GPAW)."""
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    mapping, _ = spglib.get_ir_reciprocal_mesh(mesh, cell, is_shift=[0, 0, 0], symprec=symprec)
    return len(np.unique(mapping))


# seconds per (irreducible k-point x valence electron^2 x (cutoff / 520 eV)^1.5 x spin channel) plus
# a fixed start-up, fitted to the runs in docs/dft.md (this 2-core machine under load ~9)
COST_PER_UNIT = 0.0054
COST_STARTUP = 6.7
LCAO_FACTOR = 6.0  # LCAO (dzp) cost relative to PW 520 eV


def valence_table(symbol: str) -> float:
    """Valence electrons of ``symbol`` for cost estimates: GPAW's setup when gpaw is installed, else
    the MP POTCAR's ZVAL, else Z."""
    from matmodal.sources.materials_project import mp_zval

    if available():
        try:
            return GpawValences()[symbol]
        except KeyError:
            pass
    return mp_zval().get(symbol, float(Element(symbol).Z))


def estimate_seconds(structure: Structure, settings: DftSettings | None = None) -> float:
    """A rough wall-time estimate (s, one core) of :func:`compute_density` for ``structure``;
    calibrated on this project's measurements (docs/dft.md), good to a factor of ~2."""
    settings = settings or DftSettings()
    nk = irreducible_kpoints(structure, kpoint_grid(structure, settings.kpoint_density))
    electrons = float(sum(valence_table(site.specie.symbol) for site in structure))
    # LCAO (dzp) measured 3-13x slower than PW 520 eV here (Si 97 s, SiC 280 s): not a cheap mode on this machine
    cutoff = (settings.cutoff / 520.0) ** 1.5 if settings.mode == "pw" else LCAO_FACTOR
    spins = 2 if spin_polarised(structure, settings) else 1
    return COST_STARTUP + COST_PER_UNIT * nk * electrons**2 * cutoff * spins


# -- GPAW ---------------------------------------------------------------------------------------
def load_gpaw() -> Any:
    """The gpaw module with the ``gpaw-data`` PAW setups on its search path (no download)."""
    try:
        import gpaw
    except ImportError as error:
        raise DftUnavailableError(f"computing a charge density needs GPAW: {INSTALL_HINT} ({error})") from error
    try:
        import gpaw_data
    except ImportError:
        gpaw_data = None
    if gpaw_data is not None and not os.environ.get("GPAW_SETUP_PATH"):
        path = gpaw_data.datapath()
        if all(Path(p) != path for p in gpaw.setup_paths):
            gpaw.setup_paths.insert(0, path)
    if not gpaw.setup_paths:
        raise DftUnavailableError(f"no GPAW PAW setups found (install gpaw-data: {INSTALL_HINT})")
    return gpaw


def available() -> bool:
    """Whether GPAW can be imported."""
    try:
        load_gpaw()
    except DftUnavailableError:
        return False
    return True


def setups_for(structure: Structure, xc: str = "PBE") -> dict[str, str]:
    """GPAW ``setups=`` for the structure's elements (:func:`setup_choice`); :class:`DftError` naming
    an element without a setup."""
    try:
        return {el.symbol: setup_choice(el.symbol, xc)[0] for el in structure.composition.elements}
    except KeyError as error:
        raise DftError(f"no GPAW {xc} PAW setup for {error.args[0]} (gpaw-data)") from error


def _calculator(structure: Structure, settings: DftSettings, mesh: tuple[int, int, int], spin: bool, log: Path) -> Any:
    gpaw = load_gpaw()
    from gpaw import PW, FermiDirac

    kwargs: dict[str, Any] = {
        "xc": settings.xc, "kpts": {"size": mesh, "gamma": True}, "occupations": FermiDirac(settings.smearing),
        "spinpol": spin, "convergence": {"density": settings.density_convergence}, "maxiter": settings.maxiter,
        "txt": str(log), "symmetry": {"tolerance": settings.symmetry_tolerance},
        "setups": setups_for(structure, settings.xc),
    }
    if settings.mode == "pw":
        kwargs["mode"] = PW(settings.cutoff)
    else:
        kwargs.update(mode="lcao", basis=settings.basis)
    if settings.grid_spacing is not None:
        kwargs["h"] = settings.grid_spacing
    return gpaw.GPAW(**kwargs)


def valence_pseudo_density(calc: Any) -> np.ndarray:
    """The CHGCAR analogue of a finished GPAW (new-API) calculation, per spin (e/Å^3, shape
    (spins, n1, n2, n3)): smooth valence density (the pseudo core removed) plus the valence
    compensation charges ``sum_ij D_ij Delta_ijL ghat_L`` of each atom, so the multipoles inside
    the augmentation spheres are the all-electron ones and the integral is the valence count.
    (GPAW's ``get_pseudo_density`` keeps the pseudo core and adds ``-N_core~`` Gaussians at the
    nuclei: same integral, deep negative peaks at the atoms.)"""
    from ase.units import Bohr
    from gpaw.core.atom_arrays import AtomArraysLayout

    dft, density = calc.dft, calc.dft.density
    nt = density.nt_sR.to_pbc_grid().copy()
    nt.data[:density.ndensities] -= density.nct_R.to_pbc_grid().data
    matrices = density.D_asii
    charges = AtomArraysLayout([(density.ncomponents, setup.Delta_iiL.shape[2]) for setup in dft.setups],
                               atomdist=matrices.layout.atomdist).empty()
    for a, d_sii in matrices.items():
        charges[a] = np.einsum("sij,ijL->sL", d_sii.real, dft.setups[a].Delta_iiL)
    ghat = dft.setups.create_compensation_charges(nt.desc, dft.relpos_ac, matrices.layout.atomdist)
    ghat.add_to(nt, charges)
    return np.asarray(nt.scaled(Bohr, Bohr**-3).gather(broadcast=True).data[:density.ndensities], float)


def _run(structure: Structure, settings: DftSettings, log: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One SCF calculation: the grids (rho * V_cell) and what the calculation was."""
    from pymatgen.io.ase import AseAtomsAdaptor

    gpaw = load_gpaw()
    import ase

    spin = spin_polarised(structure, settings)
    mesh = kpoint_grid(structure, settings.kpoint_density)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    if spin:
        atoms.set_initial_magnetic_moments(initial_magmoms(structure))
    atoms.calc = _calculator(structure, settings, mesh, spin, log)
    start = time.perf_counter()
    try:
        energy = float(atoms.get_potential_energy())
    except Exception as error:
        raise DftError(f"GPAW failed on {structure.composition.reduced_formula} ({len(structure)} sites): "
                       f"{type(error).__name__}: {error} (log: {log})") from error
    calc = atoms.calc
    volume = float(structure.volume)
    spins = valence_pseudo_density(calc) * volume
    grids = {"pseudo": spins.sum(axis=0)}
    if spin:
        grids["pseudo_diff"] = spins[0] - spins[1]
    for name, skip_core in (("ae_valence", True), ("ae_total", False)):
        grids[name] = np.asarray(calc.get_all_electron_density(
            gridrefinement=settings.ae_refinement, skip_core=skip_core), float) * volume
    wall = time.perf_counter() - start
    valence = {s.symbol: float(s.Nv) for s in calc.setups}
    setups = setups_for(structure, settings.xc)
    info = {
        "gpaw": gpaw.__version__, "ase": ase.__version__, "setup_paths": [str(p) for p in gpaw.setup_paths],
        "settings": settings.describe(), "kpoint_mesh": list(mesh), "kpoints_irreducible": len(calc.get_ibz_k_points()),
        "spin_polarised": spin, "wall_s": round(wall, 2), "energy_ev": energy,
        "fermi_level_ev": float(calc.get_fermi_level()), "magnetic_moment_mub": float(calc.get_magnetic_moment()) if spin else 0.0,
        "setups": setups, "valence_electrons": valence, "valence_electrons_cell": float(sum(valence[s.specie.symbol] for s in structure)),
        "grid_shape": {k: list(v.shape) for k, v in grids.items()},
        "grid_electrons": {k: float(v.mean()) for k, v in grids.items() if not k.endswith("_diff")},
        "formula": structure.composition.reduced_formula, "n_sites": len(structure),
    }
    return grids, info


# -- cache --------------------------------------------------------------------------------------
def cache_folder(structure: Structure, settings: DftSettings, cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/dft/<structure digest>-<settings key>/`` (cache_dir: Settings.cache_dir)."""
    if cache_dir is None:
        from matmodal.config import get_settings

        cache_dir = get_settings().cache_dir
    return Path(cache_dir) / CACHE_SECTION / f"{structure_digest(structure)[:20]}-{settings.key()}"


def _load(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    info_path, grid_path = folder / "info.json", folder / "density.npz"
    if not (info_path.exists() and grid_path.exists()):
        return None
    with np.load(grid_path, allow_pickle=False) as z:
        grids = {k: z[k] for k in z.files}
    return grids, json.loads(info_path.read_text())


def _store(folder: Path, grids: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Atomic: the grids, then info.json (its presence marks a complete entry)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as handle:
        np.savez_compressed(handle, **grids)
    Path(handle.name).replace(folder / "density.npz")
    tmp = folder / "info.json.tmp"
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(folder / "info.json")


def density_grids(structure: Structure, settings: DftSettings | None = None, *, cache_dir: Path | None = None,
                  threads: int = 1) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every grid of the calculation (``pseudo``, ``ae_valence``, ``ae_total``, + ``pseudo_diff``
    when spin-polarised; rho * V_cell, e) and its provenance, from the cache when present.
    ``threads``: BLAS threads of the calculation (not part of the cache key)."""
    settings = settings or DftSettings()
    folder = cache_folder(structure, settings, cache_dir)
    cached = _load(folder)
    if cached is not None:
        grids, info = cached
        return grids, {**info, "cache": "hit", "cache_dir": str(folder)}
    from threadpoolctl import threadpool_limits

    folder.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(threads):
        grids, info = _run(structure, settings, folder / "gpaw.txt")
    info.update(structure_digest=structure_digest(structure), settings_key=settings.key(), threads=threads)
    _store(folder, grids, info)
    return grids, {**info, "cache": "miss", "cache_dir": str(folder)}


def _chgcar(structure: Structure, data: dict[str, np.ndarray]) -> Chgcar:
    return Chgcar(Poscar(structure), {k: np.asarray(v, float) for k, v in data.items()})


def compute_density(structure: Structure, settings: DftSettings | None = None, all_electron: bool = False, *,
                    cache_dir: Path | None = None, threads: int = 1) -> tuple[Chgcar, dict[str, Any]]:
    """The PBE density of ``structure`` (CHGCAR convention, rho * V_cell) and its provenance.

    ``all_electron=False``: pseudo valence density (``total``; ``diff`` = up - down when
    spin-polarised); ``True``: all-electron density, core included (grid mean = sum of Z)."""
    grids, info = density_grids(structure, settings, cache_dir=cache_dir, threads=threads)
    if all_electron:
        return _chgcar(structure, {"total": grids["ae_total"]}), {**info, "density": "all-electron (core + valence)"}
    data = {"total": grids["pseudo"], **({"diff": grids["pseudo_diff"]} if "pseudo_diff" in grids else {})}
    return _chgcar(structure, data), {**info, "density": "pseudo valence"}


def compute_aeccars(structure: Structure, settings: DftSettings | None = None, *, cache_dir: Path | None = None,
                    threads: int = 1) -> tuple[tuple[Chgcar, Chgcar], dict[str, Any]]:
    """``(core, all-electron valence)`` — the AECCAR0/AECCAR2 analogue (rho * V_cell, fine grid)."""
    grids, info = density_grids(structure, settings, cache_dir=cache_dir, threads=threads)
    core = grids["ae_total"] - grids["ae_valence"]
    return ((_chgcar(structure, {"total": core}), _chgcar(structure, {"total": grids["ae_valence"]})),
            {**info, "density": "all-electron core / valence (AECCAR0 / AECCAR2 analogue)"})


@cache
def _setup_valences(symbol: str, xc: str) -> dict[str, float]:
    """Setup name ("paw" = GPAW's default, else e.g. "11" for Ag.11.PBE) -> valence electrons."""
    gpaw = load_gpaw()
    from gpaw.setup import create_setup

    names = {"paw"} | {p.name[len(symbol) + 1:-len(f".{xc}.gz")] for folder in gpaw.setup_paths
                       for p in Path(folder).glob(f"{symbol}.*.{xc}.gz")}
    found = {}
    for name in sorted(names):
        try:
            found[name] = float(create_setup(symbol, xc, type=name).Nv)
        except (RuntimeError, OSError, ValueError):  # no such setup file
            continue
    if not found:
        raise KeyError(symbol)
    return found


def setup_choice(symbol: str, xc: str = "PBE") -> tuple[str, float]:
    """(setup name, valence electrons) of the installed setup whose valence count is closest to the
    Materials Project's POTCAR ZVAL (ties and elements without a ZVAL: GPAW's default ``paw``)."""
    from matmodal.sources.materials_project import mp_zval

    options = _setup_valences(symbol, xc)
    target = mp_zval().get(symbol)
    if target is None:
        return "paw", options.get("paw", next(iter(options.values())))
    name = min(options, key=lambda n: (abs(options[n] - target), n != "paw"))
    return name, options[name]


class GpawValences(Mapping[str, float]):
    """Element -> valence electrons of the GPAW PAW setup :func:`compute_density` uses for ``xc``
    (:func:`setup_choice`; read on first use; needs gpaw). Even so they differ from the Materials
    Project's VASP PAW valences for many elements (gpaw-data 1.2.1 vs MP: Ge 4 vs 14, Ga 3 vs 13,
    Cu 11 vs 17, Fe 8 vs 14, Ti 12 vs 10, Mg 10 vs 8, ...): no semicore setup is installed for them."""

    def __init__(self, xc: str = "PBE") -> None:
        self.xc = xc

    def __getitem__(self, symbol: str) -> float:
        return setup_choice(symbol, self.xc)[1]

    def __iter__(self) -> Iterator[str]:
        gpaw = load_gpaw()
        names = {p.name.split(".")[0] for folder in gpaw.setup_paths for p in Path(folder).glob(f"*.{self.xc}*")}
        return iter(sorted(n for n in names if n in _ELEMENTS))

    def __len__(self) -> int:
        return sum(1 for _ in self)


_ELEMENTS = frozenset(el.symbol for el in Element)


def valence_electrons(structure: Structure, xc: str = "PBE") -> dict[str, float]:
    """Element -> valence electrons of GPAW's PAW setup for the structure's elements (needs gpaw)."""
    table = GpawValences(xc)
    return {el.symbol: table[el.symbol] for el in structure.composition.elements}


def valence_mismatch(structure: Structure, xc: str = "PBE") -> dict[str, tuple[float, float]]:
    """Elements whose GPAW valence differs from the Materials Project POTCAR's ZVAL:
    ``{element: (GPAW, MP)}`` (needs gpaw). A density computed for such an element is not like
    the MP densities a model trained on (docs/dft.md: GeC, Ge 4 vs 14 e, anti-correlated)."""
    from matmodal.sources.materials_project import mp_zval

    zval = mp_zval()
    return {el: (ours, zval[el]) for el, ours in valence_electrons(structure, xc).items()
            if el in zval and ours != zval[el]}


# -- into the ECD pipeline ----------------------------------------------------------------------
def ecd_settings_for_dft(settings: Any) -> Any:
    """``EcdSettings`` for a GPAW density: the promolecule carries GPAW's valence electrons
    (``electrons="gpaw"``), so the differential density of a computed valence density integrates to ~0."""
    from dataclasses import replace

    return settings if settings.differential == "none" else replace(settings, electrons="gpaw", rescale_counts=False)


def on_grid(density: Chgcar, shape: Sequence[int] | None) -> Chgcar:
    """``density`` Fourier-resampled to ``shape`` (every field; keeps the electron count); None: unchanged."""
    from matmodal.modalities.ecd.regrid import fourier_resample

    if shape is None or tuple(density.dim) == tuple(shape):
        return density
    return _chgcar(density.structure, {k: fourier_resample(np.asarray(v), tuple(shape)) for k, v in density.data.items()})


def dft_density_image(structure: Structure, ecd_settings: Any = None, settings: DftSettings | None = None, *,
                      cache_dir: Path | None = None, threads: int = 1,
                      grid: Sequence[int] | None = None) -> tuple[Any, dict[str, Any]]:
    """The massa2024 ECD image (:func:`~matmodal.modalities.ecd.pipeline.density_image`) of the
    density computed for ``structure``, and the calculation's provenance. ``grid``: resample the
    density to this shape first (the grid of the densities a model trained on, e.g. MultiMat's 32³,
    so both enter the pipeline at one resolution, as in the validation)."""
    from matmodal.modalities.ecd.pipeline import EcdSettings, density_image

    density, info = compute_density(structure, settings, cache_dir=cache_dir, threads=threads)
    result = density_image(on_grid(density, grid), settings=ecd_settings_for_dft(ecd_settings or EcdSettings()))
    result.notes.append(f"density computed with GPAW {info['gpaw']} ({info['settings']['mode']}, "
                        f"{info['settings']['cutoff']:g} eV, k {info['kpoint_mesh']}, {info['wall_s']:.0f} s)"
                        + (f", resampled to {'x'.join(map(str, grid))}" if grid else ""))
    return result, info


def ecd_images_for(items: Sequence[tuple[str, Structure]], folder: Path, ecd_settings: Any = None,
                   settings: DftSettings | None = None, *, cache_dir: Path | None = None, threads: int = 1,
                   stream: TextIO | None = None, grid: Sequence[int] | None = None,
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """ECD images of structures that have no density: one GPAW calculation each (cached), after a
    time estimate per structure and in total on ``stream`` (default stderr); ``grid``: see
    :func:`dft_density_image`. Returns ``{key: absolute PNG path}`` and ``{key: reason}`` for the
    structures that failed."""
    from matmodal.modalities.ecd.pipeline import EcdError, write_images
    from matmodal.paths import safe_name

    stream = stream or sys.stderr
    settings = settings or DftSettings()
    estimates = {key: estimate_seconds(structure, settings) for key, structure in items}
    print(f"computing {len(items)} charge densities with GPAW ({settings.mode} {settings.cutoff:g} eV, "
          f"k-point density {settings.kpoint_density:g}/Å): about {sum(estimates.values()) / 60:.1f} min "
          "on one core (cached ones are instant)", file=stream, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths, failed = {}, {}
    for key, structure in items:
        print(f"  {key}: {structure.composition.reduced_formula}, {len(structure)} sites, ~{estimates[key]:.0f} s",
              file=stream, flush=True)
        try:
            result, info = dft_density_image(structure, ecd_settings, settings, cache_dir=cache_dir, threads=threads,
                                             grid=grid)
        except (DftError, EcdError, KeyError, ValueError) as error:
            failed[key] = f"density: {error}"
            continue
        written = write_images(result, folder / safe_name(key, ".png"), ecd_settings)
        paths[key] = str(written["image"].resolve())
        print(f"  {key}: done in {info['wall_s']:.0f} s ({info['cache']})", file=stream, flush=True)
    return paths, failed


def recorded_ecd_settings(recorded: dict[str, Any], source: str = "provenance") -> Any:
    """The ``EcdSettings`` a dataset recorded in its provenance (``"ecd"``: the fields, plus notes)."""
    from matmodal.modalities.ecd.pipeline import EcdSettings

    known = EcdSettings.__dataclass_fields__
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in known}
    return EcdSettings(**fields)


def ecd_column(items: Sequence[tuple[str, Structure]], recorded: dict[str, Any] | None, folder: Path,
               cache_dir: Path | None, skipped: dict[str, str], source: str = "provenance") -> dict[str, str]:
    """For ``matmodal predict``: ``{key: ECD PNG}`` drawn as the training dataset drew them
    (``recorded``: its provenance's ``"ecd"`` settings) from densities computed here; failures
    go to ``skipped`` with the reason."""
    if recorded is None:
        raise ValueError(f"{source}: the dataset recorded no ECD settings, but the run uses ECD images")
    paths, failed = ecd_images_for(items, folder, recorded_ecd_settings(recorded, source), cache_dir=cache_dir)
    for key, reason in failed.items():
        skipped.setdefault(key, reason)
    return paths


# -- against a real density ---------------------------------------------------------------------
def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of the same size (flattened); unchanged by min-max scaling."""
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def compare_densities(reference: Any, ours: Any, reference_ecd: Any, our_ecd: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """How close ``ours`` is to ``reference`` (both CHGCAR-convention densities of one structure)
    after the same pipeline: grid means (e per cell), the correlation of the total densities on
    the common 60³ grid (``corr_3d_total``) and of the (111) slices, total and differential
    (``corr_slice_*``: also the correlation of the min-max images the model sees). Returns the
    numbers and the four :class:`~matmodal.modalities.ecd.pipeline.DensityImage` results
    (``reference total``, ``ours total``, ``reference differential``, ``ours differential``)."""
    from matmodal.modalities.ecd.pipeline import EcdSettings, density_image
    from matmodal.modalities.ecd.regrid import regrid

    total = EcdSettings(differential="none", pixels=reference_ecd.pixels)
    images = {"reference total": density_image(reference, settings=total), "ours total": density_image(ours, settings=total),
              "reference differential": density_image(reference, settings=reference_ecd),
              "ours differential": density_image(ours, settings=our_ecd)}
    fields = [regrid(d, 60).data["total"] / d.structure.volume for d in (reference, ours)]
    numbers = {"ours_e": float(np.mean(ours.data["total"])), "reference_e": float(np.mean(reference.data["total"])),
               "corr_3d_total": pearson(*fields),
               "corr_slice_total": pearson(images["reference total"].slice.values, images["ours total"].slice.values),
               "corr_slice_diff": pearson(images["reference differential"].slice.values,
                                          images["ours differential"].slice.values)}
    return numbers, images


def compare_with_mp(reference: Chgcar, settings: DftSettings | None = None, ecd: Any = None, *,
                    cache_dir: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compute the GPAW density of an MP density's structure (cached), Fourier-resample it to the
    MP grid and :func:`compare_densities` (MP: its ZVAL promolecule; ours: GPAW's valences).
    Returns the numbers (plus the expected electron counts, GPAW's and MP's, and the calculation's
    wall time, estimate and cache state) and the four images."""
    from matmodal.modalities.ecd.pipeline import EcdSettings
    from matmodal.sources.materials_project import mp_zval

    settings, ecd = settings or DftSettings(), ecd or EcdSettings()
    structure = reference.structure
    estimate = estimate_seconds(structure, settings)
    ours, info = compute_density(structure, settings, cache_dir=cache_dir)
    ours = on_grid(_chgcar(structure, {"total": ours.data["total"]}), tuple(reference.dim))
    numbers, images = compare_densities(reference, ours, ecd, ecd_settings_for_dft(ecd))
    zval = mp_zval()
    numbers.update(formula=structure.composition.reduced_formula, sites=len(structure),
                   ours_expected_e=info["valence_electrons_cell"],
                   reference_expected_e=float(sum(zval[site.specie.symbol] for site in structure)),
                   wall_s=info["wall_s"], estimate_s=round(estimate, 1), cache=info["cache"],
                   settings=f"GPAW {info['gpaw']} {settings.mode} {settings.cutoff:g} eV, k {settings.kpoint_density:g}/Å")
    return numbers, images


# -- many structures (Ray) ----------------------------------------------------------------------
def _density_task(job: tuple[Structure, DftSettings, str]) -> dict[str, Any]:
    """One calculation (a Ray task): its provenance, or ``{"error": reason}``."""
    structure, settings, cache_dir = job
    try:
        return density_grids(structure, settings, cache_dir=Path(cache_dir))[1]
    except (DftError, KeyError, ValueError) as error:
        return {"error": f"{structure.composition.reduced_formula}: {error}"}


def compute_many(structures: Sequence[Structure], settings: DftSettings | None = None, engine: Any = None,
                 cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Densities of many structures, one calculation per Ray task (threads pinned to 1 by
    :data:`matmodal.parallel.WORKER_ENV`) when ``engine`` (a :class:`matmodal.parallel.Engine`) is
    enabled, else serially; into the cache (on a cluster: a shared ``cache_dir``). Returns each
    calculation's provenance in input order (``{"error": ...}`` for a failure)."""
    from matmodal.parallel import parallel_map

    settings = settings or DftSettings()
    folder = str(cache_folder(structures[0], settings, cache_dir).parents[1]) if structures else ""
    return parallel_map(_density_task, [(s, settings, folder) for s in structures], engine, chunksize=1)


# -- command line -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m matmodal.modalities.ecd.dft STRUCTURE... --out DIR``: density (cached) and ECD
    image of each structure file (CIF, POSCAR, pymatgen JSON), with ``<name>.json`` provenance."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m matmodal.modalities.ecd.dft", description=main.__doc__)
    parser.add_argument("structures", nargs="+", type=Path, help="structure files pymatgen can read")
    parser.add_argument("--out", type=Path, required=True, help="folder for <name>.png and <name>.json")
    parser.add_argument("--mode", choices=MODES, default=DftSettings.mode)
    parser.add_argument("--cutoff", type=float, default=DftSettings.cutoff, help="plane-wave cutoff (eV)")
    parser.add_argument("--kpoint-density", type=float, default=DftSettings.kpoint_density, help="per Å⁻¹")
    parser.add_argument("--spin", choices=SPIN, default=DftSettings.spin)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args(argv)
    settings = DftSettings(mode=args.mode, cutoff=args.cutoff, kpoint_density=args.kpoint_density, spin=args.spin)
    items, unreadable = [], 0
    for path in args.structures:
        try:
            items.append((path.stem, Structure.from_file(path)))
        except Exception as error:  # any unreadable file is reported, the rest computed
            unreadable += 1
            print(f"{path}: not a readable structure ({type(error).__name__}: {error})", file=sys.stderr)
    paths, failed = ecd_images_for(items, args.out, settings=settings, threads=args.threads)
    for key, structure in items:
        if key in paths:
            _, info = density_grids(structure, settings, threads=args.threads)
            (args.out / f"{Path(paths[key]).stem}.json").write_text(json.dumps(info, indent=1))
            print(paths[key])
    for key, reason in failed.items():
        print(f"{key}: {reason}", file=sys.stderr)
    return 0 if paths and not failed and not unreadable else 1


if __name__ == "__main__":
    raise SystemExit(main())

