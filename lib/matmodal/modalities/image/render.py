"""One structure -> one picture (PIL image or deterministic PNG bytes with its cache key inside)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

from PIL import Image, PngImagePlugin
from pymatgen.core import Structure

from matmodal.hashing import structure_digest
from matmodal.modalities.image.raster import rasterise
from matmodal.modalities.image.scene import build_scene
from matmodal.modalities.image.settings import RenderSettings

KEY_CHUNK = "matmodal-render-key"  # PNG tEXt chunk: hash of structure + settings + renderer version
NOTES_CHUNK = "matmodal-render-notes"  # PNG tEXt chunk: JSON list of degradation notes


def render_with_notes(structure: Structure, settings: RenderSettings) -> tuple[Image.Image, list[str]]:
    """The picture and the reasons it is degraded (empty when it is not); ValueError if unrenderable."""
    scene = build_scene(structure, settings)
    return rasterise(scene, settings), scene.notes


def render_structure(structure: Structure, settings: RenderSettings) -> Image.Image:
    """Render a pymatgen Structure to an RGB image of ``settings.size`` px.

    Raises ValueError with the reason for input that cannot be drawn (no sites, non-finite or
    degenerate lattice).
    """
    return render_with_notes(structure, settings)[0]


def cache_key(structure: Structure, settings: RenderSettings) -> str:
    """Key of one picture: structure digest + every render option + renderer version."""
    return hashlib.sha256(f"{structure_digest(structure)}\n{settings.key()}".encode()).hexdigest()


def png_bytes(image: Image.Image, key: str, notes: list[str], compress_level: int = 6) -> bytes:
    """PNG bytes with the cache key and notes as tEXt chunks (no time stamps: deterministic)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY_CHUNK, key)
    info.add_text(NOTES_CHUNK, json.dumps(notes))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()


def read_stamp(path: Path) -> tuple[str | None, list[str]]:
    """(cache key, notes) stored in a PNG written by :func:`png_bytes`; (None, []) if absent/unreadable."""
    try:
        with Image.open(path) as im:
            text = dict(im.text)
    except (OSError, SyntaxError, ValueError):
        return None, []
    try:
        notes = json.loads(text.get(NOTES_CHUNK, "[]"))
    except json.JSONDecodeError:
        notes = []
    return text.get(KEY_CHUNK), list(notes)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to path via a temporary file in the same folder (no half-written PNGs)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
