"""One way to seed a run: python, numpy and torch (a leaf: imports nothing of matmodal)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def seed_everything(seed: int, *, deterministic: bool = True) -> Any:
    """Seed ``random``, numpy and torch (CPU and CUDA); with ``deterministic`` also ask torch for
    deterministic kernels (warn-only where none exists). Returns a seeded ``torch.Generator``
    (None when torch is not installed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)
