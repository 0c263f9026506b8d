"""Electronic charge density (ECD) images, massa2024 §2.1: regrid (mp-pyrho, 60^3), differential
density, (111) slice of an 8x8x8 supercell, square crop, normalisation, viridis PNG.

Units: CHGCAR convention (rho * V_cell, e) on input; e/Å^3 from the differential step on.
"""

from matmodal.modalities.ecd.differential import (
    Differential,
    differential_density,
    mp_zval,
    promolecule,
)
from matmodal.modalities.ecd.image import save_png, to_rgb
from matmodal.modalities.ecd.normalise import fourier_image, minmax, normalise, zscore
from matmodal.modalities.ecd.pipeline import (
    EcdError,
    EcdResult,
    EcdSettings,
    density_image,
    iqr_bounds,
    iqr_outliers,
    write_images,
)
from matmodal.modalities.ecd.regrid import fourier_resample, grid_shape, regrid
from matmodal.modalities.ecd.slicing import Plane, Slice, plane_window, sample_periodic, slice_plane

__all__ = [
    "Differential", "EcdError", "EcdResult", "EcdSettings", "Plane", "Slice", "density_image",
    "differential_density", "fourier_image", "fourier_resample", "grid_shape", "iqr_bounds",
    "iqr_outliers", "minmax", "mp_zval", "normalise", "plane_window", "promolecule", "regrid",
    "sample_periodic", "save_png", "slice_plane", "to_rgb", "write_images", "zscore",
]
