"""Scene geometry: which atoms, bonds, cell edges and polyhedra a picture shows (Crystal Toolkit rules).

Units: Cartesian Å. The rules follow Crystal Toolkit's ``StructureGraph.get_scene``:

* fractional coordinates are wrapped into [0, 1);
* every site is drawn, plus (``draw_image_atoms``) its periodic images on the cell boundary: a
  coordinate within 0.05 of 0 adds images shifted by +1 along every non-empty subset of those
  axes, a coordinate within 0.05 of 1 adds images shifted by -1 (an fcc conventional cell shows
  4 + 10 atoms);
* bonds come from a bond rule (cutoff or CrystalNN); with ``bonded_sites_outside_cell`` every atom
  bonded to a drawn atom is drawn too (one level), so bonds that cross the cell reach outside images;
* a bond is drawn only when both of its atoms are drawn, as two half-bonds from each atom to the
  midpoint, each in its own atom's colour;
* a polyhedron is drawn around an atom with more than 3 drawn neighbours that are all more
  electronegative than it (cation-centred), as the convex hull of the atom and its neighbours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from pymatgen.core import Element, Structure

from matmodal.modalities.image import colors
from matmodal.modalities.image.settings import RenderSettings

BOUNDARY_TOL = 0.05  # fractional distance to a cell face that draws a periodic image (Crystal Toolkit)
MIN_LENGTH = 0.1  # Å, shortest lattice vector accepted
MIN_FLATNESS = 1e-3  # |det| / (a b c): below this the lattice is (nearly) flat
_SUBSETS = np.array(
    [[int(k in s) for k in range(3)] for n in (1, 2, 3) for s in combinations(range(3), n)]
)  # the 7 non-empty subsets of the axes, as 0/1 rows
_BASE = 1024  # key packing of (site, image) pairs
_OFF = 512


@dataclass
class Edges:
    """Directed bond list: site i (image 0) is bonded to site j in image ``image`` (both directions present)."""

    i: np.ndarray
    j: np.ndarray
    image: np.ndarray  # (k, 3) int

    @classmethod
    def empty(cls) -> Edges:
        return cls(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3), int))


@dataclass
class Scene:
    """Everything a picture shows, in Cartesian Å (atom centres, half-bonds, cell edges, polyhedra)."""

    lattice: np.ndarray  # (3, 3) rows a, b, c
    atoms: np.ndarray  # (n, 3) centres
    radii: np.ndarray  # (n,)
    colors: np.ndarray  # (n, 3) uint8
    site_index: np.ndarray  # (n,) index of the structure site each atom shows
    images: np.ndarray  # (n, 3) lattice translation of each atom
    bonds: np.ndarray  # (m, 2, 3) half-bonds: atom centre -> bond midpoint
    bond_start_radius: np.ndarray  # (m,) radius of the atom each half-bond starts in (Å)
    bond_colors: np.ndarray  # (m, 3) uint8, colour of the atom each half-bond starts at
    bond_radius: float
    cell_edges: np.ndarray  # (12, 2, 3) or (0, 2, 3)
    polyhedra: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (triangles (t,3,3), rgb)
    notes: list[str] = field(default_factory=list)  # reasons the picture is degraded

    @property
    def center(self) -> np.ndarray:
        """Centre of the unit cell (Å)."""
        return self.lattice.sum(axis=0) / 2


def check_lattice(structure: Structure) -> None:
    """Raise ValueError for inputs that cannot be drawn: no sites, non-finite or degenerate lattice."""
    if len(structure) == 0:
        raise ValueError("structure has no sites")
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all() or not np.isfinite(structure.frac_coords).all():
        raise ValueError("lattice or coordinates are not finite")
    lengths = np.linalg.norm(matrix, axis=1)
    if lengths.min() < MIN_LENGTH:
        raise ValueError(f"degenerate lattice: a vector is {lengths.min():.3g} Å long (< {MIN_LENGTH} Å)")
    flatness = abs(np.linalg.det(matrix)) / lengths.prod()
    if flatness < MIN_FLATNESS:
        raise ValueError(f"degenerate lattice: vectors (nearly) coplanar, |det|/(abc) = {flatness:.2g}")


def site_symbols(structure: Structure) -> tuple[list[str], list[str]]:
    """Element symbol drawn for each site (majority species of a disordered site) and notes."""
    symbols, notes = [], []
    n_partial = 0
    for site in structure:
        species = sorted(site.species.items(), key=lambda kv: (-kv[1], str(kv[0])))
        if len(species) > 1 or species[0][1] < 1 - 1e-6:
            n_partial += 1
        sp = species[0][0]
        symbols.append(getattr(sp, "symbol", str(sp)))
    if n_partial:
        notes.append(f"partial occupancy on {n_partial} site(s): drawn as the majority species")
    return symbols, notes


def site_colors(symbols: list[str], settings: RenderSettings) -> tuple[np.ndarray, list[str]]:
    """RGB per site from the colour scheme; unknown elements get ``settings.unknown_color``."""
    table = colors.color_table(settings.color_scheme)
    missing = sorted({s for s in symbols if s not in table})
    rgb = np.array([table.get(s, settings.unknown_color) for s in symbols], dtype=np.uint8)
    notes = [f"no {settings.color_scheme} colour for {', '.join(missing)}: drawn in RGB{settings.unknown_color}"] if missing else []
    return rgb, notes


def cutoff_edges(structure: Structure, symbols: list[str], settings: RenderSettings, cap: float | None) -> Edges:
    """Bonds by distance (Å): bond_min_length <= d <= r_cov(i) + r_cov(j) + bond_tolerance and
    d <= bond_nn_factor x the nearest-neighbour distance of i or of j (a vectorised stand-in for
    CrystalNN: on 80 MP structures it finds 96% of CrystalNN's bonds, 93% of its bonds are CrystalNN's)."""
    r_cov = colors.as_array(symbols, colors.covalent_radius)
    r_max = 2 * r_cov.max() + settings.bond_tolerance
    if cap is not None:
        r_max = min(r_max, cap)
    center, point, image, dist = structure.get_neighbor_list(r_max, numerical_tol=1e-8)
    keep = (dist <= r_cov[center] + r_cov[point] + settings.bond_tolerance) & (dist >= settings.bond_min_length)
    nearest = np.full(len(structure), np.inf)
    np.minimum.at(nearest, center[keep], dist[keep])
    keep &= (dist <= settings.bond_nn_factor * nearest[center]) | (dist <= settings.bond_nn_factor * nearest[point])
    return Edges(center[keep].astype(int), point[keep].astype(int), np.rint(image[keep]).astype(int))


def crystalnn_edges(structure: Structure) -> Edges:
    """Bonds from pymatgen's CrystalNN (Crystal Toolkit's default), made symmetric."""
    from pymatgen.analysis.local_env import CrystalNN

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = CrystalNN().get_all_nn_info(structure)
    rows = [(i, nn["site_index"], *np.rint(nn["image"]).astype(int)) for i, nns in enumerate(info) for nn in nns]
    if not rows:
        return Edges.empty()
    arr = np.array(rows, dtype=int)
    reverse = np.column_stack([arr[:, 1], arr[:, 0], -arr[:, 2:]])
    both = np.unique(np.vstack([arr, reverse]), axis=0)
    return Edges(both[:, 0], both[:, 1], both[:, 2:])


def bond_edges(structure: Structure, symbols: list[str], settings: RenderSettings) -> tuple[Edges, list[str]]:
    """The bond list under the settings' rule; large cells get a capped cutoff search (noted)."""
    if settings.bonds == "none":
        return Edges.empty(), []
    if len(structure) >= settings.max_bond_sites:
        note = (f"{len(structure)} sites >= {settings.max_bond_sites}: bonds from the cutoff rule "
                f"with the search capped at {settings.capped_bond_radius} Å")
        return cutoff_edges(structure, symbols, settings, settings.capped_bond_radius), [note]
    if settings.bonds == "crystalnn":
        try:
            return crystalnn_edges(structure), []
        except Exception as exc:  # CrystalNN fails on some disordered/odd inputs
            note = f"CrystalNN failed ({type(exc).__name__}: {exc}); bonds from the cutoff rule"
            return cutoff_edges(structure, symbols, settings, None), [note]
    return cutoff_edges(structure, symbols, settings, None), []


