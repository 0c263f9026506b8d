# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (matmodal)
#     language: python
#     name: matmodal
# ---

# %% [markdown]
# # 07 · massa2024 models: training under the CV + test protocol
# massa2024 §2.2–3: CLIP with one linear regression layer, and the stacked model (image
# regressor → text regressor → both, each head-first then unfrozen), under 5-fold
# cross-validation on 85 % of the rows and a 15 % held-out test set, targets standardised on the
# training rows, several runs. Every score row records which backbones were pretrained, and from where.

# %% tags=["parameters"]
mirror = "../../shared/mirror"  # local mirror directory; "": download from the sources
output_dir = "../outputs"
cache_dir = ""  # "": ~/.cache/matmodal
seed = 0
profile = "quick"  # backbones: quick/full -> offline (random init or bundled MiniLM), paper -> hub names
datasets = ["mp_elastic", "massa_mp_density", "massa_mp_density_any"]  # also: alexandria, massa, density_slices
# massa_mp_density(_any): real MP charge densities paired with verified MP structures (FCC only / any lattice)
targets = {"mp_elastic": ["k_vrh"], "alexandria": ["e_form"], "massa": ["k_vrh"], "density_slices": ["k_vrh"],
           "massa_mp_density": ["e_form", "e_fermi", "k_vrh"], "massa_mp_density_any": ["e_form", "e_fermi", "k_vrh"]}
families = ["clip", "stacked"]  # also: stacked_random, clip_towers, clip_towers_unaligned, clip_towers_random
towers = "finetune"  # stacked model: finetune (backbones unfrozen in the full stage) or frozen (cached features)
tower_clip = {}  # TowerClipSpec fields of the CLIP-style families, e.g. align_epochs, projection_dim
feature_cache = ""  # frozen-tower features file shared by runs ("": in memory only)
text_levels = ["formula"]  # formula, keywords, all: one protocol per level (rows with that text)
formula_text = "symbols"  # the Formula level as in the table ("Si 4 Ru 8") or "words" ("silicon 4 ruthenium 8")
clip_text_level = "all"  # massa2024 CLIP uses "All"; falls back to text_levels[0] when no row has it
folds = 5
runs = 1
head_epochs = 2  # head-only stage (frozen trunk)
full_epochs = 1  # everything unfrozen
batch_size = 32
lr_head = 1e-3
lr_full = 1e-4
patience = 3
log_target = False  # fit standardised log10(target) (moduli); scores back-transformed to the target's unit
readout = {}  # dropout of the readouts; frozen image features: frozen_features (pooled, blocks), flip_views
image_size = 64  # px
small = True  # tiny CLIP towers / CNN (CPU); False: ViT-B CLIP and InceptionV3 (offline: EfficientNet-Lite0)
max_text_length = 24  # tokens
text_layers = 1  # keep the first N layers of the text transformer; 0: all
max_rows = 200  # 0: every row; N: the first N ids (CPU smoke runs)
robocrys_limit = 120  # when a dataset must be built here
trials = []  # massa2024 Table 2 trials to run with CLIP on the first dataset/target, e.g. ["T#1", "T#3"]
device = "cpu"
torch_threads = 2  # torch intra-op threads (0: torch's default)

# %%
import json
import time
from pathlib import Path

import pandas as pd
import torch

import matmodal
from matmodal import provenance
from matmodal.models.torch_common import StageConfig, TrainConfig
from matmodal.protocols import (
    FeatureCache,
    ProtocolConfig,
    clip_trainer,
    level_texts,
    model_specs,
    prepare,
    run_protocol,
    run_study,
    trial_configs,
)

if torch_threads:
    torch.set_num_threads(torch_threads)
settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, cache_dir=cache_dir, seed=seed)
out = layout.massa_scores_dir
out.mkdir(parents=True, exist_ok=True)
specs = model_specs(profile, image_size, small, max_text_length, text_layers or None, seed, tower_clip,
                    settings.cache_dir, readout)
cache_file = Path(feature_cache) if feature_cache else None
features = FeatureCache(init_seed=seed, path=cache_file) if towers == "frozen" else None
train = TrainConfig(stages=(StageConfig("head", head_epochs, lr_head), StageConfig("full", full_epochs, lr_full)),
                    batch_size=batch_size, patience=patience, device=device)
protocol = ProtocolConfig(n_folds=folds, runs=runs, split_seed=seed, seed=seed, log_target=log_target)
specs

# %% [markdown]
# ## Data: the aligned tables (built here when notebook 02/03 has not built them)

# %%
from matmodal.datasets.build import BuildOptions, load
from matmodal.datasets.massa import DENSITY_ANY_NAME, DENSITY_NAME, MassaOptions, density_counts
from matmodal.datasets.registry import build_dataset, spec
from matmodal.modalities.ecd import EcdSettings
from matmodal.protocols import density_slice_table

