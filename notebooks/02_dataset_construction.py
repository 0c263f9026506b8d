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
# # 02 · Dataset construction
# costa2025 §4.2–4.3: every record becomes one aligned row — targets, text (composition string
# and Robocrystallographer), a rendered structure image, structure embeddings — and every record
# that is dropped or degraded lands in the manifest with the reason.

# %% tags=["parameters"]
mirror = "../../shared/mirror"  # local mirror directory; empty string: download from the sources
datasets = ["alexandria", "mp_elastic"]
alexandria_sample = 0  # 0: all entries; N: seeded reservoir sample (costa2025 used 1000)
mp_summary_sample = 1000  # mp_summary: seeded N-sample of the MP summary rows (costa2025: 1000); 0: all 34,738
robocrys_limit = 0  # 0: describe every structure; N: only the first N by id (about 3 s each)
image_size = 64  # px; 0: no images
featurisers = ["magpie"]  # tabular modality: potnet, chgnet, magpie
seed = 0
n_jobs = 2
output_dir = "../outputs"
cache_dir = ""  # empty: ~/.cache/matmodal
profile = "quick"  # passed by run_all.sh; datasets go to <output_dir>/datasets/<profile>/

# %%
from pathlib import Path

import matmodal
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.registry import build_dataset, spec
from matmodal.schema import IMAGE_PATH, embedding_columns

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, cache_dir=cache_dir,
                                  seed=seed, n_jobs=n_jobs)
image = None
if image_size:
    from matmodal.modalities.image import RenderSettings

    image = RenderSettings(size=image_size)
options = BuildOptions(robocrys=True, robocrys_limit=robocrys_limit or None, image=image,
                       featurisers=tuple(featurisers), n_jobs=n_jobs)

# %%
built = {}
for name in datasets:
    sample = mp_summary_sample if name == "mp_summary" else alexandria_sample or None
    extra = {"sample": sample} if "sample" in spec(name).accepts else {}
    built[name] = d = build_dataset(name, options=options if spec(name).build_options else None,
                                    settings=settings, **extra)
    print(f"{name}: {len(d.table)} rows, {d.table.shape[1]} columns -> {d.folder}")

# %% [markdown]
# Targets a dataset cannot have are stated, not silently missing: `mp_summary` (MP summary data at
# costa2025 scale) has no e_hull, Etot/atom or DOS/atom (listed in its table metadata).

# %%
from matmodal.datasets.extras import table_metadata

for name, d in built.items():
    missing = table_metadata(d.folder / "table.parquet").get("missing_targets")
    if missing:
        print(f"{name} lacks: " + "; ".join(f"{k} ({v})" for k, v in missing.items()))

# %% [markdown]
# ## The manifest: what was dropped or degraded, and why

# %%
import pandas as pd

summary = pd.concat({n: d.manifest.groupby(["stage", "severity"]).size() for n, d in built.items()})
summary.rename("records").to_frame()

# %%
for name, d in built.items():
    dropped = d.manifest[d.manifest.severity == "dropped"]
    print(f"--- {name}: {len(dropped)} dropped")
    print(dropped[["record_id", "stage", "reason"]].head(20).to_string(index=False))

# %% [markdown]
# ## The aligned table

# %%
first = built[datasets[0]].table
first.drop(columns=embedding_columns(first.columns)).head()  # the <featuriser>_NNN columns are hidden

# %% [markdown]
# ## Gallery of rendered structures (like costa2025 Table 1)

# %%
if image_size:
    from matmodal.plots.gallery import gallery

    for name, d in built.items():
        shown = d.table.dropna(subset=[IMAGE_PATH]).head(10)
        fig = gallery([Path(p) for p in shown[IMAGE_PATH]], list(shown.formula), ncols=5)
        fig.suptitle(name)
