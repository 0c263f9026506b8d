"""Severities tell what happened: a record whose image or features failed stays in the table,
so the manifest says 'degraded' (and the summary's dropped count stays true)."""

from __future__ import annotations

import pytest

import matmodal.modalities.image as image
from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, summary
from matmodal.datasets.costa import build_alexandria
from matmodal.manifest import Issue, Severity

FILE = "hyllios_benchmark_pressure_10.json.bz2"


@pytest.fixture
def build(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    return lambda: build_alexandria([FILE], options=BuildOptions(robocrys=False, image=image.RenderSettings(size=32)),
                                    settings=settings)


def test_a_failed_picture_is_degraded_not_dropped(build, monkeypatch):
    real = image.render_many

    def one_fails(items, *args, **kwargs):
        paths, issues = real(items[1:], *args, **kwargs)
        return paths, [Issue(items[0][0], "image", Severity.dropped, "unrenderable: test"), *issues]

    monkeypatch.setattr(image, "render_many", one_fails)
    dataset = build()
    rows = dataset.manifest[dataset.manifest.stage == "image"]
    assert list(zip(rows.severity, rows.reason, strict=True)) == [
        ("degraded", "unrenderable: test (row kept without this image)")]
    assert len(dataset.table) == 10 and dataset.table.image_path.isna().sum() == 1
    assert summary(dataset)[-1].startswith("alexandria: 10 kept, 1 degraded, 0 dropped")


def test_a_broken_stage_costs_the_modality_not_the_table(build, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(image, "render_many", broken)
    dataset = build()
    assert len(dataset.table) == 10 and dataset.table.image_path.isna().all()
    assert set(dataset.manifest.severity) == {"degraded"}
    assert set(dataset.manifest.reason) == {
        "image stage failed for the whole batch (RuntimeError: A process in the process pool was terminated "
        "abruptly) (row kept without this image)"}
