"""The fusion family on real MP data: frozen MiniLM text vectors (cached), GBM / MLP / late fusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matmodal.models import embeddings
from matmodal.models.fusion import frozen_views, fusion_predict, label, late_weights, train_fusion
from matmodal.models.run_spec import PREDICTIONS, RunConfig, prepare_split
from tests.grid_fixtures import tiny_elastic
from tests.models.test_baselines import poisoned


def test_minilm_vectors_are_unit_length_and_cached(tmp_path, monkeypatch):
    texts = ["Si 2", "Na 1 Cl 1", "Si 2"]
    first = embeddings.text_embeddings(texts, cache_dir=tmp_path)
    assert first.shape == (3, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    assert float(first[0] @ first[1]) < 0.99  # different texts, different vectors
    monkeypatch.setattr(embeddings, "minilm_encode", lambda *a, **k: pytest.fail("cache not used"))
    np.testing.assert_array_equal(embeddings.text_embeddings(texts, cache_dir=tmp_path), first)
    assert len(list((tmp_path / "embeddings").glob("*/*.npy"))) == 2


@pytest.mark.parametrize("family", ["fusion_gbm", "fusion_mlp", "fusion_late"])
def test_fusion_families_fit_on_training_rows_only(mirror_dir, tmp_path, family):
    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "vol_per_atom", "tabular+text", model=family, seed=1, epochs=40, patience=5,
                       extra=(("fusion.pca", 8),))
    split = prepare_split(table, config)
    views = frozen_views(split, config, cache_dir=tmp_path)
    assert views.fit["text"].shape[1] == 8 and views.fit["tabular"].shape[1] == len(split.columns["tabular"])
    assert len(views.y_fit) + len(views.y_val) == len(split.train) and len(views.test["text"]) == len(split.test)
    pred, curve, fitted = fusion_predict(views, config)
    blind, _, _ = fusion_predict(frozen_views(poisoned(split), config, cache_dir=tmp_path), config)
    np.testing.assert_array_equal(pred, blind)
    if family == "fusion_late":
        assert set(fitted["weights"]) == {"tabular:gbm", "tabular:mlp", "text:gbm", "text:mlp"}
        assert sum(fitted["weights"].values()) == pytest.approx(1)
    else:
        assert {"train", "val"} <= set(curve["split"])
    result = train_fusion(table, config, tmp_path / family, cache_dir=tmp_path)
    saved = pd.read_parquet(tmp_path / family / PREDICTIONS)
    assert np.isfinite(saved["y_pred"]).all() and result["n_features"]["text"] == 8
    assert result["pretrained"] == {"tabular": False, "text": True}


def test_late_weights_and_labels():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    weights = late_weights(np.column_stack([y, y[::-1]]), y)
    np.testing.assert_allclose(weights, [1, 0], atol=1e-9)
    config = RunConfig("d", "k_vrh", "text+tabular", model="fusion_gbm", features=("chgnet", "magpie")).as_dict()
    assert label(config) == "Fusion GBM: Tabular + Text (CHGNet + Magpie)"
    assert label({**config, "model": "fusion_late", "modalities": ["image"]}) == "Late fusion: Images"
