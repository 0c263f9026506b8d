"""The small shared helpers every layer uses: one seeding, one structure hash, one space-group lookup."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from matmodal.hashing import payload_digest, rounded_structure_key, structure_digest
from matmodal.seeding import seed_everything
from matmodal.symmetry import SYMPREC, spacegroup_number
from tests.fixtures import real_entries


def _structures(mirror_dir, n=5):
    return [Structure.from_dict(e["structure"]) for e in real_entries(mirror_dir)[:n]]


def test_seed_everything_repeats_python_numpy_and_torch_draws():
    def draws():
        generator = seed_everything(7)
        return np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=generator).item()

    assert draws() == draws()
    assert torch.are_deterministic_algorithms_enabled()


def test_spacegroup_lookup_matches_spglib_at_the_project_tolerance(mirror_dir):
    assert SYMPREC == 0.1
    for structure in _structures(mirror_dir):
        expected = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        assert spacegroup_number(structure) == expected


def test_hashes_keep_the_cache_keys_they_replace(mirror_dir):
    """Same bytes as the formulas text.structure_key and structure.base.digest used, so caches stay valid."""
    structure = _structures(mirror_dir, 1)[0]
    old_text = hashlib.sha256(json.dumps([structure.lattice.matrix.round(6).tolist(),
                                          [s.species_string for s in structure],
                                          structure.frac_coords.round(6).tolist(), ["v1"]]).encode()).hexdigest()[:24]
    assert rounded_structure_key(structure, "v1") == old_text
    payload = {"b": 1, "a": [1.5, "x"]}
    assert payload_digest(payload) == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    moved = structure.copy()
    moved.translate_sites([0], [1e-9, 0, 0])
    assert structure_digest(moved) != structure_digest(structure)  # exact: any change is a new picture
    assert rounded_structure_key(moved, "v1") == old_text  # rounded: below 1e-6 is the same text
