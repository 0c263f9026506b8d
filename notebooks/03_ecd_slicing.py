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
# # 03 · Electronic charge density slices (massa2024 §2.1)
# A real density is regridded to 60³ (mp-pyrho), turned into a differential density (total minus
# a superposition of model free atoms), cut on the (111) plane through an atom inside an 8×8×8
# supercell, cropped to a square, normalised to [−1, 1] and coloured with viridis. Every stage is
# shown. Then the massa dataset is built from the mirror (images, text levels, manifest).
# Densities: CHGCAR convention (ρ·V_cell) on input, e/Å³ after the differential step.
# Data: Materials Project (CC-BY-4.0) and the test files listed in the mirror README.

# %% tags=["parameters"]
mirror = "../../shared/mirror"  # local mirror directory; "": Materials Project API, needs MP_API_KEY
source = "mp-864620"  # CaSmCd2 (Fm-3m ternary, MP 32³ grid); or a loose mirror density (Si_diamond, Fe3O4, Li_nospin, Li_spin, Fe_spin, H2O) or an MP id
plane = [1, 1, 1]  # Miller indices of the cut, in the basis of the density's cell
supercell = 8  # n for the n×n×n block the square must fit in
grid = 60  # points per axis after regridding
regrid_method = "pyrho"  # "pyrho" (paper) | "fourier" (keeps the electron count) | "none"
normalisation = "paper"  # "paper" (z-score then min-max) | "clip" | "symlog"
pixels = 224  # image edge (px)
build_dataset = True  # build the massa dataset from the mirror
any_lattice = True  # keep non-FCC materials (mirror: 46 of the 177 verified grid/structure pairs are FCC)
robocrys = True  # text levels (robocrys ~5 s per structure, cached)
density_datasets = ["massa_mp_density", "massa_mp_density_any"]  # real MP densities (FCC / any lattice); [] to skip
density_limit = 0  # 0: every density of the source; N: only the first N ids (quick runs)
density_robocrys = False  # text levels for the real-density datasets (~190 structures at ~5 s)
dft = False  # compute a GPAW density of dft_material and compare it with MP's (needs the dft extra: scripts/install.sh --dft)
dft_material = "mp-1002206"  # SiC: a 2-atom FCC cell with a MultiMat (MP) density
dft_cutoff = 250.0  # eV, plane-wave cutoff (MP: 520; the images barely change, docs/dft.md)
dft_kpoint_density = 2.0  # k-points per Å⁻¹ (MP-like: 3.5)
grow_fcc = 0  # full-profile step: GPAW densities for the first N FCC binaries without an MP density (0: off; ~1 min each per core)
grow_workers = 0  # Ray workers for grow_fcc (0: serial)
seed = 0
output_dir = "../outputs"
cache_dir = ""  # "": ~/.cache/matmodal
profile = "quick"  # passed by run_all.sh; the massa dataset goes to <output_dir>/datasets/<profile>/massa

# %%
import matplotlib.pyplot as plt
import numpy as np

import matmodal
from matmodal.modalities.ecd import EcdSettings, density_image, slice_plane
from matmodal.modalities.ecd.pipeline import stage_fields
from matmodal.plots.ecd import extremes_scatter, normalisation_panels, slice_panels
from matmodal.sources.charge_density import MIRROR_DENSITIES, ChargeDensitySource

settings, layout = matmodal.setup(profile=profile, mirror=mirror, output_dir=output_dir, cache_dir=cache_dir, seed=seed)
ecd = EcdSettings(grid=grid, regrid_method=regrid_method, miller=tuple(plane), supercell=supercell,
                  pixels=pixels, normalisation=normalisation, fourier=True)

# %% [markdown]
# ## 1 · Read the density
# Loose mirror files carry their own structure; an MP id comes from the charge-density source
# (the mirror's 32³ grids get their structure from the MP source, or are refused).

# %%
loose = {m.name: m for m in MIRROR_DENSITIES}
aeccars = None
if source in loose:
    loaded = loose[source].load(settings.mirror_dir / "charge_density")
    total = loaded.get("total")
    if "aeccar0" in loaded:
        aeccars = (loaded["aeccar0"], loaded["aeccar2"])
    # not MP calculations: pick all-electron or MP valence counts by the grid's electron count
    ecd = EcdSettings(**{**ecd.describe(), "electrons": "auto", "rescale_counts": True})