def _keys(site: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Pack (site, image) pairs into one int64 each."""
    img = image.astype(np.int64) + _OFF
    return ((site.astype(np.int64) * _BASE + img[:, 0]) * _BASE + img[:, 1]) * _BASE + img[:, 2]


def boundary_images(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(site, image) of every periodic image on the cell boundary (Crystal Toolkit rule)."""
    sites, images = [], []
    for shift, near in ((1, frac <= BOUNDARY_TOL), (-1, frac >= 1 - BOUNDARY_TOL)):
        valid = (_SUBSETS[None, :, :] <= near[:, None, :]).all(axis=-1)  # (n, 7)
        site, subset = np.nonzero(valid)
        sites.append(site)
        images.append(shift * _SUBSETS[subset])
    return np.concatenate(sites), np.concatenate(images)


def _neighbours(edges: Edges, n_sites: int, site: np.ndarray, image: np.ndarray):
    """For each drawn (site, image): its bonded partners (row of the drawn atom, partner site, partner image)."""
    order = np.argsort(edges.i, kind="stable")
    degree = np.bincount(edges.i, minlength=n_sites)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    count = degree[site]
    row = np.repeat(np.arange(len(site)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    edge = order[start[site][row] + within]
    return row, edges.j[edge], image[row] + edges.image[edge]


def atoms_to_draw(frac: np.ndarray, edges: Edges, settings: RenderSettings) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique (site, image) pairs drawn: cell atoms, boundary images, bonded outside atoms."""
    n = len(frac)
    site, image = np.arange(n), np.zeros((n, 3), int)
    if settings.draw_image_atoms:
        s, i = boundary_images(frac)
        site, image = np.concatenate([site, s]), np.vstack([image, i])
    if settings.bonded_sites_outside_cell and len(edges.i):
        _, s, i = _neighbours(edges, n, site, image)
        site, image = np.concatenate([site, s]), np.vstack([image, i])
    _, first = np.unique(_keys(site, image), return_index=True)
    return site[first], image[first]


def half_bonds(edges: Edges, n_sites: int, site: np.ndarray, image: np.ndarray):
    """Half-bonds between drawn atoms: (row of the start atom, row of the end atom) pairs."""
    if not len(edges.i):
        return np.zeros(0, int), np.zeros(0, int)
    row, partner, partner_image = _neighbours(edges, n_sites, site, image)
    keys = _keys(site, image)  # sorted (atoms_to_draw returns np.unique order)
    target = _keys(partner, partner_image)
    pos = np.searchsorted(keys, target)
    pos[pos == len(keys)] = 0
    drawn = keys[pos] == target
    return row[drawn], pos[drawn]


def _electronegativity(symbol: str) -> float:
    try:
        x = Element(symbol).X
    except ValueError:
        return float("nan")
    return float(x)


def polyhedra(symbols: list[str], site: np.ndarray, centres: np.ndarray, rgb: np.ndarray,
              start: np.ndarray, end: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Convex hulls (triangles, colour) around atoms with > 3 drawn, all more electronegative, neighbours."""
    from scipy.spatial import ConvexHull, QhullError

    x_site = np.array([_electronegativity(s) for s in symbols])[site]
    out = []
    for atom in np.unique(start):
        nbrs = end[start == atom]
        if len(nbrs) <= 3 or not (x_site[nbrs] > x_site[atom]).all():
            continue
        points = np.vstack([centres[atom], centres[nbrs]])
        try:
            hull = ConvexHull(points)
        except (QhullError, ValueError):
            continue
        out.append((points[hull.simplices], rgb[atom]))
    return out


def cell_edges(lattice: np.ndarray) -> np.ndarray:
    """The 12 edges of the unit cell (Å), as (12, 2, 3)."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ lattice
    pairs = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    return np.array([[corners[a], corners[b]] for a, b in pairs])


def build_scene(structure: Structure, settings: RenderSettings) -> Scene:
    """The scene of a structure under the settings; ValueError when it cannot be drawn."""
    check_lattice(structure)
    symbols, notes = site_symbols(structure)
    rgb_site, color_notes = site_colors(symbols, settings)
    edges, bond_notes = bond_edges(structure, symbols, settings)
    lattice = structure.lattice.matrix
    frac = np.mod(structure.frac_coords, 1.0)
    site, image = atoms_to_draw(frac, edges, settings)
    centres = (frac[site] + image) @ lattice
    start, end = half_bonds(edges, len(structure), site, image)
    rgb = rgb_site[site]
    radii = colors.as_array(symbols, colors.display_radius, settings.radius_strategy)[site]
    poly = polyhedra(symbols, site, centres, rgb, start, end) if settings.polyhedra else []
    return Scene(
        lattice=lattice, atoms=centres, radii=radii, colors=rgb, site_index=site, images=image,
        bonds=np.stack([centres[start], (centres[start] + centres[end]) / 2], axis=1).reshape(-1, 2, 3),
        bond_start_radius=radii[start], bond_colors=rgb[start], bond_radius=settings.bond_radius,
        cell_edges=cell_edges(lattice) if settings.show_cell else np.zeros((0, 2, 3)),
        polyhedra=poly, notes=notes + color_notes + bond_notes,
    )
