"""Whole-file problems: one line naming the file and the problem, a non-zero exit when nothing
usable was read, and the 'N kept, M degraded, K dropped' summary when something was."""

from __future__ import annotations

import bz2
import codecs
import json

import pytest

from matmodal.cli import main
from tests.fixtures import real_entries

GOOD = 10  # the real hyllios entries (full schema: nothing derived, nothing degraded)


@pytest.fixture
def run(tmp_path, mirror_dir, capsys):
    """``run({name: bytes}) -> (exit code, stdout, stderr)`` of ``matmodal build alexandria``."""
    def invoke(files: dict[str, bytes]) -> tuple[int, str, str]:
        folder = tmp_path / "mirror" / "alexandria"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        code = main(["--mirror", str(tmp_path / "mirror"), "--output-dir", str(tmp_path / "out"),
                     "--cache-dir", str(tmp_path / "cache"), "build", "alexandria", "--no-robocrys"])
        out = capsys.readouterr()
        return code, out.out, out.err
    return invoke


def dump(entries, prefix: bytes = b"") -> bytes:
    return bz2.compress(prefix + json.dumps({"entries": entries}).encode())


def test_invalid_json_in_the_middle_is_said_and_the_rest_kept(run, mirror_dir):
    text = json.dumps({"entries": real_entries(mirror_dir)})
    first = text.index('"energy"', text.index('"energy"') + 1)  # inside entry #1
    broken = (text[:first] + '"energy" "oops"' + text[first + len('"energy"'):]).encode()
    code, out, err = run({"alexandria_001.json.bz2": bz2.compress(broken)})
    assert code == 0 and err == ""
    assert out.startswith(f"alexandria: {GOOD - 1} kept, 0 degraded, 1 dropped — see ")
    assert out.rstrip().endswith("manifest.csv")


def test_empty_entries_names_the_file_and_fails(run):
    code, out, err = run({"alexandria_002.json.bz2": dump([])})
    assert code != 0 and out == ""
    assert "alexandria_002.json.bz2: the 'entries' array is empty" in err
    assert "Issue(" not in err and err.count("\n") == 1


def test_truncated_file_is_one_line_and_the_other_file_is_kept(run, mirror_dir):
    whole = dump(real_entries(mirror_dir))
    code, out, err = run({"alexandria_003.json.bz2": whole, "alexandria_004.json.bz2": whole[:300]})
    assert code == 0
    assert err == ("matmodal: alexandria_004.json.bz2: truncated bz2 stream (file ends before the end-of-stream "
                   "marker); the 0 entries before it were read\n")
    assert out.startswith(f"alexandria: {GOOD} kept, 0 degraded, 0 dropped")


@pytest.mark.parametrize("data,problem", [
    (bz2.compress(b'{"something": 1}'), 'no "entries" array (not an Alexandria dump file)'),
    (b"this is not bz2 at all", "corrupt bz2 stream (Invalid data stream)"),
    (bz2.compress(b'{"entries": [{"a": 1}'), "file ends after entry #0 (no closing ']')"),
])
def test_nothing_usable_exits_non_zero_naming_file_and_problem(run, data, problem):
    code, out, err = run({"alexandria_005.json.bz2": data})
    assert code == 2 and out == ""
    assert err.startswith("matmodal: error: dataset 'alexandria': no usable record")
    assert f"alexandria_005.json.bz2: {problem}" in err and "Issue(" not in err


def test_utf8_bom_is_read(run, mirror_dir):
    code, out, _ = run({"alexandria_006.json.bz2": dump(real_entries(mirror_dir), codecs.BOM_UTF8)})
    assert code == 0 and out.startswith(f"alexandria: {GOOD} kept, 0 degraded, 0 dropped")


def test_sampling_survives_a_broken_file(mirror_dir, tmp_path):
    from matmodal.config import Settings
    from matmodal.datasets.build import BuildOptions
    from matmodal.datasets.costa import build_alexandria

    folder = tmp_path / "mirror" / "alexandria"
    folder.mkdir(parents=True)
    whole = dump(real_entries(mirror_dir))
    (folder / "alexandria_007.json.bz2").write_bytes(whole)
    (folder / "alexandria_008.json.bz2").write_bytes(whole[:300])
    settings = Settings(mirror_dir=tmp_path / "mirror", output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    dataset = build_alexandria(sample=4, options=BuildOptions(robocrys=False), settings=settings)
    assert len(dataset.table) == 4
    assert list(dataset.manifest.record_id) == ["alexandria_008.json.bz2"]
    assert list(dataset.manifest.severity) == ["unreadable"]
