"""massa2024 dataset (§2.1): stable FCC crystals of the Materials Project with formation energy,
Fermi energy and bulk modulus, a differential charge-density (111) image and three
Robocrystallographer text levels.

FCC rule: a structure is FCC when its space group (spglib, symprec 0.1 Å) is one of the 11
cubic groups with an F-centred lattice: 196 F23, 202 Fm-3, 203 Fd-3, 209 F432, 210 F4_132,
216 F-43m, 219 F-43c, 225 Fm-3m, 226 Fm-3c, 227 Fd-3m, 228 Fd-3c. The MP query asks for
exactly these space groups; records from other paths are checked on their structure.

One code path online and offline: candidates are the MP summary rows (query) plus the ids the
charge-density source already holds (the mirror's npz); structures, targets and densities come
through :class:`MaterialsProject` and :class:`ChargeDensitySource`, which read the mirror when
``mirror_dir`` is set and the API otherwise. Every record that is not in the table is in the
manifest with its stage and reason.

``outputs/datasets/massa/``: ``table.parquet`` (material_id, e_form [eV/atom], e_fermi [eV],
k_vrh [GPa], text_formula/text_keywords/text_all, ecd_image, rho_min/rho_max [e/Å^3], ...),
``ecd/<id>.png`` (and ``<id>_fft.png``), ``manifest.parquet``, ``provenance.json``.

Data: Materials Project, CC-BY-4.0 (Jain et al. 2013; elastic constants de Jong et al. 2015).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pymatgen.core import Structure
from pymatgen.io.vasp import Chgcar, Poscar
from tqdm.auto import tqdm

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import TABLE, BuildOptions, Dataset, arrow_with_units, build
from matmodal.datasets.elastic import RELEASE_2025, RELEASE_OLD, release_moduli
from matmodal.datasets.quality import checked, untrusted_moduli
from matmodal.datasets.scale import robocrys_on_ray
from matmodal.manifest import Issue, Severity
from matmodal.modalities.ecd import EcdError, EcdSettings, density_image, iqr_outliers, write_images
from matmodal.modalities.robocrys_levels import COLUMNS as TEXT_COLUMNS
from matmodal.modalities.robocrys_levels import text_levels
from matmodal.parallel import Engine, parallel_map
from matmodal.paths import safe_name
from matmodal.records import MaterialRecord, vrh_moduli
from matmodal.sources.charge_density import (
    COUNT_TOLERANCE,
    MULTIMAT_FILE,
    ChargeDensitySource,
    DensityMismatchError,
)
from matmodal.sources.materials_project import (
    ELASTIC_2025_FILE,
    ELASTIC_FILE,
    SUMMARY_2018_FILE,
    MaterialsProject,
)
from matmodal.sources.mirror import MissingDataError
from matmodal.symmetry import spacegroup_number  # spglib at matmodal.symmetry.SYMPREC
from matmodal.targets import TargetName

NAME = "massa"
DENSITY_NAME = "massa_mp_density"  # real MP densities, FCC only
DENSITY_ANY_NAME = "massa_mp_density_any"  # real MP densities, any lattice
LICENCE = "CC-BY-4.0 (Jain et al. 2013; de Jong et al. 2015)"
FCC_SPACEGROUPS: tuple[int, ...] = (196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228)
MASSA_TARGETS: tuple[TargetName, ...] = (TargetName.e_form, TargetName.e_fermi, TargetName.k_vrh)
IQR_COLUMNS = ("rho_max", "rho_min")


@dataclass(frozen=True)
class MassaOptions:
    """What to build: paper defaults (stable FCC, IQR k = 1.5, ECD settings of §2.1)."""

    ecd: EcdSettings = field(default_factory=EcdSettings)
    fcc_only: bool = True
    stable_only: bool = True
    iqr_k: float | None = 1.5  # None: no IQR cleaning
    robocrys: bool = True
    limit: int | None = None  # only the first N candidates by id (quick runs)
    engine: Engine | None = None  # Ray address / workers for ECD slicing and robocrys (None: Engine.from_env())


def is_fcc(structure: Structure) -> bool:
    """Cubic with an F-centred Bravais lattice (space group in :data:`FCC_SPACEGROUPS`)."""
    return spacegroup_number(structure) in FCC_SPACEGROUPS


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


# -- candidates ------------------------------------------------------------------------------
def candidates(
    mp: MaterialsProject, densities: ChargeDensitySource, material_ids: Sequence[str] | None, options: MassaOptions
) -> pd.DataFrame:
    """One row per candidate id: summary fields (when the summary source has the id), the
    density source's side columns (``cat_k_vrh``, ``cat_efermi``) and an elasticity k_vrh."""
    summary = mp.summary(
        material_ids, spacegroup_numbers=FCC_SPACEGROUPS if options.fcc_only else None,
        is_stable=True if options.stable_only else None,
    )
    catalogue = densities.catalogue()
    if material_ids is not None:
        catalogue = catalogue[catalogue["material_id"].isin(list(material_ids))]
    side = catalogue.reindex(columns=["material_id", "k_vrh", "efermi", "spacegroup_number"]).rename(
        columns={"k_vrh": "cat_k_vrh", "efermi": "cat_efermi", "spacegroup_number": "cat_spacegroup"})
    frame = summary.merge(side, on="material_id", how="outer", indicator="origin")
    frame = frame.sort_values("material_id").reset_index(drop=True)
    if options.limit is not None:
        frame = frame.head(options.limit)
    ids = list(frame["material_id"])
    elastic = mp.elasticity(ids)
    k_map = {row["material_id"]: _k_vrh(row) for row in elastic.to_dict("records")}
    frame["elastic_k_vrh"] = frame["material_id"].map(k_map)
    release = RELEASE_OLD if mp.offline else "materials.elasticity"
    frame["k_vrh_release"] = [release if _number(k) is not None else None for k in frame["elastic_k_vrh"]]
    frame["untrusted_moduli"] = frame["material_id"].map(untrusted_moduli(mp, ids))
    return frame