else:
    densities = ChargeDensitySource(settings)
    total, aeccars = densities.chgcar(source), densities.aeccars(source)
reference = aeccars[1] if aeccars else total
print(reference.structure.composition.reduced_formula, "grid", reference.dim,
      f"cell {reference.structure.volume:.2f} Å³, grid mean {reference.data['total'].mean():.2f} e")

# %% [markdown]
# ## 2 · Regrid to 60³, differential density, slice through atom 0 in the supercell, square crop

# %%
fields, valence, notes = stage_fields(total, aeccars, ecd)
through = valence.structure.cart_coords[ecd.site]
cuts = {name: slice_plane(field, valence.structure.lattice, ecd.miller, through=through, supercell=supercell,
                          pixels=pixels) for name, field in fields.items()}
side = cuts["differential"].side
result = density_image(total, aeccars=aeccars, settings=ecd)
print(f"method {result.method}, {result.stats}, {notes}")
panels = {f"{k} (e/Å³)": c.values for k, c in cuts.items()}
panels[f"normalised ({normalisation})"] = result.image
panels["Fourier variant"] = result.fourier
fig = slice_panels(panels, side)
plt.show()
print(f"plane {ecd.miller}, d = {cuts['differential'].plane.spacing:.3f} Å, square side {side:.2f} Å")

# %% [markdown]
# ## 3 · Normalisation
# The paper's z-score followed by min–max rescaling equals plain min–max scaling, so the largest
# peaks set the range; robust clipping (±3σ) and symmetric log keep contrast in the bonding region.

# %%
fig = normalisation_panels(cuts["differential"].values, side, k=ecd.clip_k)
plt.show()

# %% [markdown]
# ## 4 · The massa dataset from the mirror
# Stable FCC candidates (space groups 196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228) plus
# the ids the density source holds; every record not in the table is in the manifest.

# %%
if build_dataset:
    from matmodal.datasets.massa import MassaOptions
    from matmodal.datasets.registry import build_dataset

    options = MassaOptions(ecd=EcdSettings(grid=grid, regrid_method=regrid_method, miller=tuple(plane),
                                           supercell=supercell, pixels=pixels, normalisation=normalisation,
                                           fourier=True),
                           fcc_only=not any_lattice, robocrys=robocrys)
    dataset = build_dataset("massa", options=options, settings=settings)
    print(f"{len(dataset.table)} materials -> {dataset.folder}")
    print(dataset.manifest.groupby(["stage", "severity"]).size().to_string())
    display_cols = ["material_id", "formula", "spg", "e_form", "e_fermi", "k_vrh", "rho_min", "rho_max"]
    print(dataset.table[display_cols].to_string(index=False))

# %%
if build_dataset and len(dataset.table):
    from PIL import Image

    rows = dataset.table.head(8)
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.6), squeeze=False)
    for ax, (_, row) in zip(axes[0], rows.iterrows(), strict=True):
        ax.imshow(np.asarray(Image.open(row["ecd_image"])))
        ax.set_title(f"{row['formula']}\n{row['material_id']}", fontsize=8)
        ax.axis("off")
    plt.show()
    if len(dataset.table) >= 4:
        fig = extremes_scatter(dataset.table)
        plt.show()
    print(dataset.table[["material_id", "text_keywords"]].head(3).to_string(index=False))


# %% [markdown]
# ## 5 · massa2024 on real Materials Project charge densities
# Each MultiMat 32³ grid is paired with an MP structure of the mirror by id (mp2018 summary, 2025
# elasticity, older elasticity) and kept only if the grid's electron count (grid mean, CHGCAR
# convention) matches the structure's MP PAW valence electrons within 10 % and the grid has the
# structure's symmetry; refused pairs are in the manifest (stage `pairing`). Two views: FCC only
# (the paper's population) and any lattice (larger; not the paper's population).

# %%
from matmodal.datasets import registry as dataset_registry
from matmodal.datasets.massa import MassaOptions

