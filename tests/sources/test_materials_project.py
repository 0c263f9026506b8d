from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from pymatgen.core import Lattice, Structure

from matmodal.config import Settings
from matmodal.sources import materials_project as mpsrc
from matmodal.sources.mirror import MissingDataError

KEY = "secret-key-0123456789abcdef"
SAMPLE_IDS = ("mp-11313", "mp-558834", "mp-773046", "mp-776448", "mp-9436")  # seed 0
CU = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


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


def test_mp2018_stream_samples_before_parsing(mirror_dir):
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=mirror_dir, seed=0))
    rows = list(mp.summary_rows(sample=5))
    assert [r["material_id"] for r in rows] == list(SAMPLE_IDS)
    assert all(isinstance(r["cif"], str) and "structure" not in r for r in rows)  # CIFs not parsed
    assert [r["material_id"] for r in mp.summary_rows(sample=5)] == list(SAMPLE_IDS)  # seeded
    assert [r["material_id"] for r in mp.summary_rows(sample=5, seed=1)] != list(SAMPLE_IDS)
    first = next(mp.summary_rows())
    assert first["material_id"] == "mp-1" and first["band_gap"] == 0.0 and first["volume"] == pytest.approx(114.0518)
    picked = list(mp.summary_rows(material_ids=["mp-1000", "mp-1"]))
    assert sorted(r["material_id"] for r in picked) == ["mp-1", "mp-1000"]


def test_jsonl_reader_reports_bad_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"material_id": "mp-1"}\n[1, 2]\n{not json\n\n')
    rows = list(mpsrc.iter_jsonl(path))
    assert rows[0] == {"material_id": "mp-1"}
    assert rows[1]["_error"] == "line 2 is a JSON list, not an object"
    assert rows[2]["material_id"] == "rows.jsonl#3" and "line 3 is not JSON" in rows[2]["_error"]
    assert len(rows) == 3


def test_binary_elasticity_2025(mirror_dir):
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=mirror_dir))
    frame = mp.binary_elasticity()
    assert len(frame) == 3884 and frame.material_id.is_unique
    first = frame.iloc[0]
    assert first.material_id == "mp-975512" and first.formula == "InSb3"
    assert (first.k_vrh, first.g_vrh) == (53.357, 12.164) and isinstance(first.structure, dict)
    assert (frame[["k_vrh", "g_vrh"]] > 0).all().all()  # README: all moduli positive
    assert len(mp.binary_elasticity(["mp-975512", "mp-0"])) == 1


def test_structure_candidates_from_every_mirror_file(mirror_dir):
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=mirror_dir))
    mp.prefetch_structures(["mp-1002165", "mp-1", "mp-0"])
    origins = [o for o, _ in mp.structure_candidates("mp-1002165")]
    assert origins == [mpsrc.ELASTIC_2025_FILE, mpsrc.ELASTIC_FILE]  # GeC: not in mp2018
    assert [o for o, _ in mp.structure_candidates("mp-1")] == [mpsrc.SUMMARY_2018_FILE]
    assert mp.structure("mp-1").composition.reduced_formula == "Cs"
    assert mp.structure_candidates("mp-0") == []


def test_mp_zval_offline_table():
    zval = mpsrc.mp_zval()
    # MP's POTCARs: Si, Fe_pv, Ca_sv, Cd, O, Sm_3, Ge_d
    assert [zval[e] for e in ("Si", "Fe", "Ca", "Cd", "O", "Sm", "Ge")] == [4.0, 14.0, 10.0, 12.0, 6.0, 11.0, 14.0]
    assert len(zval) == 89


class FakeScaleRester:
    """mp-api stand-in (test double) for the scale interfaces: summary ids, summary documents and
    elasticity documents with made-up numbers."""

    def __init__(self):
        self.queries: list[dict] = []
        self.materials = self
        self.summary = self
        self.elasticity = SimpleNamespace(search=self._elasticity)

    def search(self, **kw):
        self.queries.append(kw)
        ids = kw.get("material_ids") or [f"mp-{i}" for i in range(10)]
        if kw["fields"] == ["material_id"]:
            return [{"material_id": m} for m in ids]
        return [{"material_id": m, "structure": CU, "formation_energy_per_atom": 0.0, "band_gap": 0.0, "efermi": 5.0,
                 "volume": CU.volume, "total_magnetization": 0.0} for m in ids]

    def _elasticity(self, **kw):
        self.queries.append(kw)
        nacl = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        return [{"material_id": "mp-22862", "formula_pretty": "NaCl", "structure": nacl,
                 "bulk_modulus": {"vrh": 25.0}, "shear_modulus": {"vrh": 15.0}},
                {"material_id": "mp-30", "formula_pretty": "Cu", "structure": CU,
                 "bulk_modulus": {"vrh": 140.0}, "shear_modulus": {"vrh": 50.0}}]


def test_api_scale_interfaces_sample_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", KEY)
    fake = FakeScaleRester()

    @contextmanager
    def rester():
        yield fake

    monkeypatch.setattr(mpsrc, "mp_rester", rester)
    mp = mpsrc.MaterialsProject(Settings(mirror_dir=None, cache_dir=tmp_path, seed=0))
    rows = list(mp.summary_rows(sample=3))
    expected = mpsrc.reservoir_sample(sorted(f"mp-{i}" for i in range(10)), 3, 0)
    assert sorted(r["material_id"] for r in rows) == sorted(expected)
    assert rows[0]["structure"].composition.reduced_formula == "Cu" and rows[0]["efermi"] == 5.0
    n = len(fake.queries)
    assert [r["material_id"] for r in mp.summary_rows(sample=3)] == [r["material_id"] for r in rows]
    assert len(fake.queries) == n  # cached
    binaries = mp.binary_elasticity()
    assert binaries.material_id.tolist() == ["mp-22862"] and binaries.k_vrh.tolist() == [25.0]  # Cu: not binary
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