def density_candidates(mp: MaterialsProject, densities: ChargeDensitySource, options: MassaOptions) -> pd.DataFrame:
    """One row per density the source holds (mirror: the 371 MultiMat grids), with e_form and
    e_fermi of the summary source (mirror: mp2018) and K_VRH of the 2025 elasticity release, else
    of the older one (``k_vrh_release`` says which); structures are paired later (:func:`process`)."""
    catalogue = densities.catalogue().sort_values("material_id")
    if options.limit is not None:
        catalogue = catalogue.head(options.limit)
    ids = list(catalogue["material_id"])
    mp.prefetch_structures(ids)
    summary = {row["material_id"]: row for row in mp.summary_rows(material_ids=ids)}
    moduli = release_moduli(mp, RELEASE_2025, ids).merge(release_moduli(mp, RELEASE_OLD, ids), on="material_id",
                                                         how="outer").set_index("material_id")
    untrusted = untrusted_moduli(mp, ids)
    rows = []
    for side in catalogue.to_dict("records"):
        mid = side["material_id"]
        found = summary.get(mid, {})
        k_new = _number(moduli[f"k_vrh_{RELEASE_2025}"].get(mid)) if mid in moduli.index else None
        k_old = _number(moduli[f"k_vrh_{RELEASE_OLD}"].get(mid)) if mid in moduli.index else None
        rows.append({"material_id": mid, "origin": "right_only", "is_stable": None,
                     "formation_energy_per_atom": found.get("formation_energy_per_atom"),
                     "efermi": found.get("efermi"), "elastic_k_vrh": k_new if k_new is not None else k_old,
                     "k_vrh_release": RELEASE_2025 if k_new is not None else RELEASE_OLD if k_old is not None else None,
                     "cat_k_vrh": side.get("k_vrh"), "cat_efermi": side.get("efermi"),
                     "cat_spacegroup": side.get("spacegroup_number"), "untrusted_moduli": untrusted.get(mid)})
    return pd.DataFrame(rows)


def _k_vrh(row: dict[str, Any]) -> float | None:
    """K_VRH (GPa) of an elasticity row: the API's value, else from the 6x6 tensor."""
    value = _number(row.get("k_vrh"))
    if value is None and row.get("elasticity.elastic_tensor") is not None:
        try:
            value = vrh_moduli(row["elasticity.elastic_tensor"])[0]
        except (ValueError, TypeError):
            value = None
    return value


