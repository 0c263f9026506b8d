"""Charge densities: readers for every volumetric file format in the mirror, and the Materials
Project charge-density API (CHGCAR, AECCAR0/AECCAR2) with an on-disk cache.

All densities are returned as pymatgen :class:`~pymatgen.io.vasp.outputs.Chgcar` objects in the
CHGCAR convention: ``data["total"]`` holds rho * V_cell (e), so its grid mean is the electron
count of the cell; divide by ``structure.volume`` for e/Å^3.

Mirror layout (``<mirror>/charge_density/``)::

    multimat_mp_total_density_32.npz   371 MP total densities on 32^3, *no lattice*: a structure
                                       is attached by material id (MP source) only when its MP
                                       valence count matches the grid mean (:func:`pair`), else
                                       the grid is refused; it is never sliced with a guessed cell
    Si_diamond_60cube.hdf5             Chgcar.to_hdf5 layout
    CHGCAR_*(.gz)                      VASP CHGCARs (augmentation blocks are skipped)
    AECCAR0_<x>, AECCAR2_<x>           core / valence all-electron densities of system <x>
    <material_id>/CHGCAR(.gz) | AECCAR0(.gz) | AECCAR2(.gz) | total.hdf5
                                       per-material files: drop real MP files here and the
                                       builder uses them with the same code path as the API

Data: Materials Project, CC-BY-4.0 (Jain et al., APL Materials 1, 011002, 2013); MultiMat
example grids (MIT); pyrho, vaspchg_rs and pyiron test files (BSD/Apache, see the mirror README).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.vasp import Chgcar, Poscar

from matmodal.config import Settings, get_settings
from matmodal.paths import safe_name
from matmodal.sources.mirror import MissingDataError

log = logging.getLogger(__name__)

SECTION = "charge_density"
MULTIMAT_FILE = "multimat_mp_total_density_32.npz"
KINDS = ("CHGCAR", "AECCAR0", "AECCAR2")
# pairing a bare grid with a structure: |grid mean - sum of MP ZVAL| / sum of ZVAL must not exceed
# this (the 32^3 MultiMat grids of correctly paired MP structures: 95 % within 7 %, all but 4 of
# 196 within 10 %; another cell of the same material is off by >= 25 %)
COUNT_TOLERANCE = 0.10
# ... and the grid must have the structure's symmetry in the structure's frame: the lowest
# correlation between the grid and its image under the structure's space-group operations
# (:func:`grid_symmetry`) must reach this (correct MP pairs: median 0.91; the same structure
# shifted by a quarter cell: < 0; an origin or setting mismatch would slice the wrong plane)
SYMMETRY_MIN = 0.5


class DensityMismatchError(ValueError):
    """A structure that does not belong to a bare density grid."""


# -- file readers ------------------------------------------------------------------------
def read_chgcar(path: Path) -> Chgcar:
    """A VASP CHGCAR/AECCAR/PARCHG (plain or ``.gz``); rho * V_cell convention."""
    return Chgcar.from_file(str(path))


def read_hdf5(path: Path) -> Chgcar:
    """A density written by ``Chgcar.to_hdf5`` (datasets Z, fcoords, lattice, vdata/<key>)."""
    return Chgcar.from_hdf5(str(path))


def read_density(path: Path) -> Chgcar:
    """Any single-file density, by extension: ``.hdf5``/``.h5`` or a (gzipped) CHGCAR."""
    if path.suffix in (".hdf5", ".h5"):
        return read_hdf5(path)
    return read_chgcar(path)


def read_aeccar_pair(aeccar0: Path, aeccar2: Path, poscar: Path | None = None) -> tuple[Chgcar, Chgcar]:
    """AECCAR0 (frozen core) and AECCAR2 (all-electron valence); checks grids and cells agree.

    ``poscar`` (optional) is compared with the AECCAR header structure (same species count and
    lattice) and its structure is attached, so sites carry the POSCAR's ordering."""
    core, valence = read_chgcar(aeccar0), read_chgcar(aeccar2)
    if core.dim != valence.dim:
        raise ValueError(f"AECCAR grids differ: {core.dim} vs {valence.dim}")
    if not np.allclose(core.structure.lattice.matrix, valence.structure.lattice.matrix, atol=1e-4):
        raise ValueError("AECCAR0 and AECCAR2 have different lattices")
    if poscar is not None:
        structure = Poscar.from_file(str(poscar)).structure
        if structure.composition != core.structure.composition or not np.allclose(
            structure.lattice.matrix, core.structure.lattice.matrix, atol=1e-4
        ):
            raise ValueError(f"{poscar.name} does not describe the AECCAR cell")
        core = Chgcar(Poscar(structure), core.data)
        valence = Chgcar(Poscar(structure), valence.data)
    return core, valence


