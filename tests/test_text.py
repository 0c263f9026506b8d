import pytest
from pymatgen.core import Composition, Lattice, Structure

from matmodal.modalities import text
from tests.fixtures import real_entries


def test_composition_string_exactly_as_costa2025():
    assert text.composition_text({"Ac": 1.0, "Hg": 2.0, "Cd": 2.0}) == "Ac Hg 2 Cd 2"
    assert text.composition_text(Composition({"Ac": 2})) == "Ac 2"


def test_composition_string_keeps_entry_order(mirror_dir):
    entry = real_entries(mirror_dir)[0]
    assert list(entry["composition"]) == ["Ge", "Pt", "Ac"]
    assert text.composition_text(entry["composition"]) == "Ge 2 Pt 2 Ac 2"


def test_robocrys_fallback_is_reported_and_cached(monkeypatch, tmp_path):
    structure = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])

    def boom(_):
        raise RuntimeError("condenser failed")

    monkeypatch.setattr(text, "describe", boom)
    value, failure = text.robocrys_description(structure, cache_dir=tmp_path)
    assert value == "Cu 4" and "condenser failed" in failure
    monkeypatch.setattr(text, "describe", lambda s: pytest.fail("cache not used"))
    assert text.robocrys_description(structure, cache_dir=tmp_path) == (value, failure)


def test_robocrys_describes_a_real_structure(mirror_dir, tmp_path):
    from matmodal.records import from_alexandria

    record, _ = from_alexandria(real_entries(mirror_dir)[0], "x")
    value, failure = text.robocrys_description(record.structure, cache_dir=tmp_path)
    assert failure is None
    assert "crystallizes in the" in value and "space group" in value