# -- one record ------------------------------------------------------------------------------
@dataclass
class Processed:
    """A record that made it through the ECD stage, with its image and density statistics."""

    record: MaterialRecord
    ecd: dict[str, Any]


def _structure(row: dict[str, Any], mp: MaterialsProject, densities: ChargeDensitySource) -> Structure:
    """A bare grid's verified structure (:meth:`ChargeDensitySource.pairing`), else the row's or
    the structure source's."""
    if densities.has_grid(row["material_id"]):
        return densities.pairing(row["material_id"]).structure
    structure = row.get("structure")
    if isinstance(structure, Structure):
        return structure
    return mp.structure(row["material_id"])


def _targets(row: dict[str, Any], issues: list[Issue], source: str) -> dict[str, Any]:
    mid = row["material_id"]
    k_vrh = _number(row.get("elastic_k_vrh"))
    if k_vrh is None and _number(row.get("cat_k_vrh")) is not None:
        k_vrh = _number(row["cat_k_vrh"])
        row["k_vrh_release"] = "multimat side column"
        issues.append(Issue(mid, "targets", Severity.degraded,
                            "k_vrh from the charge-density source's side column (MultiMat), not the elasticity endpoint",
                            source))
    if k_vrh is not None and isinstance(row.get("untrusted_moduli"), str):
        issues.append(Issue(mid, "quality", Severity.degraded, f"k_vrh dropped: {row['untrusted_moduli']}", source))
        k_vrh, row["k_vrh_release"] = None, None
    efermi = _number(row.get("efermi"))
    if efermi is None and _number(row.get("cat_efermi")) is not None:
        efermi = _number(row["cat_efermi"])
    return {"e_form": checked(mid, TargetName.e_form, _number(row.get("formation_energy_per_atom")), issues, source),
            "efermi": checked(mid, TargetName.e_fermi, efermi, issues, source),
            "k_vrh": checked(mid, TargetName.k_vrh, k_vrh, issues, source), "is_stable": row.get("is_stable")}


def process(
    row: dict[str, Any], mp: MaterialsProject, densities: ChargeDensitySource, options: MassaOptions,
    image_dir: Path, issues: list[Issue],
) -> Processed | None:
    """Structure -> FCC/stability checks -> targets -> density -> image; None when dropped."""
    mid, source = row["material_id"], "materials_project" if row.get("origin") != "right_only" else "charge_density"
    listed = _number(row.get("cat_spacegroup"))
    if options.fcc_only and listed is not None and int(listed) not in FCC_SPACEGROUPS:
        issues.append(Issue(mid, "lattice", Severity.dropped,
                            f"space group {int(listed)} (density source's side column) is not FCC", source))
        return None
    try:
        structure = _structure(row, mp, densities)
    except MissingDataError as error:
        issues.append(Issue(mid, "structure", Severity.dropped, str(error), source))
        return None
    except DensityMismatchError as error:
        issues.append(Issue(mid, "pairing", Severity.dropped, str(error), source))
        return None
    spg = row.get("spacegroup_number")
    spg = int(spg) if _number(spg) is not None else spacegroup_number(structure)
    if options.fcc_only and spg not in FCC_SPACEGROUPS:
        issues.append(Issue(mid, "lattice", Severity.dropped, f"space group {spg} is not FCC", source))
        return None
    stable = row.get("is_stable")
    if options.stable_only and stable is not True:
        issues.append(Issue(mid, "stability", Severity.degraded,
                            "stability unknown: not in the summary source (mirror: no MP summary by id)", source))
    data = {**_targets(row, issues, source), "spg": spg, "formula": structure.composition.reduced_formula}
    record = MaterialRecord(mid, source, structure, data, structure.composition)
    try:
        ecd = ecd_for(mid, densities, options.ecd, image_dir)
    except (MissingDataError, DensityMismatchError, EcdError) as error:
        issues.append(Issue(mid, "ecd", Severity.dropped, str(error), source))
        return None
    extra = densities.pairing(mid).columns() if densities.has_grid(mid) else {}
    return Processed(record, {**ecd, **extra, "k_vrh_release": row.get("k_vrh_release") if data["k_vrh"] is not None else None})


