"""Saved massa2024 regressors: weights as safetensors (no pickle) + a JSON config, hash-checked.

A model folder holds two files:

* ``weights.safetensors``: the model's ``state_dict`` (tensors only: loading runs no code);
* ``model.json``: ``format``, the ``architecture`` (``image``, ``stacked`` or ``clip``) and the
  backbone specs that rebuild the module, the sha256 of the weight file, and whatever the trainer
  records (target, unit, n_train, seed, pretrained flags, target standardiser, image settings...).

:func:`read_folder` refuses a folder whose weight file does not match the recorded hash, or
whose config is not this format. Rebuilding the module from the specs is the model classes' job
(:func:`matmodal.models.stacked.load_regressor`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from matmodal.sources.download import sha256

FORMAT = "matmodal-regressor/1"
WEIGHTS = "weights.safetensors"
CONFIG = "model.json"


class SavedModelError(ValueError):
    """A saved model folder that is missing, not this format, or whose weights were changed."""


def is_saved_model(folder: Path) -> bool:
    """Whether ``folder`` looks like a saved regressor (has ``model.json`` of this format)."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, AttributeError):
        return False


def write_folder(model: nn.Module, folder: Path, architecture: str, specs: dict[str, Any],
                 record: dict[str, Any]) -> dict[str, Any]:
    """Write ``model``'s weights and config into ``folder``; returns the config written."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # clone: safetensors refuses tensors that share storage (tied weights); each is stored once per key
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    config = {"format": FORMAT, "architecture": architecture, "specs": specs, **record,
              "weights": WEIGHTS, "weights_sha256": sha256(folder / WEIGHTS),
              "n_parameters": int(sum(v.numel() for v in state.values()))}
    (folder / CONFIG).write_text(json.dumps(config, indent=1, default=str))
    return config


def read_config(folder: Path) -> dict[str, Any]:
    """The config of a saved model folder (format checked; weights not read)."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise SavedModelError(f"{folder}: no {CONFIG} (not a saved matmodal regressor)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SavedModelError(f"{path}: invalid JSON ({error})") from error
    if config.get("format") != FORMAT:
        raise SavedModelError(f"{path}: format {config.get('format')!r}, expected {FORMAT!r}")
    return config


def read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The config and the weights of a saved folder, after checking the weight file's sha256."""
    from safetensors.torch import load_file

    config = read_config(folder)
    weights = Path(folder) / config.get("weights", WEIGHTS)
    if not weights.is_file():
        raise SavedModelError(f"{folder}: weight file {weights.name} missing")
    actual = sha256(weights)
    if actual != config.get("weights_sha256"):
        raise SavedModelError(f"{weights}: sha256 {actual[:12]}… differs from the {config.get('weights_sha256', '')[:12]}… "
                              f"recorded in {CONFIG}; refusing weights that are not the ones saved")
    return config, load_file(str(weights))


def save_regressor(model: nn.Module, folder: Path, **record: Any) -> dict[str, Any]:
    """Save a regressor that names its ``architecture`` and ``specs()`` (the massa2024 classes);
    its ``provenance()`` (backbones, pretrained flags, sources) goes into the config with ``record``."""
    provenance = model.provenance() if hasattr(model, "provenance") else {}
    return write_folder(model, folder, model.architecture, model.specs(), {"provenance": provenance, **record})


def restore_provenance(model: nn.Module, provenance: dict[str, Any]) -> None:
    """Put the saved provenance back on a rebuilt model: each sub-model's ``info`` gets the saved
    values of its own keys (a rebuilt model is random-init until its weights load, and says so)."""
    for module in model.modules():
        info = getattr(module, "info", None)
        if isinstance(info, dict):
            module.info = {**info, **{k: provenance[k] for k in info if k in provenance}, "loaded": True}
