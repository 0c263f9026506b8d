"""Test fixture builder for the training tests: a small *real* MP elastic dataset.

``tiny_elastic(mirror)`` builds the first ``n`` (by id) of the mirror's 1,000 MP elastic
materials with the composition text and Magpie embeddings (no robocrys, no images) into a
temporary folder, once per test session. The data are real; only the subset is ours.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, Dataset


@cache
def tiny_elastic(mirror: Path, n: int = 48) -> Dataset:
    from matmodal.datasets.elastic import build_elastic
    from matmodal.sources.materials_project import MaterialsProject

    root = Path(tempfile.mkdtemp(prefix="matmodal-grid-"))
    settings = Settings(mirror_dir=mirror, output_dir=root / "outputs", cache_dir=root / "cache")
    ids = sorted(MaterialsProject(settings).elasticity()["material_id"].astype(str))
    dataset = build_elastic(ids[: n + 12], options=BuildOptions(robocrys=False, featurisers=("magpie",)),
                            settings=settings, name=f"mp_elastic_tiny{n}")
    dataset.table = dataset.table.head(n)  # some of the n + 12 are dropped (unstable tensors)
    return dataset
