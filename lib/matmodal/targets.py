"""The TARGETS registry: every predicted property, its unit, its paper label, how it is computed
and the physical range a value must lie in.

Names are fixed once here; tables show the papers' labels through :data:`LABELS`.
:func:`check_value` is the one type + range check for a target value (used by the dataset
builder for every record, and by any reader that produces target values).
"""

from __future__ import annotations

import math
import numbers
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
    """A regression target: ``compute(record)`` returns its value in ``unit`` (or None).

    ``minimum``/``maximum`` (in ``unit``, inclusive) bound the physically possible values, with
    room for every real DFT value in the sources (e.g. Alexandria's small negative DOS at E_F
    from smearing); a value outside them is an error in the data, not a material.
    """

    name: TargetName
    label: str  # the papers' column label
    unit: str
    definition: str
    compute: Callable[[MaterialRecord], float | None]
    minimum: float = -math.inf
    maximum: float = math.inf

    @property
    def range_text(self) -> str:
        return f"[{self.minimum:g}, {self.maximum:g}] {self.unit}"


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
        Target(TargetName.gap, "Gap", "eV", "band_gap_ind (indirect band gap)", _field("band_gap_ind"),
               0.0, 30.0),
        Target(TargetName.e_form, "Eform", "eV/atom", "e_form (formation energy per atom)", _field("e_form"),
               -15.0, 15.0),
        Target(TargetName.e_hull, "Ehull", "eV/atom", "e_above_hull", _field("e_above_hull"), -1e-3, 15.0),
        Target(TargetName.e_tot_per_atom, "Etot/atom", "eV/atom", "energy_total / nsites",
               _per_site("energy_total"), -100.0, 10.0),
        Target(TargetName.mag_per_vol, "Mag/vol", "μB/Å³", "total_mag / volume", _mag_per_vol, -1.0, 1.0),
        Target(TargetName.vol_per_atom, "Vol/atom", "Å³/atom", "volume / nsites", lambda r: r.volume / r.nsites,
               1.0, 1000.0),
        Target(TargetName.dos_per_atom, "DOS/atom", "states/(eV·atom)", "dos_ef / nsites", _per_site("dos_ef"),
               -0.01, 100.0),
        Target(TargetName.k_vrh, "K_VRH", "GPa", "Voigt-Reuss-Hill bulk modulus of the 6x6 elastic tensor",
               _field("k_vrh"), 0.0, 1000.0),
        Target(TargetName.g_vrh, "G_VRH", "GPa", "Voigt-Reuss-Hill shear modulus of the 6x6 elastic tensor",
               _field("g_vrh"), 0.0, 1000.0),
        Target(TargetName.e_fermi, "Efermi", "eV", "efermi (Fermi energy)", _field("efermi"), -50.0, 50.0),
    ]
}


def check_value(name: TargetName | str, value: object) -> tuple[float | None, str | None]:
    """``(value, problem)`` for a raw value of target ``name``.

    ``(float, None)`` for a finite real number inside the target's physical range;
    ``(None, None)`` for a missing value (None or NaN); ``(None, reason)`` for a value of the
    wrong type (a string ``"0.1"`` is *not* read as a number, nor is a bool), an infinite value
    or one outside the range. The reason names the target, the value, the unit and the range,
    so the caller can write it to the manifest as it is.
    """
    target = TARGETS[TargetName(name)]
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"{target.name.value} is a {type(value).__name__} ({_short(value)}), not a number"
    number = float(value)
    if math.isnan(number):
        return None, None
    if not math.isfinite(number):
        return None, f"{target.name.value}={number} is not finite"
    if not target.minimum <= number <= target.maximum:
        return None, (f"{target.name.value}={number:.6g} {target.unit} is outside the physical range "
                      f"{target.range_text}")
    return number, None


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


COSTA_TARGETS: tuple[TargetName, ...] = (
    TargetName.gap, TargetName.e_form, TargetName.e_hull, TargetName.e_tot_per_atom,
    TargetName.mag_per_vol, TargetName.vol_per_atom, TargetName.dos_per_atom,
)
ELASTIC_TARGETS: tuple[TargetName, ...] = (TargetName.k_vrh, TargetName.g_vrh, TargetName.vol_per_atom)
LABELS: dict[str, str] = {t.name.value: t.label for t in TARGETS.values()}
UNITS: dict[str, str] = {t.name.value: t.unit for t in TARGETS.values()}
