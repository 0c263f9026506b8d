"""Colour images of normalised slices (viridis by default), written as PNG without a figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image


def to_rgb(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """``values`` in [-1, 1] -> uint8 RGB, row 0 of ``values`` at the bottom of the picture."""
    unit = np.clip((np.asarray(values, float) + 1) / 2, 0, 1)
    rgba = colormaps[cmap](unit[::-1], bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def save_png(values: np.ndarray, path: Path, cmap: str = "viridis") -> Path:
    """Write ``values`` (in [-1, 1]) as an RGB PNG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_rgb(values, cmap)).save(path, optimize=False)
    return path
