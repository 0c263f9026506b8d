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
figures_dir = "../paper_figures/costa2025"  # figures go to <figures_dir>/<profile>/<dataset>/
datasets = ["mp_elastic"]
profile = "quick"  # which grid: runs are read from <output_dir>/runs/<profile>
runs_dir = ""  # empty: <output_dir>/runs/<profile>
seed = 0  # unused here

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from matmodal.evaluation import compare, load_reference, summarise
from matmodal.models.automm import combination_label
from matmodal.plots.metrics import heatmaps, save_figure
from matmodal.runs import results_frame

runs_root = Path(runs_dir) if runs_dir else Path(output_dir) / "runs" / profile
reference = load_reference()

# %% [markdown]
# ## Ours

# %%
for name in datasets:
    comparison = compare(summarise(results_frame(runs_root, dataset=name)), reference)
    save_figure(heatmaps(comparison), Path(figures_dir) / profile / name, "figure4_heatmaps")
    plt.show()

# %% [markdown]
# ## costa2025 (Tables 4–5 as printed)

# %%
paper = reference.rename(columns={"value": "paper"}).assign(label=reference["combination"].map(combination_label))
save_figure(heatmaps(paper, value="paper"), Path(figures_dir), "figure4_heatmaps_costa2025")
plt.show()
