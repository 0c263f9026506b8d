"""Real MP elastic structures from the mirror, shared by the structure-embedding tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure

N_STRUCTURES = 60


def read_mp_elastic(mirror_dir: Path, limit: int | None = None) -> pd.DataFrame:
    """The mirror's MP elastic table (pandas dict-of-columns JSON), first ``limit`` rows."""
    frame = pd.read_json(mirror_dir / "materials_project" / "mp_elastic_1000.json")
    return frame if limit is None else frame.iloc[:limit]


def parse_cifs(cifs) -> list[Structure]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(cif, fmt="cif") for cif in cifs]


@pytest.fixture(scope="module")
def mp_table(mirror_dir) -> pd.DataFrame:
    return read_mp_elastic(mirror_dir, N_STRUCTURES)


@pytest.fixture(scope="module")
def mp_structures(mp_table) -> list[Structure]:
    return parse_cifs(mp_table["cif"])


@pytest.fixture(scope="module")
def mp_items(mp_table, mp_structures) -> list[tuple[str, Structure]]:
    return list(zip(mp_table["material_id"], mp_structures, strict=True))


def test_mirror_structures_match_their_recorded_nsites_and_volume(mp_table, mp_structures):
    for (_, row), structure in zip(mp_table.iterrows(), mp_structures, strict=True):
        assert len(structure) == row["nsites"]
        assert structure.volume == pytest.approx(row["volume"], rel=1e-4)
