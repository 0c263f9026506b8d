"""Deterministic train/test splits by material id (costa2025 §4.4: 85 % train, 15 % test).

The split depends only on the *set* of ids and the seed, never on row order, so every
modality combination, baseline and target that sees the same ids and seed shares one test set.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def train_test_split_ids(
    ids: Iterable[str], test_fraction: float = 0.15, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split unique ids into ``(train_ids, test_ids)``, both sorted.

    ``round(n * test_fraction)`` ids (at least 1, at most ``n - 1``) go to the test side;
    which ones is fixed by ``seed`` (numpy PCG64 permutation of the sorted ids).
    """
    unique = sorted(set(map(str, ids)))
    if len(unique) < 2:
        raise ValueError(f"need at least 2 distinct ids to split, got {len(unique)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(max(1, round(len(unique) * test_fraction)), len(unique) - 1)
    order = np.random.default_rng(seed).permutation(len(unique))
    test = {unique[i] for i in order[:n_test]}
    return [i for i in unique if i not in test], sorted(test)