density_built = {}
for name in density_datasets:
    density_options = MassaOptions(ecd=EcdSettings(grid=grid, regrid_method=regrid_method, miller=tuple(plane),
                                                   supercell=supercell, pixels=pixels, normalisation=normalisation,
                                                   fourier=True),
                                   robocrys=density_robocrys, limit=density_limit or None)
    density_built[name] = d = dataset_registry.build_dataset(name, options=density_options, settings=settings)
    counts = d.manifest[d.manifest.severity == "dropped"]["stage"].value_counts().to_dict()
    print(f"{name}: {len(d.table)} materials imaged -> {d.folder}; dropped by stage: {counts}")
    if len(d.table):
        print(d.table[["material_id", "formula", "spg", "e_form", "e_fermi", "k_vrh", "pairing_origin",
                       "pairing_mismatch", "grid_symmetry"]].head(10).to_string(index=False))


# %% [markdown]
# ## 6 · A density computed from first principles, beside the Materials Project's
# A structure that is not in the Materials Project has no density to download, so the massa2024
# model could not predict for it. `matmodal.modalities.ecd.dft` computes one with GPAW (PBE, plane
# waves) in the same CHGCAR convention (ρ·V_cell), and the same pipeline slices it. Before a model
# trained on MP densities is given such a density, we check how close the two are for a real
# material that has both: the computed density is resampled to the MP grid, and both go through
# regrid → differential density → (111) slice. The differential density of the computed one uses
# GPAW's valence electrons for the promolecule, MP's uses the POTCAR valences.

# %%
from pathlib import Path

from IPython.display import Image as ShowImage
from IPython.display import display

from matmodal.modalities.ecd import dft as ecd_dft

gpaw_ready = dft and ecd_dft.available()
if gpaw_ready:
    reference_density = ChargeDensitySource(settings).chgcar(dft_material)
    dft_settings = ecd_dft.DftSettings(cutoff=dft_cutoff, kpoint_density=dft_kpoint_density)
    print(f"{dft_material} {reference_density.structure.composition.reduced_formula}: GPAW estimate "
          f"~{ecd_dft.estimate_seconds(reference_density.structure, dft_settings):.0f} s on one core (cached after the first run)")
    comparison, comparison_images = ecd_dft.compare_with_mp(reference_density, dft_settings, ecd,
                                                             cache_dir=settings.cache_dir)
    fig = slice_panels({f"MP {k.split()[1]}" if k.startswith("reference") else f"GPAW {k.split()[1]}": v.image
                        for k, v in comparison_images.items()}, comparison_images["ours total"].slice.side, unit="")
    plt.show()
    print(f"{comparison['settings']}: {comparison['wall_s']:.0f} s ({comparison['cache']}); "
          f"electrons per cell GPAW {comparison['ours_e']:.3f} (expected {comparison['ours_expected_e']:g}), "
          f"MP grid {comparison['reference_e']:.3f} (ZVAL {comparison['reference_expected_e']:g}); "
          f"correlation 3D {comparison['corr_3d_total']:.3f}, (111) slice total {comparison['corr_slice_total']:.3f}, "
          f"differential {comparison['corr_slice_diff']:.3f}")
else:
    why = ("the dft parameter is off" if not dft else
           'GPAW is not installed here (pip install -e ".[dft]" or scripts/install.sh --dft)')
    print(f"Not computed in this run because {why}; below is the committed validation figure of "
          f"benchmarks/dft_validation.py for SiC (mp-1002206, PW 520 eV, k-point density 3.5 Å⁻¹).")
    figure = Path(matmodal.__file__).resolve().parents[2] / "docs" / "img" / "dft_mp-1002206_SiC.png"
    if figure.exists():
        display(ShowImage(filename=str(figure)))
    else:
        print("(figure docs/img/dft_mp-1002206_SiC.png not in this installation: see docs/dft.md in the repository)")

