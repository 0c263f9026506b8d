"""The TARGETS registry: every predicted property, its unit, its paper label and how it is computed.

Names are fixed once here; tables show the papers' labels through :data:`LABELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matmodal.records import MaterialRecord


class TargetName(StrEnum):
    gap = "gap"
    e_form = "e_form"
    e_hull = "e_hull"
    e_tot_per_atom = "e_tot_per_atom"
    mag_per_vol = "mag_per_vol"
    vol_per_atom = "vol_per_atom"
    dos_per_atom = "dos_per_atom"
    k_vrh = "k_vrh"
    g_vrh = "g_vrh"
    e_fermi = "e_fermi"


@dataclass(frozen=True)
class Target:
    """A regression target: ``compute(record)`` returns its value in ``unit`` (or None)."""

    name: TargetName
    label: str  # the papers' column label
    unit: str
    definition: str
    compute: Callable[[MaterialRecord], float | None]


def _field(key: str) -> Callable[[MaterialRecord], float | None]:
    return lambda record: record.number(key)


def _per_site(key: str) -> Callable[[MaterialRecord], float | None]:
    def compute(record: MaterialRecord) -> float | None:
        value = record.number(key)
        return None if value is None else value / record.nsites

    return compute


def _mag_per_vol(record: MaterialRecord) -> float | None:
    value = record.number("total_mag")
    return None if value is None else value / record.volume


TARGETS: dict[TargetName, Target] = {
    t.name: t
    for t in [
        Target(TargetName.gap, "Gap", "eV", "band_gap_ind (indirect band gap)", _field("band_gap_ind")),
        Target(TargetName.e_form, "Eform", "eV/atom", "e_form (formation energy per atom)", _field("e_form")),
        Target(TargetName.e_hull, "Ehull", "eV/atom", "e_above_hull", _field("e_above_hull")),
        Target(TargetName.e_tot_per_atom, "Etot/atom", "eV/atom", "energy_total / nsites", _per_site("energy_total")),
        Target(TargetName.mag_per_vol, "Mag/vol", "μB/Å³", "total_mag / volume", _mag_per_vol),
        Target(TargetName.vol_per_atom, "Vol/atom", "Å³/atom", "volume / nsites", lambda r: r.volume / r.nsites),
        Target(TargetName.dos_per_atom, "DOS/atom", "states/(eV·atom)", "dos_ef / nsites", _per_site("dos_ef")),
        Target(TargetName.k_vrh, "K_VRH", "GPa", "Voigt-Reuss-Hill bulk modulus of the 6x6 elastic tensor", _field("k_vrh")),
        Target(TargetName.g_vrh, "G_VRH", "GPa", "Voigt-Reuss-Hill shear modulus of the 6x6 elastic tensor", _field("g_vrh")),
        Target(TargetName.e_fermi, "Efermi", "eV", "efermi (Fermi energy)", _field("efermi")),
    ]
}

COSTA_TARGETS: tuple[TargetName, ...] = (
    TargetName.gap, TargetName.e_form, TargetName.e_hull, TargetName.e_tot_per_atom,
    TargetName.mag_per_vol, TargetName.vol_per_atom, TargetName.dos_per_atom,
)
ELASTIC_TARGETS: tuple[TargetName, ...] = (TargetName.k_vrh, TargetName.g_vrh, TargetName.vol_per_atom)
LABELS: dict[str, str] = {t.name.value: t.label for t in TARGETS.values()}
UNITS: dict[str, str] = {t.name.value: t.unit for t in TARGETS.values()}