def settings_key(settings: EcdSettings) -> str:
    return hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode()).hexdigest()[:12]


def ecd_for(material_id: str, densities: ChargeDensitySource, settings: EcdSettings, image_dir: Path) -> dict[str, Any]:
    """The image of one material (cached next to it as ``<id>.json`` with the settings key)."""
    png = image_dir / safe_name(material_id, ".png")
    meta = png.with_suffix(".json")
    key = settings_key(settings)
    if png.exists() and meta.exists():
        cached = json.loads(meta.read_text())
        if cached.get("settings_key") == key:
            return cached
    total = densities.chgcar(material_id)
    result = density_image(total, aeccars=densities.aeccars(material_id), settings=settings)
    paths = write_images(result, png, settings)
    info = {"ecd_image": str(paths["image"].resolve()), "ecd_fft_image": str(paths["fourier"].resolve())
            if "fourier" in paths else None, "ecd_method": result.method, "settings_key": key,
            "ecd_notes": "; ".join(result.notes), **result.stats}
    meta.write_text(json.dumps(info))
    return info


# -- the dataset -----------------------------------------------------------------------------
def build_massa(
    material_ids: Sequence[str] | None = None,
    *,
    options: MassaOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME,
) -> Dataset:
    """Build the massa2024 dataset folder (table, ECD images, manifest, provenance)."""
    settings = settings or get_settings()
    options = options or MassaOptions()
    mp = MaterialsProject(settings)
    densities = ChargeDensitySource(settings, structures=mp)
    rows = candidates(mp, densities, material_ids, options)
    source = {"summary": "mp_devset_200.json" if mp.offline else "materials.summary",
              "elasticity": "mp_elastic_1000.json" if mp.offline else "materials.elasticity",
              "charge_density": "mirror charge_density/" if mp.offline else "mp-api get_charge_density_from_material_id",
              "licence": LICENCE}
    return _assemble(name, rows, mp, densities, options, settings, source)


def build_massa_density(
    *, options: MassaOptions | None = None, settings: Settings | None = None, name: str | None = None,
    fcc_only: bool = True,
) -> Dataset:
    """massa2024 on the real MP charge densities (mirror: the 371 MultiMat grids): each grid is
    paired with a structure of the MP sources by id and kept only if the grid's electron count
    matches the structure's MP valence electrons (:func:`matmodal.sources.charge_density.pair`).
    ``fcc_only``: the paper's FCC population (``massa_mp_density``), else any lattice
    (``massa_mp_density_any``). No stability filter: the mirror's MP summary has no is_stable."""
    settings = settings or get_settings()
    options = replace(options or MassaOptions(), fcc_only=fcc_only, stable_only=False)
    name = name or (DENSITY_NAME if fcc_only else DENSITY_ANY_NAME)
    mp = MaterialsProject(settings)
    densities = ChargeDensitySource(settings, structures=mp)
    rows = density_candidates(mp, densities, options)
    offline = mp.offline
    source = {"summary": SUMMARY_2018_FILE if offline else "materials.summary",
              "elasticity": f"{ELASTIC_2025_FILE}, else {ELASTIC_FILE}" if offline else "materials.elasticity",
              "charge_density": f"mirror charge_density/{MULTIMAT_FILE}" if offline else "mp-api",
              "pairing": f"grid mean vs MP PAW valence electrons within {COUNT_TOLERANCE:.0%}",
              "stability": "not filtered (no is_stable in the summary source)", "licence": LICENCE}
    return _assemble(name, rows, mp, densities, options, settings, source)


def build_massa_density_any(*, options: MassaOptions | None = None, settings: Settings | None = None) -> Dataset:
    """:func:`build_massa_density` over every lattice (larger than the paper's FCC population)."""
    return build_massa_density(options=options, settings=settings, fcc_only=False)


