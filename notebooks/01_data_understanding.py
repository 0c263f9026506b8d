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
# # 01 · Data understanding
# costa2025 §4.1: what an Alexandria entry holds, and how the targets are distributed.
# The same view for the Materials Project elastic extract (K_VRH, G_VRH, vol/atom).
# Data: Alexandria (CC-BY-4.0, Schmidt et al. 2024); Materials Project (CC-BY-4.0, Jain et al. 2013,
# de Jong et al. 2015).

# %% tags=["parameters"]
mirror = "../../shared/mirror"  # local mirror directory; empty string: download from the sources
source = "alexandria"  # alexandria, mp_elastic or mp_summary (MP summary data, costa2025 scale)
sample_size = 0  # 0: every entry; N: seeded reservoir sample of N entries (mp_summary: 0 means 1000)
seed = 0
output_dir = "../outputs"
profile = "quick"  # passed by run_all.sh (quick, full, paper)

# %%
import json

import matmodal
from matmodal.plots import distributions
from matmodal.records import from_alexandria, from_mp_elastic
from matmodal.sources import alexandria
from matmodal.sources.materials_project import MaterialsProject
from matmodal.targets import COSTA_TARGETS, ELASTIC_TARGETS, TARGETS

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, seed=seed)

# %% [markdown]
# ## The raw schema of one entry
# Every field of the first entry (the structure is summarised); fields missing from some files
# (e.g. `band_gap_dir`, `spg` in the matsciml extract) are derived or reported by `matmodal.records`.

# %%
if source == "alexandria":
    files = [alexandria.fetch(n, settings) for n in alexandria.list_files(settings)]
    entries = (
        [e for _, _, e in alexandria.sample_entries(files, sample_size, seed)]
        if sample_size else [e for _, _, e in alexandria.iter_many(files)]
    )
    first = {k: v for k, v in entries[0].items() if k != "structure"}
    print(json.dumps(first, indent=1)[:2000])
    keys = sorted({k for e in entries for k in e.get("data", {})})
    print("data fields seen in this sample:", keys)
    records = [from_alexandria(e, "sample", i)[0] for i, e in enumerate(entries)]
    targets = COSTA_TARGETS
elif source == "mp_summary":
    from matmodal.datasets import mp_summary

    rows = list(MaterialsProject(settings).summary_rows(sample=sample_size or mp_summary.DEFAULT_SAMPLE, seed=seed))
    print(json.dumps({k: v for k, v in rows[0].items() if k != "cif"}, indent=1))
    records = [mp_summary.from_mp_summary(row, "mp_summary", i)[0] for i, row in enumerate(rows)]
    targets = mp_summary.SUMMARY_TARGETS
    print("costa2025 targets this source lacks:",
          "; ".join(f"{k} ({v})" for k, v in mp_summary.MISSING_TARGETS.items()))
else:
    frame = MaterialsProject(settings).elasticity()
    print(frame.drop(columns=["cif", "structure"]).head())
    records = []
    for i, row in enumerate(frame.to_dict("records")):
        try:
            records.append(from_mp_elastic(row, "mp_elastic", i)[0])
        except ValueError as error:  # the manifest of notebook 02 keeps these with the reason
            print(error)
    targets = ELASTIC_TARGETS

# %% [markdown]
# ## Targets (as the paper defines them)

# %%
import pandas as pd

table = pd.DataFrame(
    [{"formula": r.formula, "nsites": r.nsites, "spg": r.data.get("spg"),
      **{t.value: TARGETS[t].compute(r) for t in targets}} for r in records]
)
for t in targets:
    print(f"{TARGETS[t].label:>10}: {TARGETS[t].definition} [{TARGETS[t].unit}]")
table.describe().T

# %%
distributions.target_distributions(table, [t.value for t in targets])

# %%
distributions.element_frequency(table)

# %%
distributions.structure_overview(table)
