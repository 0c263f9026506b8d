"""MP elastic dataset: Materials Project structures with K_VRH, G_VRH (Voigt-Reuss-Hill) and vol/atom."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from matmodal.config import Settings, get_settings
from matmodal.datasets.build import BuildOptions, Dataset, build, safe_records
from matmodal.manifest import Issue
from matmodal.records import MaterialRecord, from_mp_elastic
from matmodal.sources.materials_project import ELASTIC_FILE, MaterialsProject
from matmodal.targets import ELASTIC_TARGETS

NAME = "mp_elastic"


def elastic_records(mp: MaterialsProject, material_ids: Sequence[str] | None = None) -> Iterator[MaterialRecord | Issue]:
    frame = mp.elasticity(material_ids)
    rows = ((row, "mp_elastic", i) for i, row in enumerate(frame.to_dict("records")))
    yield from safe_records(from_mp_elastic, rows)


def build_elastic(
    material_ids: Sequence[str] | None = None,
    *,
    options: BuildOptions | None = None,
    settings: Settings | None = None,
    name: str = NAME,
) -> Dataset:
    """Build the MP elastic table (mirror: ``mp_elastic_1000.json``; online: the elasticity endpoint)."""
    settings = settings or get_settings()
    mp = MaterialsProject(settings)
    source = {"file": ELASTIC_FILE} if mp.offline else {"endpoint": "materials.elasticity"}
    source["licence"] = "CC-BY-4.0 (Jain et al. 2013; de Jong et al. 2015)"
    return build(name, elastic_records(mp, material_ids), ELASTIC_TARGETS, options=options,
                 settings=settings, sources={"materials_project": source})
