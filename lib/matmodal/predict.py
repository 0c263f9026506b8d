"""Predict targets for new structures with saved runs (``matmodal predict --model DIR --input FILE``).

``model_dir`` is one run folder (``<runs>/<profile>/<dataset>/<run_id>/`` with ``result.json`` and
``model/``), the ``model/`` folder itself, or a folder of run folders (every run in it that kept
its model predicts).

Inputs: structure files or folders in every layout :mod:`matmodal.sources.structure_files`
reads (CIF, POSCAR, pymatgen/Alexandria/MP JSON, the project's MP extract). Every structure passes
the same checks as training (:func:`matmodal.records.check_structure`). A file or entry that cannot
be read or checked is skipped with its name and reason (:class:`Skipped`); the rest are predicted.
Structures are keyed internally by position, so two inputs with the same file stem both predict.

**No train/serve skew**: the modalities are rebuilt from the dataset's own ``provenance.json``
(the render settings the images were drawn with, each featuriser with the seed and settings the
dataset recorded, refused when the featuriser's settings no longer match); only the composition
text, robocrys text and ``nsites``/``spg`` need nothing recorded.

**Model folders must be trusted**: loading an AutoGluon predictor unpickles its files, which can
run arbitrary code. ``predict`` therefore refuses a ``model/`` folder whose files do not match the
sha256 hashes recorded in the run's ``result.json`` (``model_files``, written when the run
finished). Runs trained before hashes were recorded are refused too, unless
``trust_unverified=True`` (``--trust-unverified``): only for folders you made yourself.

Every prediction row states the model's provenance (run id, family, epochs, whether each
backbone was pretrained, profile, dataset, seed, n_train, the featurisers of its tabular
columns), so a one-epoch smoke model is not mistaken for a real one. GBM runs predict too: their
``model/`` holds a skops file (no pickle; :func:`matmodal.models.baselines.load_gbm`), hashed in
``result.json`` like an AutoMM folder.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pymatgen.core import Structure

from matmodal.datasets.build import PROVENANCE
from matmodal.models.automm import (
    FALLBACK_TABULAR,
    ID,
    IMAGE_COLUMN,
    MODEL,
    RESULT,
    RunConfig,
    TargetTransform,
    cached_tower_inputs,
    load_projection,
    predict_frame,
)
from matmodal.models.baselines import BASELINES
from matmodal.models.saving import is_saved_model
from matmodal.schema import ECD_IMAGE
from matmodal.sources import structure_files
from matmodal.sources.download import tree_sha256
from matmodal.targets import UNITS

if TYPE_CHECKING:
    from matmodal.config import Settings
    from matmodal.modalities.image import RenderSettings


class ModelTrustError(ValueError):
    """A model folder's files are not the ones its run recorded (or no hashes were recorded)."""


@dataclass(frozen=True)
class Skipped:
    """An input (file, or ``file#index`` entry) left out, with the reason."""

    input: str
    reason: str

    def line(self) -> str:
        return f"skipped {self.input}: {self.reason}"


@dataclass(frozen=True)
class InputStructure:
    """One structure to predict: internal ``key`` (unique), its ``name`` and source ``file``."""

    key: str
    name: str
    file: str
    structure: Structure


@dataclass
class Predictions:
    """Prediction rows (one per structure and run) and the inputs that were skipped."""

    frame: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)


# ---------------------------------------------------------------------------- reading inputs


def read_structures(inputs: Sequence[Path]) -> tuple[list[InputStructure], list[Skipped]]:
    """Every checked structure in the input files (folders: the structure files in them), and
    what was skipped (file or ``file#i`` entry, with the reason)."""
    from matmodal.manifest import RecordError
    from matmodal.records import check_structure

    found: list[InputStructure] = []
    skipped: list[Skipped] = []
    for path in structure_files.expand(inputs):
        try:
            entries = list(structure_files.file_structures(path))
        except Exception as error:  # unreadable file: name it, go on with the others
            skipped.append(Skipped(str(path), structure_files.reason(error)))
            continue
        for label, name, structure in entries:
            try:
                if isinstance(structure, Exception):
                    raise structure
                check_structure(name, structure)
            except RecordError as error:
                skipped.append(Skipped(label, error.reason))
                continue
            except Exception as error:
                skipped.append(Skipped(label, structure_files.reason(error)))
                continue
            found.append(InputStructure(f"s{len(found):06d}", name, str(path), structure))
    return found, skipped