def _assemble(
    name: str, rows: pd.DataFrame, mp: MaterialsProject, densities: ChargeDensitySource, options: MassaOptions,
    settings: Settings, source: dict[str, Any],
) -> Dataset:
    image_dir = settings.dataset_dir(name) / "ecd"
    issues: list[Issue] = []
    options = replace(options, engine=options.engine or Engine.from_env())
    if options.engine.enabled:
        _prerender(list(rows["material_id"]), densities, options, image_dir)
    done = [p for row in tqdm(rows.to_dict("records"), desc="ecd", unit="material")
            if (p := process(row, mp, densities, options, image_dir, issues)) is not None]
    done = _iqr_clean(done, options, issues)
    extra = _text_columns(done, settings, options, issues)
    items: list[MaterialRecord | Issue] = [*issues, *(p.record for p in done)]
    dataset = build(name, items, MASSA_TARGETS, options=BuildOptions(robocrys=False), settings=settings,
                    sources={"materials_project": source})
    return _finish(dataset, done, extra, options)


def _prerender(ids: list[str], densities: ChargeDensitySource, options: MassaOptions, image_dir: Path) -> None:
    """Render the images of every density that pairs (and is FCC when asked) on ``options.engine``,
    into the cache the serial pass reads; failures are left for the serial pass to report."""
    ready = {}
    for mid in ids:
        try:
            density = densities.chgcar(mid)
        except (MissingDataError, DensityMismatchError):
            continue
        if not options.fcc_only or spacegroup_number(density.structure) in FCC_SPACEGROUPS:
            ready[mid] = density
    ecd_on_ray(ready, options.ecd, image_dir, options.engine)


class _Given:
    """A density source holding one prepared density (what :func:`ecd_for` asks of a source)."""

    def __init__(self, density: Any) -> None:
        self.density = density

    def chgcar(self, material_id: str) -> Any:
        return self.density

    def aeccars(self, material_id: str) -> None:
        return None


def _ecd_job(job: tuple[str, dict[str, Any], dict[str, Any], EcdSettings, Path]) -> str | None:
    """Render one prepared density (structure dict + data arrays: a Chgcar does not survive
    pickling) into the image cache; None on success, else the reason."""
    material_id, structure, data, settings, image_dir = job
    try:
        density = Chgcar(Poscar(Structure.from_dict(structure)), data)
        ecd_for(material_id, _Given(density), settings, image_dir)
    except Exception as error:  # the serial pass recomputes it and records the reason
        return f"{type(error).__name__}: {error}"
    return None


def ecd_on_ray(densities: dict[str, Any], settings: EcdSettings, image_dir: Path, engine: Engine) -> dict[str, str | None]:
    """Render ``{material_id: Chgcar}`` as Ray tasks on ``engine``: ``{material_id: failure or None}``."""
    jobs = [(mid, d.structure.as_dict(), {k: np.asarray(v) for k, v in d.data.items()}, settings, image_dir)
            for mid, d in densities.items()]
    return dict(zip(densities, parallel_map(_ecd_job, jobs, engine), strict=True))


def _iqr_clean(done: list[Processed], options: MassaOptions, issues: list[Issue]) -> list[Processed]:
    """Drop the records whose density maximum or minimum is an IQR outlier (massa2024 §2.1)."""
    if options.iqr_k is None or len(done) < 4:
        return done
    frame = pd.DataFrame([{c: p.ecd[c] for c in IQR_COLUMNS} for p in done])
    reasons = iqr_outliers(frame, IQR_COLUMNS, options.iqr_k)
    kept = []
    for processed, reason in zip(done, reasons, strict=True):
        if reason:
            issues.append(Issue(processed.record.record_id, "iqr", Severity.dropped,
                                f"density extreme outside the IQR fences (k={options.iqr_k}): {reason}",
                                processed.record.source))
        else:
            kept.append(processed)
    return kept


def _text_columns(done: list[Processed], settings: Settings, options: MassaOptions, issues: list[Issue]) -> pd.DataFrame:
    if options.robocrys and options.engine is not None and options.engine.enabled:
        robocrys_on_ray([p.record.structure for p in done], settings.cache_dir / "text", options.engine)
    rows = []
    for p in tqdm(done, desc="robocrys", unit="structure", disable=not options.robocrys):
        formula = p.record.structure.composition.reduced_formula
        if options.robocrys:
            levels, failure = text_levels(p.record.structure, cache_dir=settings.cache_dir / "text")
            if failure:
                issues.append(Issue(p.record.record_id, "text", Severity.degraded, failure, p.record.source))
            row = {column: levels[level] for level, column in TEXT_COLUMNS.items()}
        else:
            row = {column: formula if column == "text_formula" else None for column in TEXT_COLUMNS.values()}
        rows.append({"material_id": p.record.record_id, **row})
    return pd.DataFrame(rows, columns=["material_id", *TEXT_COLUMNS.values()])


