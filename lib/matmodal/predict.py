"""Predict targets for new structures with saved runs (``matmodal predict --model DIR --input FILE``).

``model_dir`` is one run folder (``<runs>/<dataset>/<run_id>/`` with ``result.json`` and
``model/``), the ``model/`` folder itself, or a folder of run folders (every run in it that kept
its model predicts). Inputs: CIF, POSCAR/CONTCAR/``*.vasp``, or JSON holding a pymatgen
``Structure`` dict, an Alexandria/MP entry (``{"structure": ...}``), a list of those, or an
Alexandria dump (``{"entries": [...]}``). The modalities are built as for training: the
costa2025 composition text, the rendered image, the same structure featuriser(s).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from matmodal.models.automm import (
    FALLBACK_TABULAR,
    ID,
    IMAGE_COLUMN,
    MODEL,
    RESULT,
    RunConfig,
    predict_frame,
)
from matmodal.targets import UNITS


def _structures_from_json(data: Any, stem: str) -> Iterator[tuple[str, Structure]]:
    items = data.get("entries", [data]) if isinstance(data, dict) else list(data)
    for i, item in enumerate(items):
        raw = item.get("structure", item)
        meta = item.get("data", {}) if isinstance(item.get("data"), dict) else {}
        name = meta.get("mat_id") or item.get("material_id") or (stem if len(items) == 1 else f"{stem}#{i}")
        yield str(name), Structure.from_dict(raw)


def read_structures(inputs: Sequence[Path]) -> list[tuple[str, Structure, str]]:
    """``(id, structure, file)`` for every structure in the input files."""
    out = []
    for path in map(Path, inputs):
        if path.suffix.lower() == ".json":
            found = _structures_from_json(json.loads(path.read_text()), path.stem)
        else:
            found = iter([(path.stem, Structure.from_file(path))])
        out += [(name, structure, str(path)) for name, structure in found]
    if not out:
        raise ValueError(f"no structure found in {[str(p) for p in inputs]}")
    return out


def run_folders(model_dir: Path) -> list[Path]:
    """The run folders under ``model_dir`` that hold a saved model."""
    model_dir = Path(model_dir)
    if (model_dir / RESULT).exists():
        return [model_dir]
    if model_dir.name == MODEL and (model_dir.parent / RESULT).exists():
        return [model_dir.parent]
    runs = sorted(p.parent for p in model_dir.glob(f"**/{RESULT}") if (p.parent / MODEL).is_dir())
    if not runs:
        raise FileNotFoundError(f"no saved run (result.json + model/) under {model_dir}")
    return runs


def _tabular(columns: list[str], items: list[tuple[str, Structure]], cache_dir: Path | None) -> pd.DataFrame:
    if set(columns) <= set(FALLBACK_TABULAR):
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        from matmodal.records import SYMPREC

        return pd.DataFrame({"nsites": [len(s) for _, s in items],
                             "spg": [SpacegroupAnalyzer(s, symprec=SYMPREC).get_space_group_number() for _, s in items]},
                            index=[i for i, _ in items])[columns]
    from matmodal.modalities.structure import featurise

    frames = [featurise(name, items, cache_dir=cache_dir, progress=False)[0]
              for name in sorted({c.rsplit("_", 1)[0] for c in columns})]
    return pd.concat(frames, axis=1).reindex(index=[i for i, _ in items], columns=columns)


def _image(items: list[tuple[str, Structure]], size: int, folder: Path) -> pd.Series:
    from matmodal.modalities.image import RenderSettings, render_many

    paths, _ = render_many(items, folder, RenderSettings(size=size), n_jobs=1)
    return pd.Series({k: str(Path(v).resolve()) for k, v in paths.items()}, dtype="object")


def modality_frame(items: list[tuple[str, Structure]], columns: dict[str, list[str]], config: RunConfig,
                   work_dir: Path, cache_dir: Path | None = None) -> pd.DataFrame:
    """One row per structure with the columns the run was trained on."""
    from matmodal.modalities.text import composition_text, robocrys_description

    frame = pd.DataFrame({ID: [i for i, _ in items]})
    if "text" in columns:
        if config.text_column == "text_robocrys":
            frame[config.text_column] = [robocrys_description(s, cache_dir=cache_dir)[0] for _, s in items]
        else:
            frame[config.text_column] = [composition_text(s) for _, s in items]
    if "image" in columns:
        frame[IMAGE_COLUMN] = frame[ID].map(_image(items, config.image_size, work_dir / "images"))
    if "tabular" in columns:
        tab = _tabular(columns["tabular"], items, cache_dir)
        frame = frame.join(tab, on=ID)
    return frame


def predict(model_dir: Path, inputs: Sequence[Path], *, work_dir: Path | None = None,
            cache_dir: Path | None = None) -> pd.DataFrame:
    """Predictions, one row per (structure, run): id, input file, target, prediction, unit, run."""
    from autogluon.multimodal import MultiModalPredictor

    from matmodal.config import get_settings

    cache_dir = cache_dir or get_settings().cache_dir
    structures = read_structures(inputs)
    items = [(name, structure) for name, structure, _ in structures]
    rows = []
    for folder in run_folders(Path(model_dir)):
        result = json.loads((folder / RESULT).read_text())
        config = RunConfig.from_dict(result["config"])
        frame = modality_frame(items, result["feature_columns"], config, work_dir or folder / "predict", cache_dir)
        predictor = MultiModalPredictor.load(str(folder / MODEL))
        values = predict_frame(predictor, frame)
        rows += [{ID: name, "input": file, "target": config.target, "prediction": float(v),
                  "unit": UNITS.get(config.target, ""), "run_id": config.run_id}
                 for (name, _, file), v in zip(structures, values, strict=True)]
    return pd.DataFrame(rows)
