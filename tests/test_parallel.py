"""Ray scale-out: a local Ray cluster of 2 workers gives what the serial path gives, through the
same caches (ECD images of real MP densities, robocrys text cache)."""

from __future__ import annotations

import numpy as np
import pytest

from matmodal.config import Settings
from matmodal.parallel import Engine, parallel_map, shutdown
from matmodal.sources.charge_density import cell_electrons


def test_serial_is_the_default(monkeypatch):
    monkeypatch.delenv("MATMODAL_RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MATMODAL_RAY_WORKERS", raising=False)
    assert not Engine.from_env().enabled and not Engine(workers=1).enabled
    monkeypatch.setenv("MATMODAL_RAY_WORKERS", "2")
    assert Engine.from_env() == Engine(workers=2) and Engine(address="ray://head:10001").enabled
    assert parallel_map(abs, [-1, 2, -3]) == [1, 2, 3]


@pytest.mark.slow
def test_local_ray_cluster_of_two_workers(mirror_dir, tmp_path):
    from matmodal.datasets.massa import MassaOptions, build_massa_density
    from matmodal.modalities.ecd import EcdSettings
    from matmodal.sources.materials_project import MaterialsProject

    mp = MaterialsProject(Settings(mirror_dir=mirror_dir))
    structures = [mp.structure(m) for m in ("mp-1", "mp-1000", "mp-1002165", "mp-864620")]
    engine = Engine(workers=2)
    try:
        assert parallel_map(cell_electrons, structures, engine) == [9.0, 16.0, 18.0, 45.0]

        def build(folder, engine):
            settings = Settings(mirror_dir=mirror_dir, cache_dir=tmp_path / folder / "c", output_dir=tmp_path / folder)
            options = MassaOptions(ecd=EcdSettings(pixels=32), robocrys=False, iqr_k=None, limit=8, engine=engine)
            return build_massa_density(options=options, settings=settings, fcc_only=False)

        ray_built, serial = build("ray", engine), build("serial", None)
    finally:
        shutdown()
    assert ray_built.provenance["massa"]["engine"] == {"engine": "ray", "address": None, "workers": 2}
    assert list(ray_built.table["material_id"]) == list(serial.table["material_id"]) and len(serial.table) >= 4
    for column in ("rho_min", "rho_max", "slice_min", "slice_max", "pairing_mismatch"):
        assert np.allclose(ray_built.table[column], serial.table[column])
    assert ray_built.manifest.equals(serial.manifest)