# ---------------------------------------------------------------------------- run folders and trust


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


def verify_model_files(run_dir: Path, result: dict[str, Any], *, trust_unverified: bool = False) -> None:
    """Refuse ``run_dir/model`` unless its files are exactly those hashed in ``result.json``."""
    model = run_dir / MODEL
    if not model.is_dir():
        raise FileNotFoundError(f"{run_dir}: the run kept no model/ folder (trained with keep_models='none'?)")
    recorded = result.get("model_files")
    if not recorded:
        if trust_unverified:
            return
        raise ModelTrustError(
            f"{run_dir}: result.json records no model file hashes (run trained before they were recorded); "
            "loading unpickles AutoGluon files, so it is refused: retrain, or pass --trust-unverified "
            "for a folder you made yourself")
    actual = tree_sha256(model)
    changed = sorted(k for k in recorded.keys() & actual.keys() if recorded[k] != actual[k])
    missing, extra = sorted(recorded.keys() - actual.keys()), sorted(actual.keys() - recorded.keys())
    if changed or missing or extra:
        detail = "; ".join(f"{what}: {', '.join(names[:5])}" for what, names in
                           (("changed", changed), ("missing", missing), ("not recorded", extra)) if names)
        raise ModelTrustError(f"{model}: files differ from the hashes in {run_dir / RESULT} ({detail}); "
                              "refusing to unpickle a model folder that is not the one the run saved")


def model_provenance(result: dict[str, Any]) -> dict[str, Any]:
    """What a prediction row says about its model: run, family, epochs, pretrained backbones, ..."""
    config = result.get("config", {})
    pretrained = result.get("pretrained") or {}
    run_provenance = result.get("provenance") or {}
    return {
        "run_id": result.get("run_id", ""), "model": config.get("model", ""),
        "epochs": None if config.get("model") in BASELINES else config.get("epochs"),  # none for mean / GBM
        "iterations": (result.get("hyperparameters") or {}).get("n_iter"),  # boosting rounds of a GBM
        "pretrained": ",".join(f"{k}={v}" for k, v in sorted(pretrained.items())) or "none",
        "backbone_profile": config.get("backbone_profile", ""),
        "profile": config.get("profile") or run_provenance.get("profile", ""),
        "dataset": config.get("dataset", ""), "seed": config.get("seed"), "n_train": result.get("n_train"),
        "features": "+".join(config.get("features") or []) or "all built",
        "code_version": run_provenance.get("code_version", ""),
    }


# ---------------------------------------------------------------------------- modalities as built


@dataclass(frozen=True)
class ModalityRecipe:
    """How the training dataset built its modalities (from its ``provenance.json``)."""

    source: str  # the provenance file read
    seed: int
    render: RenderSettings | None
    featurisers: dict[str, dict[str, Any]]  # name -> the featuriser's recorded provenance
    units: dict[str, str] = field(default_factory=dict)  # a custom dataset's target units
    ecd: dict[str, Any] | None = None  # the ECD image settings (massa datasets)

    @classmethod
    def from_provenance(cls, info: dict[str, Any], source: str) -> ModalityRecipe:
        modalities = info.get("modalities") or {}
        image = modalities.get("image")
        featurisers = {k.split(":", 1)[1]: v for k, v in modalities.items() if k.startswith("featuriser:")}
        return cls(source, int(info.get("seed") or 0), render_settings(image, source) if image else None,
                   featurisers, dict(info.get("custom_targets") or {}), info.get("ecd"))

    def featuriser_seed(self, name: str) -> int:
        return int(self.featurisers.get(name, {}).get("seed", self.seed))


