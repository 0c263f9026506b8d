"""Headless rasteriser: orthographic projection, z-buffer, shaded spheres and cylinders (numpy only).

Every primitive is turned into *fragments* (one per covered pixel centre) with row spans computed
in closed form, all primitives of a kind at once; a z-buffer keeps the nearest fragment of each
pixel (``np.maximum.at``), and only the winners are shaded. Antialiasing is supersampling
(``RenderSettings.supersample`` x, box filter). Translucent polyhedra are blended after the
opaque pass with an order-independent rule. The output is deterministic for the same scene.

Coordinates: screen x to the right, y up, z towards the viewer (Å); pixel coordinates have y down.
Default view: down the c axis with b up (x along the part of a perpendicular to both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from matmodal.modalities.image.scene import Scene
from matmodal.modalities.image.settings import RenderSettings

LIGHT = np.array([-1.0, 1.0, 1.2]) / np.linalg.norm([-1.0, 1.0, 1.2])  # upper left, in front
HALF = (LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(LIGHT + np.array([0.0, 0.0, 1.0]))
SKY, GROUND = 1.0, 0.62  # hemisphere light (Crystal Toolkit's scene uses a hemisphere light)
DIFFUSE, SPECULAR, SHININESS_LOG2 = 0.22, 0.30, 5  # Blinn exponent 2**5 = 32
CELL_RGB = np.array([0.0, 0.0, 0.0])


def view_matrix(lattice: np.ndarray, tilt_deg: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rows: screen x, y, z axes in Cartesian coordinates (look down c, b up, then tilt)."""
    z = lattice[2] / np.linalg.norm(lattice[2])
    y = lattice[1] - (lattice[1] @ z) * z
    y /= np.linalg.norm(y)
    rot = np.array([np.cross(y, z), y, z])
    ax, ay = np.radians(tilt_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    return ry @ rx @ rot


@dataclass
class Frame:
    """Screen (Å) -> pixel mapping of one picture: pixel = (x - cx) * scale + S/2, y flipped."""

    scale: float  # px per Å (supersampled pixels)
    cx: float
    cy: float
    side: int  # supersampled image edge (px)

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        """Screen-space points (..., 3) in Å -> pixel x, pixel y (down), depth (px, larger = nearer)."""
        out = np.empty_like(pts, dtype=float)
        out[..., 0] = (pts[..., 0] - self.cx) * self.scale + self.side / 2
        out[..., 1] = self.side / 2 - (pts[..., 1] - self.cy) * self.scale
        out[..., 2] = pts[..., 2] * self.scale
        return out


def frame_for(scene: Scene, screen: dict[str, np.ndarray], settings: RenderSettings) -> Frame:
    """Fit the scene into `fill` of the image, or a fixed Å-per-pixel scale centred on the cell."""
    side = settings.size * settings.supersample
    if settings.framing == "fixed":
        centre = screen["center"]
        return Frame(settings.supersample / settings.angstrom_per_px, centre[0], centre[1], side)
    atoms, r = screen["atoms"], scene.radii
    lows = [atoms[:, :2].min(axis=0) - r.max()] if len(atoms) else []
    highs = [atoms[:, :2].max(axis=0) + r.max()] if len(atoms) else []
    if len(screen["cell"]):
        lows.append(screen["cell"].reshape(-1, 3)[:, :2].min(axis=0))
        highs.append(screen["cell"].reshape(-1, 3)[:, :2].max(axis=0))
    lo, hi = np.min(lows, axis=0), np.max(highs, axis=0)
    extent = max(float((hi - lo).max()), 1e-6)
    centre = (lo + hi) / 2
    return Frame(settings.fill * side / extent, centre[0], centre[1], side)


# ----------------------------------------------------------------------------- spans


def _row_spans(ymin: np.ndarray, ymax: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(primitive, row) for every pixel row whose centre lies in [ymin, ymax] of each primitive."""
    r0 = np.maximum(np.ceil(ymin - 0.5), 0).astype(np.int64)
    r1 = np.minimum(np.floor(ymax - 0.5), side - 1).astype(np.int64)
    count = np.maximum(r1 - r0 + 1, 0)
    prim = np.repeat(np.arange(len(ymin)), count)
    row = r0[prim] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return prim, row


def _col_spans(prim: np.ndarray, row: np.ndarray, lo: np.ndarray, hi: np.ndarray, side: int):
    """Expand (primitive, row, x-interval) into (primitive, pixel x, pixel y) fragments."""
    c0 = np.maximum(np.ceil(lo - 0.5), 0).astype(np.int64)
    c1 = np.minimum(np.floor(hi - 0.5), side - 1).astype(np.int64)
    count = np.maximum(c1 - c0 + 1, 0)
    rep = np.repeat(np.arange(len(prim)), count)
    col = c0[rep] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return prim[rep], col, row[rep]


def _halfplane_fragments(a: np.ndarray, b: np.ndarray, c: np.ndarray, ymin: np.ndarray,
                         ymax: np.ndarray, side: int):
    """Pixels inside convex polygons given as half-planes a*x + b*y <= c, arrays (P, K)."""
    prim, row = _row_spans(ymin, ymax, side)
    y = row + 0.5
    rhs = c[prim] - b[prim] * y[:, None]  # a * x <= rhs
    ap = a[prim]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = rhs / ap
    lo = np.where(ap < 0, bound, -np.inf).max(axis=1)
    hi = np.where(ap > 0, bound, np.inf).min(axis=1)
    empty = ((ap == 0) & (rhs < 0)).any(axis=1)
    hi = np.where(empty, -np.inf, hi)
    return _col_spans(prim, row, lo, hi, side)


# ----------------------------------------------------------------------------- primitives


@dataclass
class Fragments:
    """Candidate pixels of one primitive kind, and how to shade the winners."""

    pix: np.ndarray  # flat pixel index
    z: np.ndarray  # depth (px, larger = nearer)
    shade: Callable[[np.ndarray], np.ndarray]  # winner mask -> RGB in [0, 1]


def _lit(rgb: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
    """Hemisphere + directional + Blinn specular lighting; normals in screen space (y up)."""
    hemi = GROUND + (SKY - GROUND) * 0.5 * (1 + ny)
    lamb = np.maximum(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0)
    spec = np.maximum(nx * HALF[0] + ny * HALF[1] + nz * HALF[2], 0)
    for _ in range(SHININESS_LOG2):  # repeated squaring: much faster than a float power
        spec *= spec
    spec *= SPECULAR
    out = rgb * (hemi * (1 - DIFFUSE) + DIFFUSE * lamb)[:, None] + spec[:, None]
    return np.clip(out, 0, 1)


def sphere_fragments(centres: np.ndarray, radii: np.ndarray, rgb: np.ndarray, side: int) -> Fragments:
    """Shaded spheres: centres (n, 3) in px (x, y down, depth), radii (n,) px, rgb (n, 3) in [0, 1]."""
    prim, row = _row_spans(centres[:, 1] - radii, centres[:, 1] + radii, side)
    dy = row + 0.5 - centres[prim, 1]
    half = np.sqrt(np.maximum(radii[prim] ** 2 - dy**2, 0))
    prim, col, row = _col_spans(prim, row, centres[prim, 0] - half, centres[prim, 0] + half, side)
    dx = col + 0.5 - centres[prim, 0]
    dy = row + 0.5 - centres[prim, 1]
    r = radii[prim]
    h = np.sqrt(np.maximum(r**2 - dx**2 - dy**2, 0))

    def shade(win: np.ndarray) -> np.ndarray:
        rw = r[win]
        return _lit(rgb[prim[win]], dx[win] / rw, -dy[win] / rw, h[win] / rw)

    return Fragments(row * side + col, centres[prim, 2] + h, shade)


def cylinder_fragments(ends: np.ndarray, radius: np.ndarray, rgb: np.ndarray, side: int,
                       flat: bool = False) -> Fragments:
    """Cylinders (open ends) from ends (m, 2, 3) in px with radii (m,) px; `flat` = unlit lines."""
    a, b = ends[:, 0], ends[:, 1]
    v = b - a
    length2 = np.hypot(v[:, 0], v[:, 1])
    keep = length2 > 0.5  # seen end-on: hidden in the atom it starts from
    a, v, radius, rgb, length2 = a[keep], v[keep], radius[keep], rgb[keep], length2[keep]
    length3 = np.linalg.norm(v, axis=1)
    d = v[:, :2] / length2[:, None]
    n = np.column_stack([-d[:, 1], d[:, 0]])
    ad, an = (a[:, :2] * d).sum(1), (a[:, :2] * n).sum(1)
    ca = np.column_stack([-d[:, 0], d[:, 0], n[:, 0], -n[:, 0]])
    cb = np.column_stack([-d[:, 1], d[:, 1], n[:, 1], -n[:, 1]])
    cc = np.column_stack([-ad, length2 + ad, radius + an, radius - an])
    corners_y = a[:, 1, None] + np.column_stack([np.zeros_like(length2), v[:, 1]])
    spread = np.abs(n[:, 1]) * radius
    prim, col, row = _halfplane_fragments(ca, cb, cc, corners_y.min(1) - spread, corners_y.max(1) + spread, side)
    px, py = col + 0.5 - a[prim, 0], row + 0.5 - a[prim, 1]
    t = px * d[prim, 0] + py * d[prim, 1]
    s = px * n[prim, 0] + py * n[prim, 1]
    r = radius[prim]
    sin_t = length2[prim] / length3[prim]
    uz = v[prim, 2] / length3[prim]
    sin_p = np.sqrt(np.maximum(1 - (s / r) ** 2, 0))
    if flat:
        z = a[prim, 2] + t / length2[prim] * v[prim, 2] + r * sin_p
    else:
        tau = (t + r * sin_p * uz) / sin_t
        z = a[prim, 2] + tau * uz + r * sin_p * sin_t

    def shade(win: np.ndarray) -> np.ndarray:
        pw = prim[win]
        if flat:
            return rgb[pw]
        cos_p, sp, u = s[win] / r[win], sin_p[win], uz[win]
        nx = cos_p * n[pw, 0] - sp * u * d[pw, 0]
        ny = cos_p * n[pw, 1] - sp * u * d[pw, 1]
        return _lit(rgb[pw], nx, -ny, sp * sin_t[win])

    return Fragments(row * side + col, z, shade)


def triangle_fragments(tri: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of triangles (t, 3, 3) in px: (triangle, flat pixel index, depth)."""
    v0, v1, v2 = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (v1[:, 0] - v0[:, 0]) * (v2[:, 1] - v0[:, 1]) - (v1[:, 1] - v0[:, 1]) * (v2[:, 0] - v0[:, 0])
    keep = np.abs(area) > 1e-6
    tri, area = tri[keep], area[keep]
    sign = np.sign(area)[:, None]
    start, edge = tri[:, :, :2], np.roll(tri[:, :, :2], -1, axis=1) - tri[:, :, :2]
    ca = sign * edge[:, :, 1]
    cb = -sign * edge[:, :, 0]
    cc = sign * (edge[:, :, 1] * start[:, :, 0] - edge[:, :, 0] * start[:, :, 1])
    prim, col, row = _halfplane_fragments(ca, cb, cc, tri[:, :, 1].min(1), tri[:, :, 1].max(1), side)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = tri[prim, 0, 2] - (normal[prim, 0] * (col + 0.5 - tri[prim, 0, 0])
                               + normal[prim, 1] * (row + 0.5 - tri[prim, 0, 1])) / normal[prim, 2]
    return np.flatnonzero(keep)[prim], row * side + col, np.nan_to_num(z, nan=-np.inf)


# ----------------------------------------------------------------------------- picture


def visible_bonds(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Half-bonds without the part hidden inside their start atom: (bonds (k, 2, 3), colours (k, 3)).

    A tube of radius rb is inside a sphere of radius R up to sqrt(R^2 - rb^2) along its axis, so
    that part can never be seen; dropping it saves about 40% of the bond fragments.
    """
    vec = scene.bonds[:, 1] - scene.bonds[:, 0]
    length = np.linalg.norm(vec, axis=1)
    hidden = np.sqrt(np.maximum(scene.bond_start_radius**2 - scene.bond_radius**2, 0))
    keep = length > hidden + 1e-9
    start = scene.bonds[keep, 0] + vec[keep] * (hidden[keep] / length[keep])[:, None]
    return np.stack([start, scene.bonds[keep, 1]], axis=1), scene.bond_colors[keep]


def _screen(scene: Scene, settings: RenderSettings) -> dict[str, np.ndarray]:
    rot = view_matrix(scene.lattice, settings.tilt_deg)
    bonds, bond_rgb = visible_bonds(scene)
    poly = [tri @ rot.T for tri, _ in scene.polyhedra]
    return {"atoms": scene.atoms @ rot.T, "bonds": bonds @ rot.T, "bond_rgb": bond_rgb,
            "cell": scene.cell_edges @ rot.T, "center": scene.center @ rot.T, "poly": poly}


def hidden_behind(shape: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Mask of primitives with the same projected shape as a nearer one (so wholly hidden).

    Looking down c, every atom or bond repeated by a c translation projects onto the same
    pixels; only the nearest copy can be seen. ``shape`` rows: projected geometry in px.
    """
    if len(depth) < 2:
        return np.zeros(len(depth), dtype=bool)
    order = np.argsort(-depth, kind="stable")
    quantised = np.round(shape[order] * 64).astype(np.int64)
    _, first = np.unique(quantised, axis=0, return_index=True)
    hidden = np.ones(len(depth), dtype=bool)
    hidden[order[first]] = False
    return hidden


def _opaque(frags: list[Fragments], image: np.ndarray, zbuf: np.ndarray) -> None:
    """Z-buffer the fragments of all kinds together and write the shaded winners."""
    for f in frags:
        np.maximum.at(zbuf, f.pix, f.z)
    for f in frags:
        win = f.z >= zbuf[f.pix]
        if win.any():
            image[f.pix[win]] = to_uint8(f.shade(win))


def _translucent(scene: Scene, poly: list[np.ndarray], frame: Frame, image: np.ndarray,
                 zbuf: np.ndarray, opacity: float) -> None:
    """Blend polyhedron faces in front of the opaque scene (order-independent: k faces -> 1-(1-a)^k)."""
    if not poly:
        return
    tris = np.concatenate([frame.to_px(t) for t in poly])
    owner = np.concatenate([np.full(len(t), k) for k, t in enumerate(poly)])
    rgb = np.array([c for _, c in scene.polyhedra], dtype=float)[owner] / 255
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    normal[:, 1] *= -1  # pixel y down -> screen y up
    normal *= np.sign(normal[:, 2:3]) + (normal[:, 2:3] == 0)
    face_rgb = _lit(rgb, normal[:, 0], normal[:, 1], normal[:, 2])
    tri, pix, z = triangle_fragments(tris, frame.side)
    front = z > zbuf[pix]
    tri, pix = tri[front], pix[front]
    if not len(pix):
        return
    n_px = image.shape[0]
    k = np.bincount(pix, minlength=n_px)
    mean = np.stack([np.bincount(pix, weights=face_rgb[tri, ch], minlength=n_px) for ch in range(3)], 1)
    hit = np.flatnonzero(k)
    alpha = (1 - (1 - opacity) ** k[hit])[:, None]
    blend = image[hit] / 255 * (1 - alpha) + mean[hit] / k[hit, None] * alpha
    image[hit] = to_uint8(blend)


def rasterise(scene: Scene, settings: RenderSettings) -> Image.Image:
    """Render a scene to an RGB image of settings.size px (box-filtered from the supersampled one)."""
    screen = _screen(scene, settings)
    frame = frame_for(scene, screen, settings)
    side = frame.side
    image = np.empty((side * side, 3), dtype=np.uint8)
    image[:] = np.asarray(settings.background, dtype=np.uint8)
    zbuf = np.full(side * side, -np.inf)
    atoms, radii = frame.to_px(screen["atoms"]), scene.radii * frame.scale
    seen = ~hidden_behind(np.column_stack([atoms[:, :2], radii]), atoms[:, 2])
    frags = [sphere_fragments(atoms[seen], radii[seen], scene.colors[seen] / 255, side)]
    if len(screen["bonds"]):
        bonds = frame.to_px(screen["bonds"])
        shape = np.column_stack([bonds[:, :, :2].reshape(-1, 4), bonds[:, 1, 2] - bonds[:, 0, 2]])
        seen = ~hidden_behind(shape, bonds[:, 0, 2])
        frags.append(cylinder_fragments(bonds[seen], np.full(seen.sum(), scene.bond_radius * frame.scale),
                                        screen["bond_rgb"][seen] / 255, side))
    if len(scene.cell_edges):
        width = max(settings.cell_line_px * settings.supersample / 2, 0.5)
        frags.append(cylinder_fragments(frame.to_px(screen["cell"]), np.full(len(scene.cell_edges), width),
                                        np.tile(CELL_RGB, (len(scene.cell_edges), 1)), side, flat=True))
    _opaque(frags, image, zbuf)
    _translucent(scene, screen["poly"], frame, image, zbuf, settings.polyhedra_opacity)
    big = Image.fromarray(image.reshape(side, side, 3))
    return big.reduce(settings.supersample) if settings.supersample > 1 else big


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded)."""
    return (rgb * 255 + 0.5).astype(np.uint8)
