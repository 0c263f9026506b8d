"""density_counts: where the real MP densities went (paired / verified / FCC), read from the data."""

from __future__ import annotations

import pytest

from matmodal.config import Settings
from matmodal.datasets.massa import MassaOptions, build_massa_density, density_counts
from matmodal.modalities.ecd import EcdSettings


@pytest.fixture(scope="module")
def settings(mirror_dir, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("density_counts")
    return Settings(mirror_dir=mirror_dir, cache_dir=root / "c", output_dir=root / "o")


@pytest.mark.parametrize(("fcc_only", "expected"), [
    # the first 12 MultiMat ids: 4 have no MP structure, Nb4CoSi (mp-10003) fails the symmetry check
    (False, {"densities": 12, "no structure": 4, "paired": 8, "refused": 1, "not FCC": 0, "verified": 7,
             "IQR outliers": 0, "rows": 7}),
    # FCC view: the side column's / structure's space group drops the non-FCC ones; BaTe remains
    (True, {"densities": 12, "no structure": 4, "paired": 1, "refused": 0, "not FCC": 7, "verified": 1,
            "IQR outliers": 0, "rows": 1}),
])
def test_counts_of_the_first_twelve_densities(settings, fcc_only, expected):
    options = MassaOptions(ecd=EcdSettings(pixels=32), robocrys=False, iqr_k=None, limit=12)
    dataset = build_massa_density(options=options, settings=settings, fcc_only=fcc_only)
    assert density_counts(dataset) == expected