def with_structure(grid: np.ndarray, structure: Structure) -> Chgcar:
    """A bare grid (rho * V_cell, axes along the lattice vectors a, b, c) with its structure."""
    return Chgcar(Poscar(structure), {"total": np.asarray(grid, dtype=float)})


def site_contrast(density: Chgcar) -> float:
    """Quantile of the mean density at the atom sites within the grid's values (0..1).

    A diagnostic, not a test of the pairing: many atoms sit on density maxima (near 1), but
    PAW pseudo-valence densities are often *low* at the nucleus (Si, BaTe and Cs of the
    MultiMat grids score ~0 with their own MP structure)."""
    data = density.data["total"]
    idx = np.floor(density.structure.frac_coords % 1.0 * np.array(data.shape)).astype(int) % data.shape
    at_sites = float(np.mean(data[idx[:, 0], idx[:, 1], idx[:, 2]]))
    return float(np.mean(data < at_sites))


def cell_electrons(structure: Structure) -> float:
    """Valence electrons of the cell with the Materials Project's PAW valences (sum of ZVAL)."""
    from matmodal.sources.materials_project import mp_zval

    table = mp_zval()
    missing = sorted({el.symbol for el in structure.composition.elements} - set(table))
    if missing:
        raise DensityMismatchError(f"no MP PAW valence (ZVAL) for {', '.join(missing)}")
    return float(sum(table[el.symbol] * amount for el, amount in structure.composition.items()))


def grid_symmetry(grid: np.ndarray, structure: Structure, symprec: float = 0.1) -> float | None:
    """Lowest correlation between the grid and its image under each space-group operation of
    ``structure`` that maps grid points onto grid points (1: the grid has the structure's
    symmetry in the structure's frame; low: another origin or setting). None when no
    non-trivial operation fits the grid (P1, or translations off the grid)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        operations = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(cartesian=False)
    except Exception:  # spglib fails on some cells
        return None
    shape = np.array(grid.shape)
    index = np.indices(grid.shape).reshape(3, -1)
    centred = grid.ravel() - grid.mean()
    scores = []
    for op in operations:
        rotation, shift = op.rotation_matrix, op.translation_vector * shape
        identity = np.allclose(rotation, np.eye(3)) and np.allclose(op.translation_vector % 1.0, 0.0)
        if identity or not np.allclose(shift, np.round(shift), atol=0.05):
            continue
        image = (np.rint(rotation @ index).astype(int) + np.round(shift).astype(int)[:, None]) % shape[:, None]
        moved = grid[image[0], image[1], image[2]] - grid.mean()
        scores.append(float(centred @ moved / np.sqrt((centred @ centred) * (moved @ moved))))
    return min(scores) if scores else None


@dataclass(frozen=True)
class Pairing:
    """A bare grid verified against one structure: the grid mean (CHGCAR convention: electrons)
    against the structure's MP valence electrons, plus two diagnostics."""

    material_id: str
    origin: str  # which structure source
    structure: Structure
    grid_electrons: float
    structure_electrons: float
    site_quantile: float
    grid_symmetry: float | None

    @property
    def mismatch(self) -> float:
        return abs(self.grid_electrons - self.structure_electrons) / max(self.structure_electrons, 1e-12)

    def columns(self) -> dict[str, Any]:
        """Table columns (electrons in e per cell)."""
        return {"pairing_origin": self.origin, "pairing_grid_electrons": self.grid_electrons,
                "pairing_structure_electrons": self.structure_electrons, "pairing_mismatch": self.mismatch,
                "site_quantile": self.site_quantile, "grid_symmetry": self.grid_symmetry}


