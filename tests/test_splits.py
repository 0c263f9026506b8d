"""Seeded 85/15 split by id on the real MP elastic ids."""

from __future__ import annotations

import pytest

from matmodal.config import Settings
from matmodal.splits import train_test_split_ids


@pytest.fixture(scope="module")
def mp_ids(mirror_dir) -> list[str]:
    from matmodal.sources.materials_project import MaterialsProject

    return MaterialsProject(Settings(mirror_dir=mirror_dir)).elasticity()["material_id"].astype(str).tolist()


def test_split_is_a_disjoint_85_15_partition(mp_ids):
    train, test = train_test_split_ids(mp_ids, 0.15, seed=0)
    assert set(train).isdisjoint(test)
    assert set(train) | set(test) == set(mp_ids)
    assert len(test) == round(len(set(mp_ids)) * 0.15)
    assert train == sorted(train) and test == sorted(test)


def test_split_depends_on_ids_and_seed_only(mp_ids):
    first = train_test_split_ids(mp_ids, seed=3)
    assert train_test_split_ids(list(reversed(mp_ids)) + mp_ids[:5], seed=3) == first
    assert train_test_split_ids(mp_ids, seed=4)[1] != first[1]


def test_split_keeps_both_sides_non_empty():
    train, test = train_test_split_ids(["a", "b"], 0.15)
    assert len(train) == len(test) == 1
    train, test = train_test_split_ids(["a", "b", "c"], 0.99)
    assert (len(train), len(test)) == (1, 2)


@pytest.mark.parametrize(("ids", "fraction"), [(["a"], 0.15), (["a", "b"], 0.0), (["a", "b"], 1.0)])
def test_split_rejects_impossible_requests(ids, fraction):
    with pytest.raises(ValueError):
        train_test_split_ids(ids, fraction)