DENSITY_DATASETS = (DENSITY_NAME, DENSITY_ANY_NAME)


def build_here(name: str):
    """Build a dataset notebook 02/03 has not built: images at ``image_size``, limited robocrys."""
    from matmodal.modalities.image import RenderSettings

    if name in DENSITY_DATASETS:  # robocrys only when a text level beyond the formula is asked for
        options = MassaOptions(ecd=EcdSettings(pixels=image_size, fourier=True), limit=max_rows or None,
                               robocrys=any(level != "formula" for level in text_levels))
    else:
        options = BuildOptions(robocrys=True, robocrys_limit=robocrys_limit or None,
                               image=RenderSettings(size=image_size), n_jobs=settings.n_jobs)
    return build_dataset(name, options=options if spec(name).build_options or name in DENSITY_DATASETS else None,
                         settings=settings)


def dataset_of(name: str):
    """The dataset (table, manifest); built here when missing."""
    try:
        return load(name, settings)
    except FileNotFoundError:
        return build_here(name)


built = {name: dataset_of(name) for name in datasets if name != "density_slices"}
tables = {name: density_slice_table(settings.mirror_dir, layout.dataset_dir("density_slices")) if name == "density_slices"
          else built[name].table for name in datasets}
tables = {n: t.sort_values("material_id").head(max_rows or None) for n, t in tables.items()}
pd.DataFrame({n: {"rows": len(t), **{lvl: int(level_texts(t, lvl).notna().sum()) for lvl in ("formula", "keywords", "all")}}
              for n, t in tables.items()}).T

# %% [markdown]
# The real-density datasets: every MultiMat grid is paired by id with an MP structure and kept only
# when the pairing verifies (electron count within 10 % of MP's PAW valences, and the structure's
# symmetry in the grid's frame); `massa_mp_density` keeps the FCC ones (massa2024's population),
# `massa_mp_density_any` every lattice. Counts read back from each dataset's manifest and table
# (`paired` = a structure was found and checked; `verified` = imaged; `rows` = after IQR cleaning):

# %%
pd.DataFrame({name: density_counts(built[name]) for name in datasets if name in DENSITY_DATASETS}).T

# %% [markdown]
# ## The protocol: one experiment per (dataset, target, text level)
# The stacked model's image stage is refitted for every text level, as in massa2024 (where
# the image-only stage's spread across those refits shows the run-to-run variance).

# %%
start = time.perf_counter()
scores, skipped = run_study(tables, targets, families, text_levels, clip_text_level, specs, train, protocol,
                            features, formula_text=formula_text)
pd.DataFrame(skipped)


def clip_level(table: pd.DataFrame) -> str:
    return clip_text_level if level_texts(table, clip_text_level).notna().sum() > 2 * folds else text_levels[0]


# %% [markdown]
# ## Hyper-parameter trials (massa2024 Table 2) with CLIP

# %%
trial_scores = []
if trials and tables:
    name = next(iter(tables))
    experiment = prepare(tables[name], targets[name][0], [clip_level(tables[name])], dataset=name,
                         formula_text=formula_text)
    for trial in trials:
        config, patch = trial_configs(train)[trial]
        spec = specs.clip.__class__(**{**specs.clip.__dict__, "patch_size": patch})
        frame = run_protocol(experiment, {"clip": clip_trainer(spec, config, clip_level(tables[name]))}, protocol,
                             log=lambda m: None)
        trial_scores.append(frame.assign(trial=trial))
trial_scores = pd.concat(trial_scores, ignore_index=True) if trial_scores else pd.DataFrame()

# %% [markdown]
# ## Save the scores (+ provenance)

# %%
stem = "_".join(datasets)
scores.to_parquet(out / f"scores_{stem}.parquet", index=False)
if len(trial_scores):
    trial_scores.to_parquet(out / f"trials_{stem}.parquet", index=False)
info = provenance.base(settings, notebook="07_massa_training", datasets=datasets, targets=targets,
                       families=families, towers=towers, text_levels=text_levels, formula_text=formula_text,
                       protocol=protocol.__dict__,
                       train=train.as_dict(), specs={k: v.__dict__ for k, v in specs.__dict__.items()},
                       skipped=skipped, wall_s=round(time.perf_counter() - start, 1), torch_threads=torch.get_num_threads())
(out / f"provenance_{stem}.json").write_text(json.dumps(info, indent=1, default=str))
summary = scores[scores.split.isin(["val", "test"])].groupby(
    ["dataset", "target", "family", "stage", "text_level", "split"])[["r2", "rmse"]].mean().round(3)
summary.unstack("split")