def pair(material_id: str, grid: np.ndarray, candidates: list[tuple[str, Structure]],
         tolerance: float = COUNT_TOLERANCE, min_symmetry: float | None = SYMMETRY_MIN) -> Pairing:
    """The first candidate structure that fits the bare grid: its MP valence electron count
    matches the grid mean within ``tolerance`` (relative) and the grid has its symmetry
    (:func:`grid_symmetry` >= ``min_symmetry``, when the structure has operations that fit the
    grid; None: not checked). :class:`DensityMismatchError` naming every candidate's failure otherwise."""
    grid_electrons = float(np.mean(grid))
    reasons = []
    for origin, structure in candidates:
        cell = f"{origin}: {len(structure)}-site {structure.composition.reduced_formula} cell"
        try:
            electrons = cell_electrons(structure)
        except DensityMismatchError as error:
            reasons.append(f"{origin}: {error}")
            continue
        mismatch = abs(grid_electrons - electrons) / max(electrons, 1e-12)
        if mismatch > tolerance:
            reasons.append(f"{cell} has {electrons:g} e, off by {mismatch:.1%} (> {tolerance:.0%})")
            continue
        symmetry = grid_symmetry(grid, structure)
        if min_symmetry is not None and symmetry is not None and symmetry < min_symmetry:
            reasons.append(f"{cell} has {electrons:g} e, but the grid lacks its symmetry in its frame "
                           f"(lowest correlation {symmetry:.2f} < {min_symmetry}): another origin or setting")
            continue
        return Pairing(material_id, origin, structure, grid_electrons, electrons,
                       site_contrast(with_structure(grid, structure)), symmetry)
    raise DensityMismatchError(
        f"{material_id}: the grid holds {grid_electrons:.2f} e (grid mean, CHGCAR convention) and no structure "
        f"fits it with MP PAW valences ({'; '.join(reasons)}); not sliced"
    )


# -- the MultiMat npz ----------------------------------------------------------------------
@dataclass(frozen=True)
class MultimatGrids:
    """The 371 MP total densities on 32^3 (no lattice) and their side columns."""

    path: Path

    @cached_property
    def _arrays(self) -> Any:
        return np.load(self.path, allow_pickle=False)

    @cached_property
    def index(self) -> pd.DataFrame:
        """material_id, position in the file, k_vrh (GPa, MultiMat), k_vrh_6059csv (GPa, the side csv),
        efermi (eV), spacegroup, formula."""
        z = self._arrays
        frame = pd.DataFrame({
            "material_id": z["material_id"].astype(str),
            "k_vrh": z["K_VRH_multimat"].astype(float),
            "k_vrh_6059csv": z["K_VRH_6059csv"].astype(float),
            "efermi": z["efermi_multimat"].astype(float),
            "spacegroup_number": z["spacegroup_6059csv"].astype(int),
            "formula": z["formula_6059csv"].astype(str),
        })
        frame["position"] = np.arange(len(frame))
        frame.loc[frame["spacegroup_number"] < 0, "spacegroup_number"] = pd.NA
        frame["formula"] = frame["formula"].replace("", None)
        return frame

    def grid(self, material_id: str) -> np.ndarray:
        """The 32^3 total density of ``material_id`` (rho * V_cell, float64)."""
        hit = self.index.loc[self.index["material_id"] == material_id, "position"]
        if hit.empty:
            raise MissingDataError(f"{material_id} is not in {self.path.name}")
        return np.asarray(self._grids[int(hit.iloc[0])], dtype=float)

    @cached_property
    def _grids(self) -> np.ndarray:
        """All grids, read once (an npz member is decompressed whole on every access; 49 MB)."""
        return self._arrays["total_density_32"]


