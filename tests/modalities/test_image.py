"""Image modality: scene geometry (Crystal Toolkit rules), pixels, bad input (issue 3).

Small structures built here are named fixtures (fcc Cu, rock salt NaCl, ...); real inputs come
from the mirror's MP elastic file.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from pymatgen.core import DummySpecies, Lattice, Structure

from matmodal.modalities.image import (
    RenderSettings,
    build_scene,
    render_structure,
    render_with_notes,
)
from matmodal.modalities.image.colors import color_table
from matmodal.modalities.image.raster import view_matrix
from matmodal.modalities.image.scene import boundary_images

FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
ONLY_CELL = RenderSettings(bonded_sites_outside_cell=False)


def fcc_cu() -> Structure:
    """Fixture: conventional fcc Cu, a = 3.61 Å."""
    return Structure(Lattice.cubic(3.61), ["Cu"] * 4, FCC)


def rock_salt() -> Structure:
    """Fixture: conventional NaCl, a = 5.64 Å."""
    half = [[x + 0.5 if i == 0 else x for i, x in enumerate(p)] for p in FCC]
    return Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, FCC + [[c % 1 for c in p] for p in half])


def mp_structures(mirror_dir, n: int) -> list[tuple[str, Structure]]:
    """The first n structures of the mirror's MP elastic file (real data)."""
    columns = json.loads((mirror_dir / "materials_project" / "mp_elastic_1000.json").read_text())
    keys = list(columns["cif"])[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(columns["material_id"][k], Structure.from_str(columns["cif"][k], fmt="cif")) for k in keys]


# ----------------------------------------------------------------------------- geometry


def test_fcc_conventional_cell_has_ten_boundary_images():
    site, image = boundary_images(np.mod(fcc_cu().frac_coords, 1))
    assert len(site) == 10  # corner atom: 7 images; each face centre: 1
    assert set(map(tuple, image[site == 0])) == {(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)}
    assert np.bincount(site).tolist() == [7, 1, 1, 1]
    scene = build_scene(fcc_cu(), ONLY_CELL)
    assert len(scene.atoms) == 14  # the familiar 8 corners + 6 face centres
    assert np.allclose(np.sort(np.unique(scene.atoms.round(6), axis=0), axis=0).min(0), 0)


def test_bonds_crossing_the_cell_reach_outside_images():
    scene = build_scene(fcc_cu(), RenderSettings(bonds="cutoff", bonded_sites_outside_cell=True))
    frac = scene.atoms @ np.linalg.inv(scene.lattice)
    outside = ((frac < -0.05) | (frac > 1.05)).any(axis=1)
    assert outside.any()
    # every atom of the cell (image 0) shows all 12 of its nearest-neighbour half-bonds
    starts = np.round(scene.bonds[:, 0], 6)
    in_cell = scene.atoms[(scene.images == 0).all(axis=1)]
    for centre in np.round(in_cell, 6):
        assert (starts == centre).all(axis=1).sum() == 12
    # some of those half-bonds point at atoms outside the cell
    ends = scene.bonds[:, 0] + 2 * (scene.bonds[:, 1] - scene.bonds[:, 0])
    end_frac = ends @ np.linalg.inv(scene.lattice)
    assert ((end_frac < -0.05) | (end_frac > 1.05)).any(axis=1).any()


def test_without_outside_atoms_every_bond_joins_two_drawn_atoms():
    scene = build_scene(fcc_cu(), ONLY_CELL)
    ends = scene.bonds[:, 0] + 2 * (scene.bonds[:, 1] - scene.bonds[:, 0])
    dist = np.linalg.norm(ends[:, None] - scene.atoms[None], axis=2).min(axis=1)
    assert np.allclose(dist, 0, atol=1e-9)
    assert np.allclose(np.linalg.norm(ends - scene.bonds[:, 0], axis=1), 3.61 / np.sqrt(2))


def test_half_bonds_are_coloured_by_their_own_atom():
    scene = build_scene(rock_salt(), RenderSettings())
    vesta = color_table("VESTA")
    na_start = np.isin(scene.bonds[:, 0].round(6).view([("", float)] * 3),
                       scene.atoms[(scene.colors == vesta["Na"]).all(1)].round(6).view([("", float)] * 3))
    assert (scene.bond_colors[na_start.ravel()] == vesta["Na"]).all()
    assert (scene.bond_colors[~na_start.ravel()] == vesta["Cl"]).all()
    # each full Na-Cl bond is two halves meeting at the midpoint
    mids = {tuple(m) for m in scene.bonds[:, 1].round(6)}
    assert len(scene.bonds) == 2 * len(mids)


def test_crystalnn_bonds_and_cation_polyhedra_in_rock_salt():
    scene = build_scene(rock_salt(), RenderSettings.crystal_toolkit())
    na = (scene.colors == color_table("VESTA")["Na"]).all(1)
    faces = [len(triangles) for triangles, _ in scene.polyhedra]
    assert all(tuple(rgb) == color_table("VESTA")["Na"] for _, rgb in scene.polyhedra)  # cation-centred
    assert faces.count(8) >= 4  # each Na of the cell sits in a full octahedron of 6 Cl
    assert len(faces) <= na.sum()  # (atoms with 4-5 drawn Cl get partial hulls, as in Crystal Toolkit)


def test_default_view_looks_down_c_with_b_up():
    lattice = Lattice.from_parameters(4, 5, 6, 80, 95, 110).matrix
    rot = view_matrix(lattice)
    assert np.allclose(rot @ rot.T, np.eye(3))
    assert np.allclose(rot @ (lattice[2] / np.linalg.norm(lattice[2])), [0, 0, 1])
    b = rot @ lattice[1]
    assert abs(b[0]) < 1e-9 and b[1] > 0


