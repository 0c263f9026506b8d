"""Density file -> 60^3 grid -> differential density -> (111) slice of an 8^3 supercell ->
normalised square image -> PNG (massa2024 §2.1), plus the IQR cleaning of density extremes.

Units: inputs follow the CHGCAR convention (rho * V_cell, e); everything after the
differential step is divided by the cell volume, i.e. in e/Å^3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.io.vasp import VolumetricData

from matmodal.modalities.ecd.differential import (
    COUNT_TOLERANCE,
    ELECTRON_TABLES,
    closest_table,
    differential_density,
)
from matmodal.modalities.ecd.image import save_png
from matmodal.modalities.ecd.normalise import fourier_image, normalise
from matmodal.modalities.ecd.regrid import regrid
from matmodal.modalities.ecd.slicing import Slice, slice_plane

DIFFERENTIAL = ("auto", "none")


class EcdError(ValueError):
    """A density that cannot be turned into an image (the reason goes to the manifest)."""


@dataclass(frozen=True)
class EcdSettings:
    """Every knob of the ECD image, defaults = massa2024 §2.1 (pixels: not given in the paper)."""

    grid: int = 60  # points per axis after regridding
    regrid_method: str = "pyrho"  # "pyrho" | "fourier" | "none"
    differential: str = "auto"  # "auto": AECCARs when given, else CHGCAR - promolecule; "none": total
    miller: tuple[int, int, int] = (1, 1, 1)
    supercell: int = 8
    site: int = 0  # index of the atom the plane passes through
    pixels: int = 224
    crop: float = 1.0  # fraction of the largest square inside the supercell
    order: int = 3  # B-spline order of the in-plane interpolation
    normalisation: str = "paper"  # "paper" | "clip" | "symlog"
    clip_k: float = 3.0
    fourier: bool = False  # also make the Fourier-transform image
    cmap: str = "viridis"
    electrons: str = "mp-zval"  # promolecule electrons: "mp-zval" | "all-electron" | "gpaw" | "auto" (closest)
    rescale_counts: bool = False  # scale the promolecule to the grid's electron count
    count_tolerance: float = COUNT_TOLERANCE

    def describe(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EcdResult:
    """The slice (e/Å^3), the normalised image(s) and the statistics of the 3D field."""

    slice: Slice
    image: np.ndarray
    fourier: np.ndarray | None
    stats: dict[str, float]
    method: str
    notes: list[str] = field(default_factory=list)


def field_for_image(
    total: VolumetricData | None,
    aeccars: tuple[VolumetricData, VolumetricData] | None,
    settings: EcdSettings,
) -> tuple[np.ndarray, VolumetricData, str, dict[str, float], list[str]]:
    """Regrid, then take the differential (or total) density; returns the field in e/Å^3."""
    notes: list[str] = []
    use_aeccar = aeccars is not None and settings.differential == "auto"
    if settings.differential not in DIFFERENTIAL:
        raise ValueError(f"differential {settings.differential!r} not in {DIFFERENTIAL}")
    if use_aeccar:
        assert aeccars is not None
        core, valence = (regrid(a, settings.grid, settings.regrid_method) for a in aeccars)
        reference = valence
    elif total is not None:
        reference = regrid(total, settings.grid, settings.regrid_method)
    else:
        raise EcdError("no density: neither a CHGCAR nor an AECCAR0/AECCAR2 pair")
    volume = float(reference.structure.volume)
    stats: dict[str, float] = {}
    if settings.differential == "none":
        return reference.data["total"] / volume, reference, "total", stats, notes
    table = settings.electrons
    if table == "auto" and use_aeccar:
        table = "mp-zval"  # AECCAR2 is the valence density whatever its grid mean
    if table == "auto":
        table = closest_table(reference.structure, float(np.mean(reference.data["total"])))
        notes.append(f"promolecule electrons: {table}")
    diff = differential_density(
        None if use_aeccar else reference, *((core, valence) if use_aeccar else (None, None)),
        zval=ELECTRON_TABLES[table](), rescale=settings.rescale_counts,
    )
    stats.update(grid_electrons=diff.grid_electrons, model_electrons=diff.model_electrons)
    if diff.count_mismatch > settings.count_tolerance and not settings.rescale_counts and not use_aeccar:
        raise EcdError(
            f"the grid holds {diff.grid_electrons:.2f} e but the structure's MP valence count is "
            f"{diff.model_electrons:.2f} e: the structure does not belong to this density"
        )
    if diff.rescaled:
        notes.append(f"promolecule rescaled from {diff.model_electrons:.2f} to {diff.grid_electrons:.2f} e")
    return diff.data / volume, reference, diff.method, stats, notes


def density_image(
    total: VolumetricData | None = None,
    *,
    aeccars: tuple[VolumetricData, VolumetricData] | None = None,
    settings: EcdSettings | None = None,
) -> EcdResult:
    """The massa2024 image of one density (CHGCAR and/or an AECCAR0/AECCAR2 pair)."""
    settings = settings or EcdSettings()
    data, reference, method, stats, notes = field_for_image(total, aeccars, settings)
    structure = reference.structure
    if not 0 <= settings.site < len(structure):
        raise EcdError(f"site {settings.site} does not exist ({len(structure)} sites)")
    cut = slice_plane(
        data, structure.lattice, settings.miller, through=structure.cart_coords[settings.site],
        supercell=settings.supercell, pixels=settings.pixels, crop=settings.crop, order=settings.order,
    )
    stats.update(rho_min=float(data.min()), rho_max=float(data.max()),
                 slice_min=float(cut.values.min()), slice_max=float(cut.values.max()), side=cut.side)
    image = normalise(cut.values, settings.normalisation, settings.clip_k)
    spectrum = fourier_image(cut.values) if settings.fourier else None
    return EcdResult(cut, image, spectrum, stats, method, notes)


def write_images(result: EcdResult, path: Path, settings: EcdSettings | None = None) -> dict[str, Path]:
    """``path`` (PNG) and, when made, the Fourier image next to it (``*_fft.png``)."""
    cmap = (settings or EcdSettings()).cmap
    written = {"image": save_png(result.image, path, cmap)}
    if result.fourier is not None:
        written["fourier"] = save_png(result.fourier, path.with_name(f"{path.stem}_fft.png"), cmap)
    return written


def iqr_bounds(values: Sequence[float] | np.ndarray, k: float = 1.5) -> tuple[float, float]:
    """Tukey fences ``[Q1 - k IQR, Q3 + k IQR]``."""
    q1, q3 = np.nanpercentile(np.asarray(values, float), [25, 75])
    return float(q1 - k * (q3 - q1)), float(q3 + k * (q3 - q1))


def iqr_outliers(frame: pd.DataFrame, columns: Sequence[str] = ("rho_max", "rho_min"), k: float = 1.5) -> pd.Series:
    """Per row: the reason it falls outside the IQR fences of any ``column`` ('' = kept)."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    for column in columns:
        low, high = iqr_bounds(frame[column], k)
        outside = (frame[column] < low) | (frame[column] > high)
        text = frame.loc[outside, column].map(
            lambda x, c=column, lo=low, hi=high: f"{c} = {x:.4g} e/Å^3 outside [{lo:.4g}, {hi:.4g}]")
        reasons.loc[outside] = reasons.loc[outside].str.cat(text, sep="; ").str.strip("; ")
    return reasons


def stage_fields(
    total: VolumetricData | None,
    aeccars: tuple[VolumetricData, VolumetricData] | None = None,
    settings: EcdSettings | None = None,
) -> tuple[dict[str, np.ndarray], VolumetricData, list[str]]:
    """The regridded ``total`` (valence for AECCARs), ``promolecule`` and ``differential`` fields
    (e/Å^3) that :func:`density_image` cuts, for showing each stage."""
    settings = settings or EcdSettings()
    diff, reference, _, _, notes = field_for_image(total, aeccars, settings)
    full = reference.data["total"] / float(reference.structure.volume)
    return {"total": full, "promolecule": full - diff, "differential": diff}, reference, notes