# -- the source ----------------------------------------------------------------------------
class ChargeDensitySource:
    """Charge densities by Materials Project id: the mirror when ``mirror_dir`` is set, else the
    MP API (``mp_rester``), cached on disk as hdf5 (``<cache>/charge_density/<id>.<kind>.hdf5``)."""

    def __init__(self, settings: Settings | None = None, *, structures: Any = None) -> None:
        self.settings = settings or get_settings()
        # anything with .structure_candidates(material_id) -> [(origin, Structure)] or
        # .structure(material_id) -> Structure
        self._structures = structures
        self._pairings: dict[str, Pairing] = {}

    @property
    def offline(self) -> bool:
        return self.settings.mirror_dir is not None

    @property
    def folder(self) -> Path | None:
        root = self.settings.mirror_dir
        return None if root is None else root / SECTION

    @cached_property
    def multimat(self) -> MultimatGrids | None:
        path = self.folder / MULTIMAT_FILE if self.folder else None
        return MultimatGrids(path) if path is not None and path.exists() else None

    @property
    def structures(self) -> Any:
        if self._structures is None:
            from matmodal.sources.materials_project import MaterialsProject

            self._structures = MaterialsProject(self.settings)
        return self._structures

    def catalogue(self) -> pd.DataFrame:
        """Material ids this source holds densities for without a query (mirror: the npz and the
        per-material folders; online: empty, densities are fetched per id)."""
        frames = []
        if self.multimat is not None:
            frames.append(self.multimat.index.drop(columns="position"))
        if self.folder is not None and self.folder.is_dir():
            ids = sorted(p.name for p in self.folder.iterdir() if p.is_dir())
            frames.append(pd.DataFrame({"material_id": ids}))
        if not frames:
            return pd.DataFrame(columns=["material_id"])
        return pd.concat(frames, ignore_index=True).drop_duplicates("material_id").reset_index(drop=True)

    # -- public ---------------------------------------------------------------------------
    def has_grid(self, material_id: str) -> bool:
        """Whether the mirror's bare MultiMat grids hold ``material_id`` (a pairing is needed)."""
        return self.multimat is not None and material_id in self._grid_ids

    @cached_property
    def _grid_ids(self) -> set[str]:
        return set(self.multimat.index["material_id"]) if self.multimat is not None else set()

    def pairing(self, material_id: str) -> Pairing:
        """The verified structure of a bare grid (cached per id): every structure the structure
        source has for the id is tried (``structure_candidates``, else ``structure``)."""
        if material_id not in self._pairings:
            grid = self.multimat.grid(material_id)
            candidates = self._candidates(material_id)
            if not candidates:
                raise MissingDataError(
                    f"{material_id}: the 32^3 grid in {MULTIMAT_FILE} has no lattice and no structure "
                    "is available for this id; not sliced with an invented cell"
                )
            self._pairings[material_id] = pair(material_id, grid, candidates)
        return self._pairings[material_id]

    def _candidates(self, material_id: str) -> list[tuple[str, Structure]]:
        if hasattr(self.structures, "structure_candidates"):
            return self.structures.structure_candidates(material_id)
        try:
            return [("structure source", self.structures.structure(material_id))]
        except MissingDataError:
            return []

    def chgcar(self, material_id: str) -> Chgcar:
        """The total (valence) density of ``material_id`` with its structure."""
        return self._get(material_id, "CHGCAR")

    def aeccars(self, material_id: str) -> tuple[Chgcar, Chgcar] | None:
        """``(AECCAR0, AECCAR2)`` when both exist, else ``None``."""
        try:
            return self._get(material_id, "AECCAR0"), self._get(material_id, "AECCAR2")
        except MissingDataError:
            return None

    # -- internals ------------------------------------------------------------------------
    def _cache_path(self, material_id: str, kind: str) -> Path:
        return self.settings.cache_dir / SECTION / safe_name(material_id, f".{kind}.hdf5")

    def _get(self, material_id: str, kind: str) -> Chgcar:
        if self.offline:
            return self._from_mirror(material_id, kind)
        path = self._cache_path(material_id, kind)
        if path.exists():
            return read_hdf5(path)
        density = self._from_api(material_id, kind)
        write_hdf5(density, path)
        return density

    def _from_mirror(self, material_id: str, kind: str) -> Chgcar:
        assert self.folder is not None
        own = self.folder / safe_name(material_id)
        names = [kind, f"{kind}.gz"] + (["total.hdf5"] if kind == "CHGCAR" else [])
        for name in names:
            if (own / name).exists():
                return read_density(own / name)
        if kind == "CHGCAR" and self.has_grid(material_id):
            pairing = self.pairing(material_id)
            return with_structure(self.multimat.grid(material_id), pairing.structure)
        raise MissingDataError(
            f"no {kind} for {material_id} in the mirror: put it at {own}/{kind}(.gz) "
            "or unset the mirror and set MP_API_KEY to download it"
        )

    def _from_api(self, material_id: str, kind: str) -> Chgcar:
        from matmodal.sources.materials_project import mp_rester, with_backoff

        with mp_rester() as mpr:
            if kind == "CHGCAR":
                density = with_backoff(mpr.get_charge_density_from_material_id, material_id)
            else:
                density = with_backoff(_api_aeccar, mpr, material_id, kind)
        if density is None:
            raise MissingDataError(f"the Materials Project has no {kind} for {material_id}")
        return density


