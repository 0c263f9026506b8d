"""Validation: GPAW densities (matmodal.modalities.ecd.dft) against real Materials Project densities.

For each material both densities go through the same ECD pipeline (regrid to 60^3 with pyrho,
differential density, (111) slice of the 8^3 supercell through site 0) and the script prints, per
material: electrons in the cell (grid mean, CHGCAR convention) of ours and MP's against the
expected valence counts (GPAW setups / MP POTCAR ZVAL), the Pearson correlation of the 3D total
densities on the common 60^3 grid, and of the (111) slices (total and differential), plus the wall
time of the calculation and the estimate. Side-by-side PNGs go to ``docs/img/dft_<name>.png``.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dft_validation.py --mirror ../shared/mirror

Inputs (real data, read from the mirror):
* ``Si_diamond``: the pyrho test file (Si 60^3, an **all-electron** density: grid mean 27.6 of Z = 28),
  compared with our all-electron density (core + valence).
* MultiMat 32^3 MP total (valence, CHGCAR) densities of FCC 2-atom cells, each with the MP structure
  that ``ChargeDensitySource.pairing`` verified; ours (pseudo valence + compensation charges) is
  first Fourier-resampled to the MP grid (32^3) so both enter the pipeline at the same resolution.
Figures are printed, never asserted.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from pymatgen.io.vasp import Chgcar, Poscar, VolumetricData  # noqa: E402

from matmodal.config import Settings  # noqa: E402
from matmodal.modalities.ecd import (  # noqa: E402
    EcdSettings,
    dft,
    fourier_resample,
    normalise,
)
from matmodal.sources.charge_density import ChargeDensitySource, read_density  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MULTIMAT_IDS = ("mp-1002206", "mp-1002165", "mp-10020", "mp-1000")  # SiC, GeC, ScC, BaTe (2-atom FCC cells)


def on_grid(density: VolumetricData, shape: tuple[int, ...]) -> Chgcar:
    """``density`` Fourier-resampled to ``shape`` (keeps the electron count)."""
    return Chgcar(Poscar(density.structure), {"total": fourier_resample(density.data["total"], shape)})


def picture(name: str, panels: dict, path: Path) -> None:
    """Row 1: the images as the model sees them (paper normalisation = min-max to [-1, 1]);
    row 2: the same slices clipped at ±3σ (``clip``), where bonding features are visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.4))
    for column, (title, result) in enumerate(panels.items()):
        side = result.slice.side
        for row, values in enumerate((result.image, normalise(result.slice.values, "clip"))):
            ax = axes[row][column]
            ax.imshow(values, origin="lower", cmap="viridis", extent=(0, side, 0, side), vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("paper (min-max)", fontsize=9)
    axes[1][0].set_ylabel("clip ±3σ", fontsize=9)
    fig.suptitle(f"{name}: (111) slices of the 8³ supercell, {side:.1f} Å square, same pipeline", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=72)
    plt.close(fig)
    from PIL import Image

    Image.open(buffer).convert("RGB").quantize(64).save(path, optimize=True)  # 64 colours: a few 10 kB in git


def compare(name: str, reference: VolumetricData, ours: VolumetricData, ref_ecd: EcdSettings, our_ecd: EcdSettings,
            expected: tuple[float, float], info: dict, out_dir: Path) -> dict:
    """One row of the table, and the side-by-side picture (numbers: :func:`dft.compare_densities`)."""
    numbers, images = dft.compare_densities(reference, ours, ref_ecd, our_ecd)
    label = "MP" if name.startswith("mp-") else "reference"
    panels = {f"{label} total": images["reference total"], "GPAW total": images["ours total"],
              f"{label} differential": images["reference differential"], "GPAW differential": images["ours differential"]}
    path = out_dir / f"dft_{name}.png"
    picture(name, panels, path)
    return {
        "material": name, "formula": reference.structure.composition.reduced_formula, "sites": len(reference.structure),
        "ours_e": numbers["ours_e"], "ours_expected_e": expected[0],
        "mp_e": numbers["reference_e"], "mp_expected_e": expected[1],
        **{k: numbers[k] for k in ("corr_3d_total", "corr_slice_total", "corr_slice_diff")},
        "wall_s": info["wall_s"], "estimate_s": round(info["estimate_s"], 1), "kpts_ibz": info["kpoints_irreducible"],
        "grid": "x".join(map(str, info["grid_shape"]["pseudo"])), "cache": info["cache"], "image": path.name,
        "spin": info["spin_polarised"], "moment_mub": round(info["magnetic_moment_mub"], 2),
    }


THROUGHPUT_IDS = ("mp-1002206", "mp-1002165", "mp-10020", "mp-1000", "mp-22903", "mp-1001789", "mp-1002124",
                  "mp-1001916")  # SiC GeC ScC BaTe RbI IrC HfC HfN: 2-atom FCC cells, none spin-polarised


def throughput(settings: Settings, calc: dft.DftSettings, workers: int, n: int) -> None:
    """Materials per minute, serially and as Ray tasks on ``workers`` local CPUs (fresh caches)."""
    import tempfile
    import time

    from matmodal.parallel import Engine, shutdown
    from matmodal.sources.materials_project import MaterialsProject

    mp = MaterialsProject(settings)
    source = ChargeDensitySource(settings, structures=mp)
    ids = list(THROUGHPUT_IDS[:n])
    mp.prefetch_structures(ids)
    structures = [source.chgcar(mid).structure for mid in ids]
    for engine in (Engine(), Engine(workers=workers)):
        with tempfile.TemporaryDirectory(prefix="dft-throughput-") as cache:
            start = time.perf_counter()
            infos = dft.compute_many(structures, calc, engine, cache_dir=Path(cache))
            wall = time.perf_counter() - start
        failed = [i["error"] for i in infos if "error" in i]
        each = [i["wall_s"] for i in infos if "wall_s" in i]
        print(f"{engine.describe()}: {len(structures)} densities in {wall:.1f} s = "
              f"{60 * len(structures) / wall:.2f} per min (per calculation {min(each):.1f}-{max(each):.1f} s; "
              f"{len(failed)} failed {failed})", flush=True)
    shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--ids", nargs="*", default=list(MULTIMAT_IDS), help="MultiMat material ids")
    parser.add_argument("--cutoff", type=float, default=dft.DftSettings.cutoff, help="eV")
    parser.add_argument("--kpoint-density", type=float, default=dft.DftSettings.kpoint_density, help="per Å⁻¹")
    parser.add_argument("--mode", choices=dft.MODES, default=dft.DftSettings.mode)
    parser.add_argument("--no-si", action="store_true", help="skip the Si pyrho file")
    parser.add_argument("--pixels", type=int, default=224)
    parser.add_argument("--cache", type=Path, default=None, help="cache dir (default: Settings.cache_dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--throughput", type=int, default=0, metavar="N",
                        help="instead: time N densities serially and on --workers Ray workers")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    settings = Settings(mirror_dir=args.mirror, **({"cache_dir": args.cache} if args.cache else {}))
    calc = dft.DftSettings(mode=args.mode, cutoff=args.cutoff, kpoint_density=args.kpoint_density)
    ecd = EcdSettings(pixels=args.pixels)
    if args.throughput:
        throughput(settings, calc, args.workers, args.throughput)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []

    # Si: the pyrho file is an all-electron density -> our all-electron density, all-electron promolecule
    if not args.no_si:
        si = read_density(args.mirror / "charge_density" / "Si_diamond_60cube.hdf5")
        estimate = dft.estimate_seconds(si.structure, calc)
        ours, info = dft.compute_density(si.structure, calc, all_electron=True, cache_dir=settings.cache_dir)
        ae = replace(ecd, electrons="all-electron")
        z = float(sum(site.specie.Z for site in si.structure))
        rows.append(compare("Si_diamond", si, ours, ae, ae, (z, z), {**info, "estimate_s": estimate}, args.out))
        print(json.dumps(rows[-1]), flush=True)

    from matmodal.sources.materials_project import MaterialsProject, mp_zval

    mp = MaterialsProject(settings)
    source = ChargeDensitySource(settings, structures=mp)
    mp.prefetch_structures(args.ids)
    zval = mp_zval()
    for mid in args.ids:
        reference = source.chgcar(mid)  # the 32^3 grid with its verified MP structure
        structure = reference.structure
        estimate = dft.estimate_seconds(structure, calc)
        ours, info = dft.compute_density(structure, calc, cache_dir=settings.cache_dir)
        ours = on_grid(ours, tuple(reference.dim))
        expected = (info["valence_electrons_cell"], float(sum(zval[s.specie.symbol] for s in structure)))
        name = f"{mid}_{structure.composition.reduced_formula}"
        rows.append(compare(name, reference, ours, ecd, dft.ecd_settings_for_dft(ecd), expected,
                            {**info, "estimate_s": estimate}, args.out))
        print(json.dumps(rows[-1]), flush=True)

    columns = ["material", "sites", "ours_e", "ours_expected_e", "mp_e", "mp_expected_e", "corr_3d_total",
               "corr_slice_total", "corr_slice_diff", "wall_s", "estimate_s", "kpts_ibz", "grid", "spin"]
    print(f"\nGPAW {info['gpaw']}, {calc.mode} {calc.cutoff:g} eV, k-point density {calc.kpoint_density:g}/Å, "
          f"FD {calc.smearing:g} eV, spin {calc.spin}\n")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
