"""Image modality: Crystal-Toolkit-style pictures of crystal structures, headless and fast.

>>> settings = RenderSettings(size=224)                      # costa2025 defaults, fast bond rule
>>> image = render_structure(structure, settings)             # PIL.Image.Image (RGB, 224 x 224)
>>> paths, issues = render_many([(record_id, structure), ...], Path("images"), settings, n_jobs=2)

``RenderSettings.crystal_toolkit()`` is the slower preset closest to Crystal Toolkit (CrystalNN
bonds, coordination polyhedra). Geometry rules: :mod:`.scene`; pixels: :mod:`.raster`;
colours/radii: :mod:`.colors`; batch + cache: :mod:`.batch`. See docs/image.md.
"""

from matmodal.modalities.image.batch import render_many
from matmodal.modalities.image.render import cache_key, render_structure, render_with_notes
from matmodal.modalities.image.scene import Scene, build_scene
from matmodal.modalities.image.settings import RENDERER_VERSION, RenderSettings

__all__ = [
    "RENDERER_VERSION",
    "RenderSettings",
    "Scene",
    "build_scene",
    "cache_key",
    "render_many",
    "render_structure",
    "render_with_notes",
]
