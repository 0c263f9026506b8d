"""Side-by-side check against Crystal Toolkit's own scene (issue 3): geometry counts and pictures.

Crystal Toolkit is NOT a dependency of matmodal. Run this script in a throwaway environment that
has it (see docs/image_fidelity.md for the exact steps), e.g.

    /tmp/ctkvenv/bin/python benchmarks/image_fidelity.py --out docs/img

For a few structures it builds Crystal Toolkit's scene JSON without a browser
(``StructureMoleculeComponent(structure)._initial_data["scene"]``, with the two renamed
pymatgen methods aliased back), counts its atoms / half-bonds / polyhedra, matches them one by
one against matmodal's scene under ``RenderSettings.crystal_toolkit()``, and writes one PNG per
structure with three panels: Crystal Toolkit's geometry drawn by matmodal's rasteriser, matmodal's
Crystal-Toolkit preset, and matmodal's fast default (cutoff bonds, no polyhedra).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw
from pymatgen.analysis.graphs import StructureGraph
from pymatgen.core import Lattice, Structure
from scipy.spatial import ConvexHull

from matmodal.modalities.image import RenderSettings, build_scene
from matmodal.modalities.image.raster import rasterise
from matmodal.modalities.image.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
PICKS = ("mp-7000", "mp-10025", "mp-1008487", "mp-1016823")  # MP elastic ids shown when present


def crystal_toolkit_scene(structure: Structure) -> dict:
    """Crystal Toolkit's scene JSON as costa2025 configured it (outside bonds, no compass)."""
    for old, new in (("with_empty_graph", "from_empty_graph"), ("with_local_env_strategy", "from_local_env_strategy")):
        if not hasattr(StructureGraph, old):  # renamed in current pymatgen
            setattr(StructureGraph, old, getattr(StructureGraph, new))
    from crystal_toolkit.components.structure import StructureMoleculeComponent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        component = StructureMoleculeComponent(structure, bonded_sites_outside_unit_cell=True, show_compass=False)
    return component._initial_data["scene"]


def _leaves(node: dict):
    if node.get("name") == "axes":  # the compass (costa2025 switched it off)
        return
    if "contents" in node:
        for child in node["contents"]:
            yield from _leaves(child)
    else:
        yield node


def _rgb(colour: str) -> tuple[int, int, int]:
    r, g, b = ImageColor.getrgb(colour)[:3]
    return r, g, b


def scene_from_json(data: dict, lattice: np.ndarray) -> Scene:
    """Crystal Toolkit's primitives as a matmodal Scene (so one rasteriser draws both)."""
    atoms, radii, colours, bonds, bond_rgb, edges, poly = [], [], [], [], [], [], []
    for leaf in _leaves(data):
        kind = leaf.get("type")
        if kind == "spheres":
            for p in leaf["positions"]:
                atoms.append(p), radii.append(leaf["radius"]), colours.append(_rgb(leaf["color"]))
        elif kind == "cylinders":
            for pair in leaf["positionPairs"]:
                bonds.append(pair), bond_rgb.append(_rgb(leaf["color"]))
        elif kind == "lines":
            pts = np.asarray(leaf["positions"], dtype=float)
            edges += [pts[i:i + 2] for i in range(0, len(pts), 2)]
        elif kind == "convex":
            pts = np.asarray(leaf["positions"], dtype=float)
            poly.append((pts[ConvexHull(pts).simplices], np.array(_rgb(leaf["color"]), dtype=np.uint8)))
    bonds_arr = np.asarray(bonds, dtype=float).reshape(-1, 2, 3)
    start_radius = np.full(len(bonds_arr), 0.5)
    return Scene(lattice=lattice, atoms=np.asarray(atoms, dtype=float), radii=np.asarray(radii, dtype=float),
                 colors=np.asarray(colours, dtype=np.uint8), site_index=np.zeros(len(atoms), int),
                 images=np.zeros((len(atoms), 3), int), bonds=bonds_arr, bond_start_radius=start_radius,
                 bond_colors=np.asarray(bond_rgb, dtype=np.uint8).reshape(-1, 3), bond_radius=0.1,
                 cell_edges=np.asarray(edges, dtype=float).reshape(-1, 2, 3), polyhedra=poly)


def _keys(points: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(np.round(p, 3).ravel() + 0.0) for p in points}


def compare(name: str, structure: Structure, out: Path, size: int) -> dict:
    """Counts and one-by-one matches of atoms, half-bonds and polyhedra; writes the 3-panel PNG."""
    ct = scene_from_json(crystal_toolkit_scene(structure), structure.lattice.matrix)
    preset = RenderSettings.crystal_toolkit(size=size)
    ours = build_scene(structure, preset)
    fast = build_scene(structure, RenderSettings(size=size))
    common_fast = len(_keys(ct.bonds) & _keys(fast.bonds))
    row = {
        "structure": name, "formula": structure.composition.reduced_formula, "sites": len(structure),
        "atoms CT/ours/common": f"{len(ct.atoms)}/{len(ours.atoms)}/{len(_keys(ct.atoms) & _keys(ours.atoms))}",
        "half-bonds CT/ours/common": f"{len(ct.bonds)}/{len(ours.bonds)}/{len(_keys(ct.bonds) & _keys(ours.bonds))}",
        "polyhedra CT/ours": f"{len(ct.polyhedra)}/{len(ours.polyhedra)}",
        "cutoff rule: atoms, half-bonds (common with CT)": f"{len(fast.atoms)}, {len(fast.bonds)} ({common_fast})",
    }
    panels = [rasterise(ct, preset), rasterise(ours, preset), rasterise(fast, RenderSettings(size=size))]
    sheet = Image.new("RGB", (3 * size, size + 16), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (panel, label) in enumerate(zip(panels, ("Crystal Toolkit scene", "matmodal CT preset", "matmodal default"),
                                           strict=True)):
        sheet.paste(panel, (k * size, 16))
        draw.text((k * size + 4, 2), label, fill=(0, 0, 0))
    sheet.save(out / f"fidelity_{name}.png", optimize=True)
    return row


def examples(mirror: Path) -> list[tuple[str, Structure]]:
    """fcc Cu and rock salt (built here) plus a few real MP elastic structures."""
    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    items = [("Cu_fcc", cu), ("NaCl", nacl)]
    columns = json.loads((mirror / "materials_project" / "mp_elastic_1000.json").read_text())
    ids = {v: k for k, v in columns["material_id"].items()}
    picks = [p for p in PICKS if p in ids] or list(ids)[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items += [(p, Structure.from_str(columns["cif"][ids[p]], fmt="cif")) for p in picks]
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "mirror")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [compare(name, s, args.out, args.size) for name, s in examples(args.mirror)]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
