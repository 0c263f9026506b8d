"""Figures for the ECD pipeline: slices at each stage, normalisation choices, density extremes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from matmodal.modalities.ecd.normalise import normalise
from matmodal.modalities.ecd.pipeline import iqr_bounds


def slice_panels(panels: Mapping[str, np.ndarray], side: float, cmap: str = "viridis", unit: str = "e/Å³") -> Figure:
    """One image per stage (row 0 at the bottom), ``side`` in Å, each with its own colour bar."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.1), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels.items(), strict=True):
        shown = ax.imshow(values, origin="lower", cmap=cmap, extent=(0, side, 0, side))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("u (Å)")
        fig.colorbar(shown, ax=ax, fraction=0.046, label=unit if unit in title else "")
    axes[0][0].set_ylabel("v (Å)")
    fig.tight_layout()
    return fig


def normalisation_panels(values: np.ndarray, side: float, k: float = 3.0, cmap: str = "viridis") -> Figure:
    """The paper's z-score + min-max next to robust clipping and symmetric log, with histograms."""
    methods = {"paper (z-score, min-max)": "paper", f"clip ±{k:g}σ": "clip", "symlog": "symlog"}
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2))
    for col, (title, method) in enumerate(methods.items()):
        image = normalise(values, method, k)
        axes[0, col].imshow(image, origin="lower", cmap=cmap, vmin=-1, vmax=1, extent=(0, side, 0, side))
        axes[0, col].set_title(title, fontsize=9)
        axes[1, col].hist(image.ravel(), bins=60, color="tab:green")
        axes[1, col].set_xlabel("pixel value")
        axes[1, col].set_yscale("log")
    fig.tight_layout()
    return fig


def extremes_scatter(table: pd.DataFrame, k: float = 1.5, columns: Sequence[str] = ("rho_min", "rho_max")) -> Figure:
    """Per-material density minimum vs maximum (e/Å³) with the IQR fences used for cleaning."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    x, y = table[columns[0]], table[columns[1]]
    ax.scatter(x, y, s=14)
    for value in iqr_bounds(x, k):
        ax.axvline(value, ls="--", color="grey", lw=0.8)
    for value in iqr_bounds(y, k):
        ax.axhline(value, ls="--", color="grey", lw=0.8)
    ax.set_xlabel(f"{columns[0]} (e/Å³)")
    ax.set_ylabel(f"{columns[1]} (e/Å³)")
    ax.set_title(f"density extremes, IQR fences k={k:g}", fontsize=9)
    fig.tight_layout()
    return fig
