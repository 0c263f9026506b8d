"""Every dataset the project can build: one name enum and one builder registry.

The CLI, the notebooks and the Layout use :class:`DatasetName` and :func:`build_dataset`; nothing
else dispatches on dataset names. Builders are imported lazily (``"module:function"``), so this
module imports nothing heavy and cannot form an import cycle.

Add a dataset with one entry in ``SPECS``::

    DatasetSpec("mp_summary", "matmodal.datasets.mp_summary:build_mp_summary", "MP summary ..."),

A builder is called as ``builder(options=..., settings=..., **kwargs)`` and returns a
:class:`matmodal.datasets.build.Dataset`; ``options`` is the builder's own options object
(``BuildOptions`` for the costa2025-style tables, ``MassaOptions`` for massa).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class DatasetSpec:
    """One buildable dataset: its name, where its builder lives, and a one-line description."""

    name: str
    builder: str  # "package.module:function"
    description: str
    build_options: bool = True  # takes matmodal.datasets.build.BuildOptions (False: its own options)
    accepts: tuple[str, ...] = ()  # further keyword arguments the CLI may pass (e.g. files, sample)

    def load_builder(self) -> Callable[..., Any]:
        module, _, function = self.builder.partition(":")
        return getattr(import_module(module), function)


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("alexandria", "matmodal.datasets.costa:build_alexandria",
                "costa2025: Alexandria PBE entries with the seven targets (mirror: 108 entries)",
                accepts=("files", "sample")),
    DatasetSpec("mp_elastic", "matmodal.datasets.elastic:build_elastic",
                "Materials Project elastic tensors: K_VRH, G_VRH (GPa), vol/atom (mirror: 1,000 rows)"),
    DatasetSpec("massa", "matmodal.datasets.massa:build_massa",
                "massa2024: MP FCC crystals with ECD (111) slices, robocrys text levels, K_VRH",
                build_options=False),
    DatasetSpec("mp_summary", "matmodal.datasets.mp_summary:build_mp_summary",
                "costa2025 scale: seeded N-sample (default 1,000; --sample 0 = all 34,738) of MP summary data: "
                "e_form, gap, vol/atom, mag/vol, e_fermi (no e_hull, Etot/atom, DOS/atom)", accepts=("sample",)),
    DatasetSpec("mp_elastic_2025", "matmodal.datasets.elastic:build_elastic_2025",
                "MP 2025 elasticity release, binaries: K_VRH, G_VRH (GPa), vol/atom (mirror: 3,884 rows)"),
    DatasetSpec("massa_mp_density", "matmodal.datasets.massa:build_massa_density",
                "massa2024 on real MP charge densities, FCC only: verified grid/structure pairs, e_form, e_fermi, K_VRH",
                build_options=False),
    DatasetSpec("massa_mp_density_any", "matmodal.datasets.massa:build_massa_density_any",
                "massa2024 on real MP charge densities, any lattice (larger than the paper's FCC population)",
                build_options=False),
    DatasetSpec("custom", "matmodal.datasets.custom:build_custom",
                "your own structures (CIF/POSCAR/JSON) + a CSV of numeric properties as targets",
                accepts=("structures", "properties", "id_column", "targets", "dataset_name")),
)

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in SPECS}
DatasetName = StrEnum("DatasetName", [(spec.name, spec.name) for spec in SPECS])
DatasetName.__doc__ = "Names of the buildable datasets (one member per entry of ``SPECS``)."


def spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; a clear error listing the known names otherwise."""
    try:
        return REGISTRY[str(name)]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(REGISTRY)})") from None


def build_dataset(name: str, *, options: Any = None, settings: Any = None, **kwargs: Any) -> Any:
    """Build dataset ``name`` with its registered builder (``options``: the builder's own options)."""
    builder = spec(name).load_builder()
    if options is not None:
        kwargs["options"] = options
    return builder(settings=settings, **kwargs)
