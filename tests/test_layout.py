"""Layout, the dataset registry and the notebook setup call: every artefact path from one place."""

from __future__ import annotations

from pathlib import Path

import pytest

import matmodal
from matmodal.config import Settings
from matmodal.datasets import registry
from matmodal.layout import Layout


def test_layout_keys_every_artefact_by_profile(tmp_path):
    layout = Layout(tmp_path / "out", tmp_path / "paper_figures", "full")
    assert layout.dataset_dir("mp_elastic") == tmp_path / "out/datasets/full/mp_elastic"
    assert layout.runs_root == tmp_path / "out/runs/full"
    assert layout.runs_dir("alexandria") == tmp_path / "out/runs/full/alexandria"
    assert layout.massa_scores_dir == tmp_path / "out/massa/full"
    assert layout.rendered_notebooks_dir == tmp_path / "out/notebooks/full"
    assert layout.figures_dir("costa2025", "mp_elastic") == tmp_path / "paper_figures/costa2025/full/mp_elastic"
    assert layout.figures_dir("massa2024") == tmp_path / "paper_figures/massa2024/full"
    assert layout.study_dir("costa2025") == tmp_path / "paper_figures/costa2025"
    with pytest.raises(ValueError, match="unknown study 'costa'"):
        layout.figures_dir("costa")


def test_settings_dataset_dir_is_the_layouts(tmp_path):
    settings = Settings(output_dir=tmp_path, profile="paper")
    assert settings.layout.profile == "paper"
    assert settings.dataset_dir("massa") == tmp_path / "datasets/paper/massa"


def test_setup_resolves_notebook_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    settings, layout = matmodal.setup(profile="full", mirror="../mirror", output_dir="../outputs", seed=3)
    assert settings.mirror_dir == tmp_path / "mirror" and settings.seed == 3
    assert layout.runs_root == tmp_path / "outputs/runs/full"
    assert layout.figures_dir("costa2025", "x") == tmp_path / "paper_figures/costa2025/full/x"
    settings, _ = matmodal.setup(profile="quick", mirror="", output_dir=str(tmp_path / "o"))
    assert settings.mirror_dir is None
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        matmodal.setup(profile="fast")


def test_registry_names_every_dataset_with_an_importable_builder():
    assert [d.value for d in registry.DatasetName] == list(registry.REGISTRY)
    assert {"alexandria", "mp_elastic", "massa"} <= set(registry.REGISTRY)
    for spec in registry.SPECS:
        assert callable(spec.load_builder()), spec.name
    with pytest.raises(ValueError, match="unknown dataset 'nope' \\(known: alexandria"):
        registry.spec("nope")


def test_build_dataset_goes_through_the_registry(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, output_dir=tmp_path, cache_dir=tmp_path / "c")
    from matmodal.datasets.build import BuildOptions

    dataset = registry.build_dataset("alexandria", options=BuildOptions(robocrys=False), settings=settings,
                                     sample=12)
    assert len(dataset.table) == 12
    assert Path(dataset.folder) == tmp_path / "datasets/quick/alexandria"
