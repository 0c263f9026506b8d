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
# # 06 · Heat maps (costa2025 Figure 4)
# MAE/MAD (left) and RMSE/RMSD (right) per modality combination × target: ours (mean over
# seeds) and, for the targets the paper reports, costa2025's values drawn the same way.
# Below 1 = better than predicting the mean; the baseline rows are included for reference.

# %% tags=["parameters"]
mirror = ""
output_dir = "../outputs"
figures_dir = ""  # "": paper_figures beside output_dir; figures go to <figures_dir>/costa2025/<profile>/<dataset>/
datasets = ["mp_elastic"]
profile = "quick"  # passed by run_all.sh; which grid: runs are read from <output_dir>/runs/<profile>
runs_dir = ""  # empty: the layout's <output_dir>/runs/<profile>
seed = 0  # unused here

# %%
from pathlib import Path

import matplotlib.pyplot as plt

import matmodal
from matmodal.models.automm import combination_label
from matmodal.plots.metrics import PAPER_ABOUT, heatmaps, save_figure
from matmodal.reporting.costa import (
    compare,
    grid_provenance,
    label_spread,
    load_reference,
    summarise,
)
from matmodal.runs import finished_results

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, figures_dir=figures_dir,
                                  seed=seed)
runs_root = Path(runs_dir) if runs_dir else layout.runs_root
reference = load_reference()
grids = {name: finished_results(runs_root, name) for name in datasets}  # stops here, writing nothing, before 04

# %% [markdown]
# ## Ours

# %%
for name, results in grids.items():
    about = grid_provenance(results)  # subtitle: n_test, seeds, epochs, pretrained backbones
    comparison = compare(summarise(results), reference)
    fig = heatmaps(comparison, about=about.lines(), spread=label_spread(results))
    save_figure(fig, layout.figures_dir("costa2025", name, smoke=about.smoke), "figure4_heatmaps")
    plt.show()

# %% [markdown]
# ## costa2025 (Tables 4–5 as printed)

# %%
paper = reference.rename(columns={"value": "paper"}).assign(label=reference["combination"].map(combination_label))
save_figure(heatmaps(paper, value="paper", about=[PAPER_ABOUT]), layout.study_dir("costa2025"), "figure4_heatmaps_costa2025")
plt.show()