# ----------------------------------------------------------------------------- pixels


def test_picture_is_white_square_rgb_of_requested_size(mirror_dir):
    record_id, structure = mp_structures(mirror_dir, 1)[0]
    image = render_structure(structure, RenderSettings(size=96))
    assert image.size == (96, 96) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert (pixels[0, 0] == 255).all() and (pixels[-1, -1] == 255).all()
    assert 0.05 < (pixels < 250).any(axis=2).mean() < 0.9, record_id


def test_fit_framing_fills_the_requested_fraction():
    pixels = np.asarray(render_structure(fcc_cu(), RenderSettings(size=200, fill=0.5)))
    rows, cols = np.nonzero((pixels < 250).any(axis=2))
    extent = max(np.ptp(rows), np.ptp(cols)) + 1
    assert abs(extent - 100) <= 3


def test_fixed_framing_keeps_angstrom_per_pixel():
    """Fixture: one atom in the middle of a 10 Å box, drawn alone (0.5 Å radius -> 10 px at 0.1 Å/px)."""
    atom = Structure(Lattice.cubic(10), ["Cu"], [[0.5, 0.5, 0.5]])
    settings = RenderSettings(size=64, framing="fixed", angstrom_per_px=0.1, show_cell=False, bonds="none")
    pixels = np.asarray(render_structure(atom, settings))
    rows, cols = np.nonzero((pixels < 250).any(axis=2))
    assert abs(np.ptp(cols) + 1 - 10) <= 1 and abs(np.ptp(rows) + 1 - 10) <= 1
    assert abs(cols.mean() - 31.5) < 0.6 and abs(rows.mean() - 31.5) < 0.6


def test_atoms_are_shaded_and_keep_their_colour():
    atom = Structure(Lattice.cubic(10), ["O"], [[0.5, 0.5, 0.5]])
    pixels = np.asarray(render_structure(atom, RenderSettings(size=64, framing="fixed", angstrom_per_px=0.05,
                                                              show_cell=False))).astype(int)
    red = pixels[(pixels[..., 0] > pixels[..., 1] + 40)]
    assert len(red) > 100  # VESTA oxygen is red
    assert red[:, 0].std() > 5  # shading varies across the sphere


def test_render_is_deterministic():
    a = np.asarray(render_structure(rock_salt(), RenderSettings(size=80, polyhedra=True)))
    b = np.asarray(render_structure(rock_salt(), RenderSettings(size=80, polyhedra=True)))
    assert np.array_equal(a, b)


def test_polyhedra_change_the_picture():
    plain = np.asarray(render_structure(rock_salt(), RenderSettings(size=80, bonds="crystalnn")))
    poly = np.asarray(render_structure(rock_salt(), RenderSettings(size=80, bonds="crystalnn", polyhedra=True)))
    assert not np.array_equal(plain, poly)


# ----------------------------------------------------------------------------- bad input


def test_single_atom_cell_renders_cleanly():
    image, notes = render_with_notes(Structure(Lattice.cubic(2.87), ["Fe"], [[0, 0, 0]]), RenderSettings(size=64))
    assert notes == []
    assert (np.asarray(image) < 250).any()


def test_partial_occupancy_is_drawn_as_majority_species():
    alloy = Structure(Lattice.cubic(3.6), [{"Co": 0.4, "Fe": 0.6}] * 4, FCC)
    scene = build_scene(alloy, RenderSettings())
    assert (scene.colors == color_table("VESTA")["Fe"]).all()
    assert any("majority species" in n for n in scene.notes)


def test_unknown_element_colour_is_reported():
    odd = Structure(Lattice.cubic(4), ["Og", DummySpecies("X")], [[0, 0, 0], [0.5, 0.5, 0.5]])
    image, notes = render_with_notes(odd, RenderSettings(size=64))
    assert image.size == (64, 64)
    assert any("no VESTA colour for Og, X" in n for n in notes)


def test_large_cell_uses_capped_bond_search(mirror_dir):
    _, structure = mp_structures(mirror_dir, 1)[0]
    big = structure * (6, 6, 6) if len(structure) < 200 else structure
    while len(big) < 200:
        big = big * (2, 1, 1)
    image, notes = render_with_notes(big, RenderSettings(size=64, bonds="crystalnn"))
    assert image.size == (64, 64)
    assert any("capped at 3.0 Å" in n for n in notes)


@pytest.mark.parametrize("matrix, reason", [
    ([[4, 0, 0], [0, 4, 0], [4, 4, 0]], "coplanar"),
    ([[4, 0, 0], [0, 4, 0], [0, 0, 1e-4]], "Å long"),
])
def test_degenerate_lattice_is_refused_with_a_reason(matrix, reason):
    structure = Structure(Lattice(matrix, pbc=(True, True, True)), ["Si"], [[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match=reason):
        render_structure(structure, RenderSettings(size=32))


def test_settings_are_hashable_and_validated():
    assert hash(RenderSettings()) == hash(RenderSettings())
    assert RenderSettings().key() != RenderSettings(size=512).key()
    with pytest.raises(ValueError):
        RenderSettings(fill=0)


def test_real_mirror_structures_all_render(mirror_dir):
    for record_id, structure in mp_structures(mirror_dir, 12):
        image, _ = render_with_notes(structure, RenderSettings(size=64))
        assert isinstance(image, Image.Image) and (np.asarray(image) < 250).any(), record_id