def render_settings(recorded: str | dict[str, Any], source: str = "provenance") -> RenderSettings:
    """The ``RenderSettings`` a dataset recorded: a dict of fields, or its ``repr`` (literals only)."""
    from matmodal.modalities.image import RenderSettings

    if isinstance(recorded, dict):
        fields = recorded
    else:
        try:
            call = ast.parse(recorded, mode="eval").body
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "RenderSettings"):
                raise ValueError("not a RenderSettings(...) call")
            fields = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as error:
            raise ValueError(f"{source}: cannot read the recorded image settings {recorded[:80]!r}: {error}") from error
    known = RenderSettings.__dataclass_fields__
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"{source}: recorded image settings have fields this renderer lacks: {unknown}")
    return RenderSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _candidates(run_dir: Path, config: RunConfig, settings: Settings) -> list[Path]:
    from matmodal.layout import Layout

    found = []
    if len(run_dir.parents) > 3 and run_dir.parents[2].name == "runs":  # <output>/runs/<profile>/<dataset>/<run>
        output = run_dir.parents[3]
        found.append(Layout(output, settings.figures_dir, config.profile).dataset_dir(config.dataset))
    found.append(Layout(settings.output_dir, settings.figures_dir, config.profile).dataset_dir(config.dataset))
    return list(dict.fromkeys(found))


def dataset_recipe(run_dir: Path, result: dict[str, Any], config: RunConfig, settings: Settings,
                   dataset_dir: Path | None = None) -> ModalityRecipe:
    """The modality recipe of the dataset the run trained on: ``dataset_dir`` if given, else the
    provenance embedded in ``result.json`` (``dataset_provenance``), else the dataset folder of the
    run's layout (``<output>/datasets/<profile>/<dataset>``)."""
    if dataset_dir is None and isinstance(result.get("dataset_provenance"), dict):
        return ModalityRecipe.from_provenance(result["dataset_provenance"], f"{run_dir / RESULT}")
    folders = [Path(dataset_dir)] if dataset_dir is not None else _candidates(run_dir, config, settings)
    for folder in folders:
        path = folder / PROVENANCE if folder.is_dir() else folder
        if path.is_file():
            try:
                return ModalityRecipe.from_provenance(json.loads(path.read_text()), str(path))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: invalid JSON ({error}); rebuild dataset {config.dataset!r}") from error
    raise FileNotFoundError(
        f"run {config.run_id}: no provenance.json of dataset {config.dataset!r} "
        f"(looked in {', '.join(str(f) for f in folders)}); its modalities cannot be rebuilt as trained: "
        "pass the dataset folder (--dataset DIR)")


def _image_column(items: list[tuple[str, Structure]], recipe: ModalityRecipe, folder: Path,
                  skipped: dict[str, str]) -> pd.Series:
    from matmodal.modalities.image import render_many

    if recipe.render is None:
        raise ValueError(f"{recipe.source}: the dataset recorded no image settings, but the run uses images")
    paths, issues = render_many(items, folder, recipe.render, n_jobs=1, progress=False)
    for issue in issues:
        if issue.record_id not in paths:
            skipped.setdefault(issue.record_id, f"image: {issue.reason}")
    return pd.Series({k: str(Path(v).resolve()) for k, v in paths.items()}, dtype="object")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _embeddings(name: str, items: list[tuple[str, Structure]], recipe: ModalityRecipe, cache_dir: Path | None,
                skipped: dict[str, str]) -> pd.DataFrame:
    from matmodal.modalities.structure import featurise

    recorded = recipe.featurisers.get(name)
    if recorded is None:
        raise ValueError(f"{recipe.source}: the dataset recorded no featuriser {name!r}, but the run uses its columns")
    if recorded.get("mode", "frozen") != "frozen":
        raise ValueError(f"{recipe.source}: featuriser {name!r} was {recorded['mode']!r} on the training targets; "
                         "only frozen featurisers can be rebuilt for new structures")
    frame, issues = featurise(name, items, cache_dir=cache_dir, progress=False, seed=recipe.featuriser_seed(name))
    now = frame.attrs.get("provenance", {}).get("settings")
    if "settings" in recorded and not _same(now, recorded["settings"]):
        raise ValueError(f"featuriser {name!r} settings differ from those dataset {recipe.source} was built with "
                         f"(recorded {recorded['settings']}, now {now}): predictions would be skewed")
    for issue in issues:
        skipped.setdefault(issue.record_id, f"{issue.stage}: {issue.reason}")
    return frame