# %% [markdown]
# Left to right: the MP total density, the GPAW total density, then the two differential densities
# (total minus promolecule), each on the (111) plane through site 0 of the 8³ supercell, min–max
# normalised as the model sees them. The numbers under the figure are the electrons per cell (grid
# mean) and the Pearson correlations, which min–max scaling does not change, so they are also the
# correlations of the images. For SiC at the coarse quick settings (250 eV, 2 Å⁻¹) docs/dft.md
# records 0.993 (3D), 0.979 (slice) and 0.999 (differential slice), and at MP-like settings
# 0.996 / 0.975 / 0.999, with exactly 8 electrons against MP's 7.90: for this material the computed
# density can stand in for MP's. It cannot for every material: where GPAW's setup has fewer
# valence electrons than MP's POTCAR (GeC: Ge 4 against 14 e), the slices are anti-correlated
# (−0.97), so `matmodal predict` names such elements in its `density_note` column.

# %% [markdown]
# ## 7 · Growing the FCC set with computed densities (full profile, off by default)
# The paper trained on ~600 FCC materials; the mirror has MP densities for 44. The FCC binaries of
# the 2025 elasticity release that have no MP density (327 with at most 2 sites, 197 of them not
# spin-polarised) can get one from GPAW, one calculation per Ray task (`grow_workers`). At MP-like
# settings a 2-atom cell costs ~1 min per core here (21–48 s without spin, ~2 min with), so this
# step runs only when `grow_fcc` > 0. The grown images are cut like the MP ones (GPAW valences for
# the promolecule), and with them a K_VRH image model is trained and saved (`matmodal predict`
# loads it): its training and prediction images then come from the same code.

# %%
if grow_fcc and ecd_dft.available():
    from matmodal.models.stacked import WHEEL, ImageSpec
    from matmodal.models.torch_common import StageConfig, TrainConfig
    from matmodal.parallel import Engine
    from matmodal.protocols.grow import fcc_without_density, grown_table
    from matmodal.protocols.saved import SavedModelPlan, train_and_save

    grow_settings = ecd_dft.DftSettings(cutoff=dft_cutoff, kpoint_density=dft_kpoint_density)
    pool = fcc_without_density(settings, 10_000)
    pool = pool[[not ecd_dft.spin_polarised(s, grow_settings) for s in pool["structure"]]].head(grow_fcc)
    grown_dir = layout.runs_dir("fcc_gpaw")
    grown, grown_provenance = grown_table(pool, grow_settings, ecd, grown_dir / "ecd",
                                          engine=Engine(workers=grow_workers) if grow_workers else None,
                                          cache_dir=settings.cache_dir)
    print(f"{len(grown)} of {len(pool)} densities computed and imaged, {grown.wall_s.sum():.0f} s of GPAW "
          f"(failed: {grown_provenance['failed'] or 'none'})")
    print(grown.drop(columns="ecd_image").head(10).to_string(index=False))
    if len(grown) >= 15:
        plan = SavedModelPlan(ImageSpec("efficientnet_lite0", image_size=224, checkpoint=WHEEL),
                              TrainConfig(stages=(StageConfig("head", 60, 1e-3),), batch_size=16, patience=10),
                              seed=seed, dft=grow_settings)
        saved = train_and_save(grown, "k_vrh", grown_dir / f"ecd-image-k_vrh-efficientnet_lite0-s{seed}", plan,
                               dataset="fcc_gpaw", dataset_provenance=grown_provenance)
        print({split: {k: round(v, 3) for k, v in m.items()} for split, m in saved["metrics"].items()})
else:
    print("grow_fcc is 0 (or GPAW is missing): no densities grown in this run")

# %% [markdown]
# When it runs, the table lists each grown material with its K_VRH (GPa) and the GPAW wall time
# (s), and the last line gives the saved model's R² and MAE on its training, validation and
# held-out test rows. Measured by hand with the same code (`benchmarks/grow_fcc_train.py`: 120
# candidates at 250 eV / 2 Å⁻¹, 119 imaged in 693 s, Tc has no GPAW setup; docs/dft.md): over three
# seeds (each its own 18-material test split) the test MAE was 41 / 28 / 25 GPa against 69 / 62 /
# 51 GPa for predicting the training mean, i.e. about half the error. The K_VRH model trained on
# MP densities of mixed lattices (90 materials) did worse than the mean, so a homogeneous FCC set
# with densities from one code is what this ECD model was missing.
