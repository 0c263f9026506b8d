import bz2
import json

import numpy as np
import pytest

from matmodal.config import Settings
from matmodal.manifest import Unreadable
from matmodal.sources import alexandria
from matmodal.sources.mirror import MissingDataError
from tests.fixtures import ALEX_FILES, real_entries, write_dump


@pytest.mark.parametrize("name,count", [(ALEX_FILES[0], 98), (ALEX_FILES[1], 10)])
def test_streaming_equals_whole_file_parse(mirror_dir, name, count):
    streamed = list(alexandria.iter_entries(mirror_dir / "alexandria" / name))
    assert len(streamed) == count
    assert streamed == real_entries(mirror_dir, name)


def test_stream_reads_in_small_pieces(mirror_dir, monkeypatch):
    monkeypatch.setattr(alexandria, "READ_CHARS", 97)  # entries straddle many reads
    streamed = list(alexandria.iter_entries(mirror_dir / "alexandria" / ALEX_FILES[1]))
    assert [e["data"]["mat_id"] for e in streamed] == [e["data"]["mat_id"] for e in real_entries(mirror_dir)]


def test_truncated_bz2_is_a_clear_file_error(mirror_dir, tmp_path):
    raw = (mirror_dir / "alexandria" / ALEX_FILES[0]).read_bytes()
    cut = tmp_path / "truncated.json.bz2"
    cut.write_bytes(raw[: len(raw) // 2])
    seen = []
    with pytest.raises(alexandria.SourceFileError, match=r"truncated\.json\.bz2") as info:
        for entry in alexandria.iter_entries(cut):
            seen.append(entry)
    assert "truncated" in info.value.reason or "ends" in info.value.reason
    assert len(seen) < 98  # bz2 yields whole 900 kB blocks: a one-block file yields none


def test_invalid_json_entry_is_skipped_and_named(mirror_dir, tmp_path):
    entries = real_entries(mirror_dir)[:3]
    text = json.dumps({"entries": entries})
    broken = text.replace('"energy"', '"energy" "oops"', 2)  # breaks entries 0 and 1
    path = tmp_path / "broken.json.bz2"
    path.write_bytes(bz2.compress(broken.encode()))
    streamed = list(alexandria.iter_entries(path))
    assert streamed[:2] == [Unreadable("entry #0: invalid JSON (Expecting ':' delimiter); skipped"),
                            Unreadable("entry #1: invalid JSON (Expecting ':' delimiter); skipped")]
    assert streamed[2] == entries[2]


def test_file_ending_inside_an_entry_names_it(mirror_dir, tmp_path):
    text = json.dumps({"entries": real_entries(mirror_dir)[:3]})
    path = tmp_path / "cut.json.bz2"
    path.write_bytes(bz2.compress(text[: len(text) - 200].encode()))  # a clean bz2 of cut JSON
    seen = []
    with pytest.raises(alexandria.SourceFileError, match=r"cut\.json\.bz2: file ends inside entry #2"):
        for entry in alexandria.iter_entries(path):
            seen.append(entry)
    assert len(seen) == 2


def test_not_a_dump_file(tmp_path):
    path = tmp_path / "other.json.bz2"
    path.write_bytes(bz2.compress(b'{"something": 1}'))
    with pytest.raises(alexandria.SourceFileError, match="no \"entries\" array"):
        list(alexandria.iter_entries(path))


def test_reservoir_sample_is_seeded_and_uniform():
    a = alexandria.reservoir_sample(range(1000), 50, seed=3)
    assert a == alexandria.reservoir_sample(range(1000), 50, seed=3)
    assert a != alexandria.reservoir_sample(range(1000), 50, seed=4)
    assert len(set(a)) == 50 and a == sorted(a)
    assert alexandria.reservoir_sample(range(5), 10) == list(range(5))
    hits = np.zeros(100)
    for seed in range(400):
        hits[alexandria.reservoir_sample(range(100), 10, seed=seed)] += 1
    assert hits.min() > 15 and hits.max() < 70  # expectation 40 per item


def test_sample_across_real_files(mirror_dir):
    paths = [mirror_dir / "alexandria" / n for n in ALEX_FILES]
    sample = alexandria.sample_entries(paths, 20, seed=1)
    assert len(sample) == 20
    assert {name for name, _, _ in sample} <= set(ALEX_FILES)
    assert sample == alexandria.sample_entries(list(reversed(paths)), 20, seed=1)


def test_list_and_fetch_from_mirror(mirror_dir):
    settings = Settings(mirror_dir=mirror_dir)
    assert alexandria.list_files(settings) == sorted(ALEX_FILES)
    assert alexandria.fetch(ALEX_FILES[0], settings).exists()
    with pytest.raises(MissingDataError, match=r"alexandria_999\.json\.bz2 is not in the mirror"):
        alexandria.fetch("alexandria_999.json.bz2", settings)


def test_offline_without_mirror_says_how_to_fix(monkeypatch, tmp_path):
    import requests

    class NoNetwork(requests.Session):
        def get(self, *a, **k):
            raise requests.ConnectionError("no route")

    with pytest.raises(MissingDataError, match="MATMODAL_MIRROR_DIR"):
        alexandria.list_files(Settings(mirror_dir=None, cache_dir=tmp_path), session=NoNetwork())


def test_fixture_dump_round_trip(mirror_dir, tmp_path):
    path = write_dump(tmp_path / "fixture.json.bz2", real_entries(mirror_dir)[:2])
    assert len(list(alexandria.iter_entries(path))) == 2
