from contextlib import contextmanager

import pytest
from pymatgen.core import Lattice, Structure

from matmodal.config import Settings
from matmodal.sources import materials_project as mpsrc
from matmodal.sources.mirror import MissingDataError

KEY = "secret-key-0123456789abcdef"


def test_mirror_elasticity_and_structures(mirror_dir):
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=mirror_dir))
    frame = mp.elasticity()
    assert len(frame) == 1000 and frame.structure.notna().all()
    assert mp.structure("mp-1002165").composition.reduced_formula == "GeC"
    with pytest.raises(MissingDataError, match="mp-0 in the mirror"):
        mp.structure("mp-0")


def test_mirror_devset_summary(mirror_dir):
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=mirror_dir))
    summary = mp.summary()
    assert len(summary) == 200 and summary.material_id.str.startswith("mpdev-").all()
    assert "energy_per_atom" not in summary  # inconsistent in the source: not exposed
    assert len(mp.summary(spacegroup_numbers=[225])) == 81  # README: 81 are Fm-3m
    first = summary.iloc[0]
    assert first.formula_pretty == "Ac" and len(first.structure) == 3


class FakeRester:
    """Stands in for mp_api's MPRester (test fixture): records calls, fails once with 429."""

    def __init__(self):
        self.calls = 0
        self.materials = self
        self.summary = self

    def search(self, **kw):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("REST query returned with error status code 429")
        s = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
        return [{"material_id": "mp-30", "formula_pretty": "Cu", "structure": s,
                 "formation_energy_per_atom": 0.0, "efermi": 5.1, "band_gap": 0.0, "is_stable": True,
                 "symmetry": {"number": 225}}]


def test_api_path_caches_backs_off_and_never_stores_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MP_API_KEY", KEY)
    fake = FakeRester()

    @contextmanager
    def rester():
        mpsrc.api_key()
        yield fake

    monkeypatch.setattr(mpsrc, "mp_rester", rester)
    monkeypatch.setattr(mpsrc.time, "sleep", lambda s: None)
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=None, cache_dir=tmp_path))
    frame = mp.summary(spacegroup_numbers=[225], is_stable=True)
    assert frame.material_id.tolist() == ["mp-30"] and frame.spacegroup_number.tolist() == [225]
    assert fake.calls == 2  # one 429, one retry
    again = mp.summary(spacegroup_numbers=[225], is_stable=True)
    assert fake.calls == 2 and again.structure.iloc[0].composition.reduced_formula == "Cu"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    out = capsys.readouterr()
    assert KEY not in out.out + out.err


def test_missing_key_says_how(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MissingDataError, match="MP_API_KEY"):
        mpsrc.api_key()


def test_backoff_gives_up_on_non_transient_errors():
    calls = []

    def bad():
        calls.append(1)
        raise ValueError("HTTP 401 unauthorized")

    with pytest.raises(ValueError):
        mpsrc.with_backoff(bad, base_s=0)
    assert len(calls) == 1
