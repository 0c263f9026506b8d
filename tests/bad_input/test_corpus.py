"""Every corpus kind, interleaved with real good entries in one file, has its exact outcome,
and every record read is accounted for: ``len(table) + dropped == entries in the file``."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, summary
from matmodal.datasets.costa import build_alexandria
from tests.bad_input.corpus import KINDS, Kind, fill, matches, write_mixed
from tests.conftest import MIRROR
from tests.test_records import hand_targets

FILE = "alexandria_950.json.bz2"


@pytest.fixture(scope="module")
def corpus_mirror(tmp_path_factory):
    """A mirror folder holding one file: every kind, each between real good entries."""
    if not (MIRROR / "alexandria").is_dir():
        pytest.skip(f"mirror not found at {MIRROR}")
    root = tmp_path_factory.mktemp("corpus") / "mirror"
    (root / "alexandria").mkdir(parents=True)
    layout, positions = write_mixed(root / "alexandria" / FILE, MIRROR)
    return root, layout, positions


@pytest.fixture(scope="module")
def mixed(corpus_mirror):
    root, layout, positions = corpus_mirror
    settings = Settings(mirror_dir=root, output_dir=root.parent / "out", cache_dir=root.parent / "cache")
    dataset = build_alexandria(options=BuildOptions(robocrys=False), settings=settings)
    return dataset, layout, positions


def test_corpus_has_at_least_40_kinds():
    assert len(KINDS) >= 40
    assert len({k.name for k in KINDS}) == len(KINDS)


def test_every_record_read_is_accounted_for(mixed):
    dataset, layout, _ = mixed
    dropped = dataset.manifest[dataset.manifest.severity == "dropped"]
    assert len(dataset.table) + len(dropped) == len(layout)
    assert len(dataset.table) == sum(1 for x in layout if not isinstance(x, Kind) or x.kept)
    assert not (dataset.manifest.severity == "unreadable").any()
    assert dataset.table.material_id.is_unique


def test_good_records_around_the_bad_land_with_correct_targets(mixed):
    dataset, layout, _ = mixed
    table = dataset.table.set_index("material_id")
    good = [x for x in layout if not isinstance(x, Kind)]
    for entry in good:
        row = table.loc[entry["data"]["mat_id"]]
        for target, value in hand_targets(entry).items():
            assert row[target] == pytest.approx(value, rel=1e-9)
    notes = dataset.manifest[dataset.manifest.record_id.isin([e["data"]["mat_id"] for e in good])]
    assert set(notes.reason) <= {"derived from the structure: formula, spg (spglib, symprec=0.1 Å)",
                                 f"duplicate id (first seen in {FILE})"}


def test_summary_counts_are_true(mixed):
    dataset, layout, _ = mixed
    kept = len(dataset.table)
    dropped = len(layout) - kept
    degraded = dataset.manifest.query("severity == 'degraded'").record_id.nunique()
    assert summary(dataset) == [f"alexandria: {kept} kept, {degraded} degraded, {dropped} dropped "
                                f"— see {dataset.folder / 'manifest.csv'}"]


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_kind_has_its_exact_outcome(mixed, kind):
    dataset, _, positions = mixed
    index = positions[kind.name]
    record_id = fill(kind.expected_id, FILE, index)
    rows = dataset.manifest[dataset.manifest.record_id == record_id]
    if kind.name == "duplicate_id":  # the first record of that id is a good one, kept
        rows = rows[rows["index"] == ""]
    expected = [(stage, severity, fill(reason, FILE, index)) for stage, severity, reason in kind.issues]
    actual = list(zip(rows.stage, rows.severity, rows.reason, strict=True))
    assert len(actual) == len(expected), actual
    for (stage, severity, reason), got in zip(expected, actual, strict=True):
        assert (stage, severity) == got[:2] and matches(reason, got[2]), got
    in_table = record_id in set(dataset.table.material_id)
    assert in_table == (kind.kept or kind.name == "duplicate_id")
    if kind.kept:
        row = dataset.table.set_index("material_id").loc[record_id]
        for target, value in (kind.targets or {}).items():
            assert (pd.isna(row[target]) if value is None else math.isclose(row[target], value)), target
    if not kind.kept and kind.name != "duplicate_id":  # a dropped record is named by file and position too
        assert set(rows["index"]) == {str(index)} and set(rows.source) == {FILE}


def test_text_outputs_carry_no_raw_control_bytes(mixed):
    dataset, _, _ = mixed
    raw = (dataset.folder / "manifest.csv").read_bytes()
    text = raw.decode("utf-8")  # strict: no lone surrogates either
    assert b"\x00" not in raw and "bad\\x00nul" in text and "bad-\\ud800" in text and "bad-\\udcff-x" in text


def test_image_stage_draws_every_kept_corpus_record(corpus_mirror, mixed, tmp_path):
    """Long, NUL and hostile ids get bounded, safe file names; nothing drawn fails the build."""
    from matmodal.modalities.image import RenderSettings

    dataset, _, _ = mixed
    settings = Settings(mirror_dir=corpus_mirror[0], output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    with_images = build_alexandria(options=BuildOptions(robocrys=False, image=RenderSettings(size=32)),
                                   settings=settings)
    assert len(with_images.table) == len(dataset.table)
    assert with_images.table.image_path.notna().all()
    names = [p.rsplit("/", 1)[1] for p in with_images.table.image_path]
    assert max(len(n.encode()) for n in names) <= 135 and all("\\" not in n and "\x00" not in n for n in names)
    assert not (with_images.manifest.stage == "image").any()