def _api_aeccar(mpr: Any, material_id: str, kind: str) -> Chgcar | None:
    """AECCAR0/AECCAR2 from the MP OpenData ``materialsproject-parsed`` bucket (``aeccar0s/``,
    ``aeccar2s/``, keyed by the static task id that also gave the CHGCAR)."""
    from emmet.core.vasp.calc_types import CalcType
    from monty.json import MontyDecoder

    task_ids = mpr.get_task_ids_associated_with_material_id(
        material_id, calc_types=[CalcType.GGA_Static, CalcType.GGA_U_Static])
    if not task_ids:
        return None
    docs = mpr.materials.tasks.search(task_ids=task_ids, fields=["last_updated", "task_id"])
    if not docs:
        return None
    task_id = str(max(docs, key=lambda d: d["last_updated"])["task_id"])
    try:
        found = mpr.materials.tasks._query_open_data(
            bucket="materialsproject-parsed", key=f"{kind.lower()}s/{task_id}.json.gz",
            decoder=lambda raw: MontyDecoder().process_decoded(raw))
    except Exception as error:  # a missing S3 object is an ordinary "not available"
        log.info("%s %s: %s", material_id, kind, error)
        return None
    return found[0][0]["data"] if found and found[0] else None


def write_hdf5(density: Chgcar, path: Path) -> Path:
    """Cache ``density`` with ``Chgcar.to_hdf5`` (atomic write: temp file then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
    density.to_hdf5(str(tmp))
    tmp.replace(path)
    return path


# -- the mirror's loose files ----------------------------------------------------------------
@dataclass(frozen=True)
class MirrorDensity:
    """One loose density file (or AECCAR pair) of the mirror, with what it is."""

    name: str
    files: tuple[str, ...]
    description: str

    def load(self, folder: Path) -> dict[str, Chgcar]:
        """``{"total": Chgcar}`` or, for an AECCAR pair, ``{"aeccar0": .., "aeccar2": ..}``."""
        paths = [folder / f for f in self.files]
        if len(paths) == 1:
            return {"total": read_density(paths[0])}
        core, valence = read_aeccar_pair(*paths)
        return {"aeccar0": core, "aeccar2": valence}


MIRROR_DENSITIES: tuple[MirrorDensity, ...] = (
    MirrorDensity("Si_diamond", ("Si_diamond_60cube.hdf5",), "Si diamond (FCC lattice), 60^3, hdf5"),
    MirrorDensity("Fe3O4", ("CHGCAR_Fe3O4.gz",), "Fe3O4 spinel (FCC lattice), 72^3"),
    MirrorDensity("Li_nospin", ("CHGCAR_Li_nospin.gz",), "bcc Li, CHGCAR with augmentation"),
    MirrorDensity("Li_spin", ("CHGCAR_Li_spin.gz",), "bcc Li, spin-polarised CHGCAR"),
    MirrorDensity("Fe_spin", ("CHGCAR_Fe_spin",), "bcc Fe 28^3, spin-polarised"),
    MirrorDensity("H2O", ("AECCAR0_H2O", "AECCAR2_H2O", "POSCAR_H2O"), "H2O molecule, AECCAR0/AECCAR2 pair, 20^3"),
)
