"""A grid of rendered structures with formula captions (like costa2025 Table 1)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image


def formula_label(formula: str) -> str:
    """Reduced formula with subscripts for matplotlib mathtext (``Fe2O3`` -> ``Fe$_{2}$O$_{3}$``)."""
    return re.sub(r"(\d+(?:\.\d+)?)", r"$_{\1}$", formula)


def gallery(paths: Sequence[Path], captions: Sequence[str], ncols: int = 5, tile_in: float = 2.0) -> Figure:
    """Pictures in a grid (ncols wide), each captioned underneath; missing files show as empty tiles.

    ``tile_in`` is the edge of one tile in inches. Formula captions get subscripts.
    """
    if len(paths) != len(captions):
        raise ValueError(f"{len(paths)} paths but {len(captions)} captions")
    if ncols < 1:
        raise ValueError("ncols must be >= 1")
    n = max(len(paths), 1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(tile_in * ncols, (tile_in + 0.35) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (path, caption) in zip(axes.flat, zip(paths, captions, strict=True), strict=False):
        path = Path(path)
        if path.is_file():
            with Image.open(path) as im:
                ax.imshow(np.asarray(im.convert("RGB")))
        else:
            ax.text(0.5, 0.5, "no image", ha="center", va="center", color="0.5", transform=ax.transAxes)
        ax.set_title(formula_label(caption), y=-0.12, fontsize=10)
    fig.tight_layout()
    return fig