def _tabular(columns: list[str], items: list[tuple[str, Structure]], recipe: ModalityRecipe,
             cache_dir: Path | None, skipped: dict[str, str]) -> pd.DataFrame:
    keys = [k for k, _ in items]
    if set(columns) <= set(FALLBACK_TABULAR):
        from matmodal.symmetry import spacegroup_number

        return pd.DataFrame({"nsites": [len(s) for _, s in items], "spg": [spacegroup_number(s) for _, s in items]},
                            index=keys)[columns]
    names = sorted({c.rsplit("_", 1)[0] for c in columns})
    frames = [_embeddings(name, items, recipe, cache_dir, skipped) for name in names]
    return pd.concat(frames, axis=1).reindex(index=keys, columns=columns)


def modality_frame(items: list[tuple[str, Structure]], columns: dict[str, list[str]], config: RunConfig,
                   recipe: ModalityRecipe, work_dir: Path, cache_dir: Path | None = None,
                   ) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per structure (keyed by ``items``' keys) with the columns the run was trained on,
    built as the dataset built them; and ``{key: reason}`` for structures a modality failed on."""
    from matmodal.modalities.text import composition_text, robocrys_many

    skipped: dict[str, str] = {}
    frame = pd.DataFrame({ID: [k for k, _ in items]})
    if "text" in columns:
        if config.text_column == "text_robocrys":
            text_cache = None if cache_dir is None else Path(cache_dir) / "text"
            texts = robocrys_many([s for _, s in items], cache_dir=text_cache, progress=False)
            frame[config.text_column] = [text for text, _ in texts]
        else:
            frame[config.text_column] = [composition_text(s.composition) for _, s in items]
    if columns.get("image") == [ECD_IMAGE]:  # no density for a new structure: computed with GPAW (dft extra)
        from matmodal.modalities.ecd.dft import ecd_column

        frame[ECD_IMAGE] = frame[ID].map(ecd_column(items, recipe.ecd, work_dir / "ecd", cache_dir, skipped,
                                                     recipe.source))
    elif "image" in columns:
        frame[IMAGE_COLUMN] = frame[ID].map(_image_column(items, recipe, work_dir / "images", skipped))
    if "tabular" in columns:
        frame = frame.join(_tabular(columns["tabular"], items, recipe, cache_dir, skipped), on=ID)
    return frame[~frame[ID].isin(skipped)].reset_index(drop=True), skipped


# ---------------------------------------------------------------------------- predict


def _load_predictor(folder: Path, config: RunConfig) -> Any:
    if config.model == "gbm":  # skops file, no pickle (matmodal.models.baselines.load_gbm)
        from matmodal.models.baselines import load_gbm

        return load_gbm(folder / MODEL)
    if config.model != "automm":
        raise ValueError(f"run {config.run_id}: predicting with {config.model!r} runs is not supported "
                         "(only AutoMM and GBM runs save a loadable model)")
    from autogluon.multimodal import MultiModalPredictor

    return MultiModalPredictor.load(str(folder / MODEL))


def predict(model_dir: Path, inputs: Sequence[Path], *, dataset_dir: Path | None = None,
            work_dir: Path | None = None, settings: Settings | None = None,
            trust_unverified: bool = False) -> Predictions:
    """Predictions, one row per (structure, run): id, input file, target, prediction, unit and the
    model's provenance (:func:`model_provenance`); plus what was skipped.

    Raises when no input structure could be read, or a run's model or dataset provenance is
    refused (:class:`ModelTrustError`, missing ``provenance.json``, featuriser skew).
    """
    from matmodal.config import get_settings

    settings = settings or get_settings()
    structures, skipped = read_structures(inputs)
    if not structures:
        detail = "; ".join(s.line() for s in skipped[:5])
        raise ValueError(f"no readable structure in {[str(p) for p in inputs]}: {detail}")
    by_key = {s.key: s for s in structures}
    if is_saved_model(Path(model_dir)):  # a saved massa2024 ECD regressor: densities computed with GPAW
        return saved_model_predictions(Path(model_dir), structures, skipped, work_dir, settings)
    items = [(s.key, s.structure) for s in structures]
    rows, failed = [], {}
    with tempfile.TemporaryDirectory(prefix="matmodal-predict-") as scratch:
        for folder in run_folders(Path(model_dir)):
            result = json.loads((folder / RESULT).read_text())
            config = RunConfig.from_dict(result["config"])
            verify_model_files(folder, result, trust_unverified=trust_unverified)
            recipe = dataset_recipe(folder, result, config, settings, dataset_dir)
            frame, dropped = modality_frame(items, result["feature_columns"], config, recipe,
                                            Path(work_dir or scratch) / config.run_id, settings.cache_dir)
            failed.update({k: f"{config.run_id}: {why}" for k, why in dropped.items()})
            if frame.empty:
                continue
            frame, _ = cached_tower_inputs(frame, config, settings.cache_dir, load_projection(folder / MODEL))
            values = predict_frame(_load_predictor(folder, config), frame, TargetTransform(config.target_transform))
            about = model_provenance(result)
            rows += [{ID: by_key[key].name, "input": by_key[key].file, "target": config.target,
                      "prediction": float(v), "unit": recipe.units.get(config.target) or UNITS.get(config.target, ""),
                      **about}
                     for key, v in zip(frame[ID], values, strict=True)]
    skipped += [Skipped(f"{by_key[k].file} ({by_key[k].name})", reason) for k, reason in failed.items()]
    return Predictions(pd.DataFrame(rows), skipped)


# ---------------------------------------------------------------------------- saved massa2024 regressors


def saved_model_provenance(config: dict[str, Any]) -> dict[str, Any]:
    """What a prediction row says about a saved regressor (:mod:`matmodal.models.saving`): the
    same fields as :func:`model_provenance`, plus the backbone and its test score."""
    about = config.get("provenance") or {}
    pretrained = {k.removesuffix("_pretrained"): v for k, v in about.items() if k.endswith("_pretrained")}
    test = (config.get("metrics") or {}).get("test") or {}
    return {
        "run_id": Path(str(config.get("name", ""))).name, "model": f"{config.get('family', '')}:{config.get('stage', '')}",
        "epochs": "+".join(str(h.get("epochs")) for h in config.get("history", [])),
        "pretrained": ",".join(f"{k}={v}" for k, v in sorted(pretrained.items())) or "none",
        "backbone": about.get("image_source", about.get("image_backbone", "")),
        "profile": (config.get("dataset_provenance") or {}).get("profile", ""), "dataset": config.get("dataset", ""),
        "seed": config.get("seed"), "n_train": config.get("n_train"), "test_r2": test.get("r2"),
        "code_version": config.get("code_version", ""), "weights_sha256": config.get("weights_sha256", "")[:16],
    }


def _density_notes(structures: list[InputStructure]) -> dict[str, str]:
    """Per structure, the elements whose GPAW valence differs from MP's (the model saw MP densities)."""
    from matmodal.modalities.ecd.dft import valence_mismatch

    notes = {}
    for s in structures:
        try:
            differ = valence_mismatch(s.structure)
        except KeyError:  # no setup: the density step reports it
            continue
        notes[s.key] = "; ".join(f"{el}: GPAW {a:g} e vs MP {b:g} e" for el, (a, b) in sorted(differ.items()))
    return notes


def saved_model_values(model: Any, config: dict[str, Any], images: Sequence[str | Path]) -> Any:
    """Predictions (target units) of a loaded ECD-image regressor for PNG files, resized and
    normalised as in training (the config's ``inputs.image``) and de-standardised."""
    from matmodal.models.torch_common import load_images
    from matmodal.models.torch_common import predict as torch_predict

    image = config["inputs"]["image"]
    pixels = load_images([str(p) for p in images], image["size"], image["mean"], image["std"],
                         image.get("resample", "bilinear"))
    standard = torch_predict(model, {"pixel_values": pixels}, list(range(len(images))))
    return standard * config["standardiser"]["std"] + config["standardiser"]["mean"]


def saved_model_predictions(folder: Path, structures: list[InputStructure], skipped: list[Skipped],
                            work_dir: Path | None, settings: Settings, dft: Any = None) -> Predictions:
    """Predictions of a saved ECD-image regressor: each structure's density is computed with GPAW
    (``dft``, default the settings the model recorded; cached; a time estimate goes to stderr
    first), resampled to the grid of the training densities (``density_grid``), cut into the
    (111) image with the ECD settings of the training dataset, resized and
    normalised as in training, and predicted; rows carry the model's provenance and a
    ``density_note`` naming elements whose GPAW valence differs from MP's (out of the training
    distribution)."""
    from matmodal.modalities.ecd.dft import (
        DftSettings,
        DftUnavailableError,
        ecd_images_for,
        recorded_ecd_settings,
    )
    from matmodal.models.stacked import load_regressor

    model, config = load_regressor(folder)
    image = (config.get("inputs") or {}).get("image") or {}
    if config["architecture"] != "image" or image.get("column") != ECD_IMAGE:
        raise ValueError(f"{folder}: predicting is supported for ECD-image regressors only "
                         f"(this one: {config['architecture']}, inputs {sorted(config.get('inputs') or {})})")
    dft = dft or DftSettings(**config["dft"])
    config = {**config, "name": str(folder)}
    names = [s.name for s in structures]  # stderr names the structures (keys when two share a name)
    label = {s.key: s.name if names.count(s.name) == 1 else s.key for s in structures}
    rows = []
    with tempfile.TemporaryDirectory(prefix="matmodal-predict-") as scratch:
        try:
            paths, failed = ecd_images_for([(label[s.key], s.structure) for s in structures],
                                           Path(work_dir or scratch) / "ecd",
                                           recorded_ecd_settings(config["ecd"], str(folder)), dft,
                                           cache_dir=settings.cache_dir, grid=config.get("density_grid"))
        except DftUnavailableError as error:  # the dft extra is missing: one clear line from the CLI
            raise ValueError(f"{folder} predicts from charge densities computed here: {error}") from error
        key_of = {v: k for k, v in label.items()}
        paths, failed = {key_of[k]: v for k, v in paths.items()}, {key_of[k]: v for k, v in failed.items()}
        done = [s for s in structures if s.key in paths]
        if done:
            values = saved_model_values(model, config, [paths[s.key] for s in done])
            notes, about = _density_notes(done), saved_model_provenance(config)
            density = f"GPAW {dft.xc} {dft.mode} {dft.cutoff:g} eV, k {dft.kpoint_density:g}/Å (computed)"
            rows = [{ID: s.name, "input": s.file, "target": config["target"], "prediction": float(v),
                     "unit": config.get("unit", ""), "density": density, "density_note": notes.get(s.key, ""),
                     **about} for s, v in zip(done, values, strict=True)]
    by_key = {s.key: s for s in structures}
    skipped = [*skipped, *(Skipped(f"{by_key[k].file} ({by_key[k].name})", why) for k, why in failed.items())]
    return Predictions(pd.DataFrame(rows), skipped)