def _finish(dataset: Dataset, done: list[Processed], text: pd.DataFrame, options: MassaOptions) -> Dataset:
    ecd = pd.DataFrame([{"material_id": p.record.record_id, **{k: v for k, v in p.ecd.items() if k != "settings_key"}}
                        for p in done])
    table = dataset.table.drop(columns=["image_path", "text_robocrys"], errors="ignore")
    table = table.merge(text, on="material_id", how="left").merge(ecd, on="material_id", how="left")
    pq.write_table(arrow_with_units(table), dataset.folder / TABLE)
    provenance_path = dataset.folder / "provenance.json"
    info = json.loads(provenance_path.read_text())
    info["ecd"] = {**asdict(options.ecd), "units": "rho_min/rho_max in e/Å^3 (differential density)"}
    info["massa"] = {"fcc_spacegroups": list(FCC_SPACEGROUPS), "fcc_only": options.fcc_only,
                     "stable_only": options.stable_only, "iqr_k": options.iqr_k, "limit": options.limit,
                     "engine": (options.engine or Engine()).describe()}
    provenance_path.write_text(json.dumps(info, indent=1, default=str))
    return Dataset(dataset.name, dataset.folder, table, dataset.manifest, info)


def density_counts(dataset: Dataset) -> dict[str, int]:
    """Where the densities of a density dataset went, read back from its manifest and table.

    ``densities``: grids considered (table rows + dropped records); ``no structure``: no MP
    structure for the id; ``refused``: a structure, but the pairing check failed (electron count
    or symmetry); ``not FCC``: dropped by the FCC rule (FCC view only); ``paired`` = refused +
    verified; ``verified``: pairing verified and kept by the view's lattice rule, i.e. imaged;
    ``IQR outliers``: dropped by the density-extreme cleaning; ``rows``: the table.
    """
    dropped = dataset.manifest[dataset.manifest["severity"] == Severity.dropped.value]
    by_stage = dropped.groupby("stage")["record_id"].nunique().to_dict()
    rows = len(dataset.table)
    densities = rows + dropped["record_id"].nunique()
    verified = densities - sum(by_stage.get(stage, 0) for stage in ("structure", "pairing", "lattice"))
    return {"densities": densities, "no structure": by_stage.get("structure", 0),
            "paired": verified + by_stage.get("pairing", 0), "refused": by_stage.get("pairing", 0),
            "not FCC": by_stage.get("lattice", 0), "verified": verified,
            "IQR outliers": by_stage.get("iqr", 0), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m matmodal.datasets.massa [--mirror DIR] [--any-lattice] [--pixels N] ...``"""
    parser = argparse.ArgumentParser(prog="python -m matmodal.datasets.massa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path)
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--any-lattice", action="store_true", help="keep non-FCC materials (mirror densities)")
    parser.add_argument("--pixels", type=int, default=224)
    parser.add_argument("--grid", type=int, default=60)
    parser.add_argument("--normalisation", default="paper", choices=("paper", "clip", "symlog"))
    parser.add_argument("--no-robocrys", action="store_true")
    parser.add_argument("--no-iqr", action="store_true")
    parser.add_argument("--fourier", action="store_true")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"mirror_dir": args.mirror, "output_dir": args.output_dir,
                                   "cache_dir": args.cache_dir}.items() if v is not None}
    ecd = EcdSettings(grid=args.grid, pixels=args.pixels, normalisation=args.normalisation, fourier=args.fourier)
    options = MassaOptions(ecd=ecd, fcc_only=not args.any_lattice, iqr_k=None if args.no_iqr else 1.5,
                           robocrys=not args.no_robocrys, limit=args.limit)
    dataset = build_massa(options=options, settings=Settings(**overrides))
    counts = dataset.manifest["severity"].value_counts().to_dict()
    print(f"{dataset.name}: {len(dataset.table)} records -> {dataset.folder} (manifest: {counts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
