"""plots.gallery: a grid of rendered pictures with formula captions."""

from __future__ import annotations

import pytest

from matmodal.modalities.image import RenderSettings, render_many
from matmodal.plots.gallery import formula_label, gallery
from tests.modalities.test_image import mp_structures


def test_gallery_of_real_renders(tmp_path, mirror_dir):
    items = mp_structures(mirror_dir, 7)
    paths, _ = render_many(items, tmp_path, RenderSettings(size=48), progress=False)
    captions = [s.composition.reduced_formula for _, s in items]
    fig = gallery([paths[rid] for rid, _ in items] + [tmp_path / "missing.png"], [*captions, "X"], ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 9 and len(shown) == 7
    assert shown[0].get_title() == formula_label(captions[0])
    fig.savefig(tmp_path / "gallery.png")


def test_formula_label_and_length_check():
    assert formula_label("Fe2O3") == "Fe$_{2}$O$_{3}$"
    with pytest.raises(ValueError):
        gallery([], ["a"])
