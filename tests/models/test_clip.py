"""CLIP + linear regression head: tokenizer guard, output shape, stages, provenance."""

from __future__ import annotations

import pytest
import torch

from matmodal.models.clip import ClipSpec, clip_regressor, clip_tokenizer
from matmodal.models.torch_common import (
    EmptyTokenizerError,
    check_tokenizer,
    load_images,
    set_trainable,
    trainable_names,
)
from matmodal.protocols import density_slice_table as density_table

SMALL = ClipSpec(patch_size=16, image_size=32, width=32, projection_dim=16, max_text_length=16)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def table(mirror_dir, tmp_path_factory):
    return density_table(mirror_dir, tmp_path_factory.mktemp("ecd"), n=8)


def test_offline_hub_tokenizer_is_caught_as_empty():
    from transformers import CLIPTokenizer

    empty = CLIPTokenizer.from_pretrained(ClipSpec().source_name or "openai/clip-vit-base-patch32")
    with pytest.raises(EmptyTokenizerError):
        check_tokenizer(empty, "offline hub")


def test_clip_tokenizer_falls_back_to_bundled_bpe_and_says_why():
    tokenizer, reasons = clip_tokenizer(ClipSpec(checkpoint="hub"))
    assert tokenizer.vocab_size == 49408
    assert "open_clip" in tokenizer.source
    assert reasons and "EmptyTokenizerError" in reasons[0]
    ids, mask = tokenizer.encode(["TiO2 is Rutile structured and crystallizes in the tetragonal P4_2/mnm space group."], 32)
    assert ids.shape == (1, 32)
    assert int(mask.sum()) > 10  # real BPE pieces, not only start/end tokens
    assert ids[0, 0] == 49406 and tokenizer.eos_id in ids[0].tolist()


def test_regression_head_output_shape_and_provenance(table):
    model, tokenizer = clip_regressor(SMALL)
    assert isinstance(model.head, torch.nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (2 * SMALL.projection_dim, 1)
    pixels = load_images(table.image_path.tolist(), SMALL.image_size, (0.5,) * 3, (0.5,) * 3)
    ids, mask = tokenizer.encode(table.text_formula.tolist(), SMALL.max_text_length)
    model.eval()
    out = model({"pixel_values": pixels, "input_ids": ids, "attention_mask": mask})
    assert out.shape == (len(table),)
    assert torch.isfinite(out).all()
    info = model.provenance()
    assert info["clip_pretrained"] is False and info["clip_source"] == "random init"


def test_unloadable_checkpoint_is_recorded_as_random_init(tmp_path):
    model, _ = clip_regressor(ClipSpec(checkpoint=str(tmp_path / "missing"), width=32, image_size=32))
    info = model.provenance()
    assert info["clip_pretrained"] is False
    assert "clip_load_error" in info


def test_stages_train_exactly_the_head_then_everything():
    model, _ = clip_regressor(SMALL)
    assert set_trainable(model, model.stage_modules("head")) == ["head.weight", "head.bias"]
    everything = [n for n, _ in model.named_parameters()]
    assert set_trainable(model, model.stage_modules("full")) == everything
    assert trainable_names(model) == everything
