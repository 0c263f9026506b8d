"""Image normalisation to [-1, 1].

``paper`` (massa2024 §2.1): z-score, then min-max rescaling to [-1, 1]. The min-max step
undoes the z-score's shift and scale, so this equals plain min-max scaling: the largest
(semicore) peaks set the range and bonding features get a few levels. Two alternatives keep
contrast where the differential density is small, and both keep zero at zero:

* ``clip``: divide by the standard deviation, clip to +-k, divide by k (robust clipping).
* ``symlog``: ``sign(x) log1p(|x| / std)``, divided by its largest magnitude.
"""

from __future__ import annotations

import numpy as np

METHODS = ("paper", "clip", "symlog")


def zscore(values: np.ndarray) -> np.ndarray:
    """``(x - mean) / std``; a constant array gives zeros."""
    std = float(np.std(values))
    return np.zeros_like(values, dtype=float) if std == 0 else (values - np.mean(values)) / std


def minmax(values: np.ndarray) -> np.ndarray:
    """Linear map of ``[min, max]`` onto ``[-1, 1]``; a constant array gives zeros."""
    low, high = float(np.min(values)), float(np.max(values))
    return np.zeros_like(values, dtype=float) if high == low else 2 * (values - low) / (high - low) - 1


def normalise(values: np.ndarray, method: str = "paper", k: float = 3.0) -> np.ndarray:
    """``values`` mapped to [-1, 1] by ``method`` (``paper``, ``clip`` with ``k`` sigma, ``symlog``)."""
    values = np.asarray(values, dtype=float)
    if method == "paper":
        return minmax(zscore(values))
    std = float(np.std(values))
    if std == 0:
        return np.zeros_like(values)
    if method == "clip":
        return np.clip(values / std, -k, k) / k
    if method == "symlog":
        logged = np.sign(values) * np.log1p(np.abs(values) / std)
        return logged / np.max(np.abs(logged))
    raise ValueError(f"normalisation {method!r} not in {METHODS}")


def fourier_image(values: np.ndarray) -> np.ndarray:
    """massa2024's Fourier variant: log(1 + |FFT|) of the slice, centred (fftshift), in [-1, 1]."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(values - np.mean(values))))
    return minmax(np.log1p(spectrum))
