"""Saved massa2024 regressors (matmodal.models.saving + the classes' save / load_regressor):
safetensors weights + JSON config, same predictions after loading, changed weights refused."""

from __future__ import annotations

import json

import pytest
import torch

from matmodal.models import saving
from matmodal.models.clip import ClipSpec, clip_regressor
from matmodal.models.stacked import (
    ImageRegressor,
    ImageSpec,
    StackedRegressor,
    TextRegressor,
    TextSpec,
    load_regressor,
)

TINY_IMAGE = ImageSpec("tiny_cnn", image_size=32, width=4)
TINY_TEXT = TextSpec("tiny_roberta", width=16, layers=1, max_length=16)


def _batch(tokenizer=None, n: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = {"pixel_values": torch.randn(n, 3, 32, 32, generator=generator)}
    if tokenizer is not None:
        ids, mask = tokenizer.encode(["NaCl is rock salt.", "Si is diamond.", "GaAs is zinc blende."][:n], 16)
        batch.update(input_ids=ids, attention_mask=mask)
    return batch


@torch.no_grad()
def _same_after_loading(model, batch, folder, **record):
    model.eval()
    before = model(batch)
    config = model.save(folder, **record)
    loaded, read = load_regressor(folder)
    assert read == config and type(loaded) is type(model)
    assert torch.allclose(loaded(batch), before, atol=1e-6)
    return loaded, config


def test_image_regressor_round_trip_and_config(tmp_path):
    torch.manual_seed(0)
    model = ImageRegressor(TINY_IMAGE)
    loaded, config = _same_after_loading(model, _batch(), tmp_path / "m", target="e_form", n_train=7, seed=3)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]
    assert config["format"] == saving.FORMAT and config["architecture"] == "image"
    assert config["specs"]["image"]["kind"] == "tiny_cnn" and (config["target"], config["n_train"]) == ("e_form", 7)
    assert config["weights_sha256"] == saving.sha256(tmp_path / "m" / "weights.safetensors")
    assert config["n_parameters"] == sum(v.numel() for v in model.state_dict().values())
    assert config["provenance"]["image_pretrained"] is False
    assert loaded.provenance()["loaded"] is True
    assert saving.is_saved_model(tmp_path / "m") and not saving.is_saved_model(tmp_path)


def test_stacked_and_clip_round_trip(tmp_path):
    torch.manual_seed(0)
    text = TextRegressor(TINY_TEXT)
    stacked = StackedRegressor(ImageRegressor(TINY_IMAGE), text, dropout=0.2)
    _, config = _same_after_loading(stacked, _batch(text.tokenizer), tmp_path / "stacked")
    assert config["specs"]["dropout"] == 0.2 and config["specs"]["text"]["kind"] == "tiny_roberta"
    clip, tokenizer = clip_regressor(ClipSpec(patch_size=16, image_size=32, width=16, layers=1, projection_dim=8,
                                              max_text_length=16))
    _, config = _same_after_loading(clip, _batch(tokenizer), tmp_path / "clip")
    assert config["architecture"] == "clip" and config["provenance"]["clip_pretrained"] is False


def test_changed_weights_or_foreign_config_are_refused(tmp_path):
    torch.manual_seed(0)
    ImageRegressor(TINY_IMAGE).save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(saving.SavedModelError, match=r"differs from the .* recorded in model\.json"):
        load_regressor(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**config, "format": "pickle"}))
    with pytest.raises(saving.SavedModelError, match="format 'pickle'"):
        load_regressor(tmp_path / "m")
    with pytest.raises(saving.SavedModelError, match=r"no model\.json"):
        load_regressor(tmp_path)
