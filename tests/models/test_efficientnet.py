"""EfficientNet-Lite0 from the PyPI wheel: the weight mapping, an ImageNet sanity check, AutoMM's loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from matmodal.models import efficientnet
from matmodal.models.backbones import lite0_dir, resolve_backbone
from matmodal.models.torch_common import IMAGENET_MEAN, IMAGENET_STD, load_images


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def chelsea(tmp_path_factory):
    """scikit-image's real photo of a cat (``data.chelsea()``), saved as PNG."""
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


def test_mapping_covers_every_wheel_tensor_in_order_and_shape():
    import timm

    source = torch.load(efficientnet.wheel_weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model(efficientnet.TIMM_ARCH, pretrained=False).state_dict()
    mapped = efficientnet.map_state_dict(source, target)
    weights = [k for k in source if not k.endswith("num_batches_tracked")]
    assert len(weights) == 247 and len(source) == len(target) == len(mapped) == 296
    assert set(mapped) == set(target)
    pairs = dict(zip(weights, [k for k in target if not k.endswith("num_batches_tracked")], strict=True))
    assert pairs["_conv_stem.weight"] == "conv_stem.weight" and pairs["_fc.weight"] == "classifier.weight"
    assert all(torch.equal(mapped[t], source[s]) for s, t in pairs.items())
    with pytest.raises(ValueError, match="does not fit"):
        efficientnet.map_state_dict({"a": torch.zeros(2)}, {"b": torch.zeros(3)})


def test_imagenet_sanity_chelsea_is_an_egyptian_cat(chelsea):
    model = efficientnet.load_efficientnet_lite0()
    pixels = load_images([chelsea], 224, IMAGENET_MEAN, IMAGENET_STD, resample=efficientnet.RESAMPLE)
    with torch.no_grad():
        probs = model(pixels).softmax(-1)[0]
    assert int(probs.argmax()) == 285  # ImageNet class 285: Egyptian cat
    assert float(probs[285]) == pytest.approx(0.76, abs=0.05)
    random = efficientnet.load_efficientnet_lite0(pretrained=False, seed=0)
    with torch.no_grad():
        assert float(random(pixels).softmax(-1)[0, 285]) < 0.05  # random init knows no cats


def test_frozen_embeddings_are_deterministic_1280_d(chelsea):
    first = efficientnet.image_embeddings([chelsea, chelsea], size=64, batch_size=1)
    assert first.shape == (2, 1280) and first.dtype == np.float32
    np.testing.assert_array_equal(first[0], first[1])
    np.testing.assert_array_equal(first, efficientnet.image_embeddings([chelsea, chelsea], size=64, batch_size=1))
    batched = efficientnet.image_embeddings([chelsea, chelsea], size=64)  # other kernels, same features
    np.testing.assert_allclose(first, batched, atol=1e-4)


def test_offline_image_backbone_is_the_pretrained_lite0_folder_automm_loads(tmp_path, chelsea):
    from autogluon.multimodal.models.timm_image import TimmAutoModelForImagePrediction

    image = resolve_backbone("image", "quick", cache_dir=tmp_path)
    assert image.pretrained and image.source.startswith("EfficientNet-Lite0, ImageNet-pretrained")
    assert image.path == lite0_dir(tmp_path / "backbones" / "timm")
    assert image.path.name == f"tf_efficientnet_lite0-wheel{efficientnet.wheel_version()}"
    assert json.loads((image.path / "config.json").read_text())["matmodal"]["pretrained"] is True
    inception = resolve_backbone("inception", "full", cache_dir=tmp_path)
    assert inception.path == image.path and "substitute for InceptionV3" in inception.source
    control = resolve_backbone("image", "quick", cache_dir=tmp_path, seed=2, pretrained=False)
    assert not control.pretrained and "random init (seed 2)" in control.source

    automm = TimmAutoModelForImagePrediction(prefix="timm_image", checkpoint_name=image.checkpoint, num_classes=1)
    assert automm.out_features == 1280
    ours = efficientnet.load_efficientnet_lite0(num_classes=0)
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in automm.model.state_dict().items())
