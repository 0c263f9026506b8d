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
# # 05 · Evaluation: Tables 2–5, Figures 1–3, parity, modality attribution
# costa2025 §4.5: MAE, RMSE, MAE/MAD and RMSE/RMSD (plus R²) on the test split, as mean ± sd over
# seeds, with the paper's value and the difference (ours − paper) beside ours wherever the
# paper reports that target. Baseline rows (training mean, gradient boosting on the tabular
# features) show at once whether a multimodal model beats trivial. Note: the paper's numbers are
# for 1,000 Alexandria entries; only `vol_per_atom` is shared with the MP elastic dataset, and
# there the materials differ.

# %% tags=["parameters"]
mirror = ""
output_dir = "../outputs"
figures_dir = ""  # "": paper_figures beside output_dir; tables go to <figures_dir>/costa2025/<profile>/<dataset>/
datasets = ["mp_elastic"]
profile = "quick"  # passed by run_all.sh; which grid: runs are read from <output_dir>/runs/<profile>
runs_dir = ""  # empty: the layout's <output_dir>/runs/<profile>
seed = 0  # unused here

# %%
import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import matmodal
from matmodal.plots.metrics import (
    attribution_plot,
    metric_bars,
    parity_plots,
    save_figure,
    scaled_bars,
)
from matmodal.reporting.costa import (
    attribution_summary,
    best_combinations,
    compare,
    grid_provenance,
    label_spread,
    load_reference,
    metric_table,
    summarise,
    write_tables,
)
from matmodal.runs import attribution_frame, best_predictions, finished_results, timing_table

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, figures_dir=figures_dir,
                                  seed=seed)
runs_root = Path(runs_dir) if runs_dir else layout.runs_root
reference = load_reference()
grids = {name: finished_results(runs_root, name) for name in datasets}  # stops here, writing nothing, before 04

# %% [markdown]
# What each grid is (read from its runs' `result.json`): n_test, seeds, epochs, which backbones
# were pretrained. Every figure below carries these lines as its subtitle. A grid of one seed and
# at most one epoch is a smoke run: outside the quick profile its folder is `<dataset>_smoke`.

# %%
reports = {}
for name, results in grids.items():
    about = grid_provenance(results)
    comparison = compare(summarise(results), reference)
    spread = label_spread(results)  # MAD / RMSD of the test labels: the scaled metrics' denominators
    folder = layout.figures_dir("costa2025", name, smoke=about.smoke)
    write_tables(comparison, folder, spread=spread)
    comparison.to_csv(folder / "summary_long.csv", index=False, float_format="%.6g")
    timing_table(results).to_csv(folder / "timing.csv")
    spread.to_csv(folder / "test_label_spread.csv", float_format="%.6g")
    (folder / "provenance.json").write_text(json.dumps({**asdict(about), "smoke": about.smoke,
                                                        "subtitle": about.lines()}, indent=1))
    reports[name] = {"results": results, "comparison": comparison, "folder": folder, "about": about.lines(),
                     "spread": spread}
    print(f"{name}: {int((results.status == 'ok').sum())} ok / {len(results)} runs -> {folder}")
    print("\n".join(about.lines()))

# %% [markdown]
# ## Tables 2–5 (ours, paper, Δ)

# %%
for name, report in reports.items():
    for metric in ("mae", "rmse", "mae_mad", "rmse_rmsd", "r2"):
        display(Markdown(f"**{name} — {metric}**"))
        display(metric_table(report["comparison"], metric))

# %% [markdown]
# ## Figures 1–3: grouped bars, error bars = sd over seeds (none with one seed), ◆ = costa2025
# Figure 3 shares one axis across targets; a target whose test labels barely vary (tiny MAD) has
# huge scaled errors: its bars are clipped, hatched and labelled with their value, and the
# subtitle names it.

# %%
for report in reports.values():
    comparison, folder, about = report["comparison"], report["folder"], report["about"]
    for number, metric in ((1, "mae"), (2, "rmse")):
        fig = metric_bars(comparison, metric, about=about)
        save_figure(fig, folder, f"figure{number}_{metric}")
        plt.show()
    fig = scaled_bars(comparison, about=about, spread=report["spread"])
    save_figure(fig, folder, "figure3_scaled")
    plt.show()

# %% [markdown]
# ## Parity plots: the best combination (lowest mean MAE) per target, lowest seed

# %%
for name, report in reports.items():
    results, comparison, folder = report["results"], report["comparison"], report["folder"]
    best = best_combinations(comparison, "mae")
    predictions = best_predictions(results, best, runs_root)
    ok = results[results.status == "ok"]
    seed_of = {t: int(ok[(ok.target == t) & (ok.combination == best[t])].seed.min()) for t in predictions}
    if predictions:
        fig = parity_plots(predictions, {t: f"{name}: {best[t]} (seed {seed_of[t]})" for t in predictions},
                           about=report["about"])
        save_figure(fig, folder, "parity_best")
        plt.show()

# %% [markdown]
# ## Modality attribution (beyond the paper)
# For the all-modality model: the change in test error when one modality is removed at test time
# (empty text, missing image → AutoMM's zero image, tabular → training means) or shuffled across
# samples. A large positive Δ means the model relies on that modality.

# %%
for name, report in reports.items():
    folder = report["folder"]
    rows, stats = attribution_summary(attribution_frame(runs_root, dataset=name))
    if len(stats):
        rows.to_csv(folder / "attribution.csv", index=False, float_format="%.6g")
        stats.to_csv(folder / "attribution_summary.csv", float_format="%.6g")
        display(stats)
        save_figure(attribution_plot(rows, about=report["about"]), folder, "attribution")
        plt.show()
