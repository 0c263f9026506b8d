"""Quality rules that travel with a material, whichever dataset it enters.

* Moduli: a material whose elastic tensor is not positive definite (mechanically unstable) or
  singular has no trustworthy K_VRH/G_VRH in *any* dataset, from any release: the ids come from
  every elasticity source that carries a tensor (mirror: ``mp_elastic_1000.json``).
* Target values: :func:`matmodal.targets.check_value` (type, finiteness, physical range) is
  applied to every raw value a reader turns into a target; a rejected value becomes NaN and the
  reason goes to the manifest as a degraded issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matmodal.manifest import Issue, Severity
from matmodal.records import vrh_moduli
from matmodal.sources.materials_project import ELASTIC_FILE, MaterialsProject
from matmodal.targets import TargetName, check_value

MODULI = (TargetName.k_vrh, TargetName.g_vrh)


def untrusted_moduli(mp: MaterialsProject, material_ids: Sequence[str] | None = None) -> dict[str, str]:
    """``{material_id: reason}`` for materials whose elastic tensor fails the stability check
    (not positive definite, singular, not a finite 6x6 matrix)."""
    frame = mp.elasticity(material_ids)
    origin = ELASTIC_FILE if mp.offline else "materials.elasticity"
    problems = {}
    for row in frame.to_dict("records"):
        tensor = row.get("elasticity.elastic_tensor")
        if tensor is None:
            continue
        try:
            vrh_moduli(tensor)
        except (ValueError, TypeError) as error:
            problems[str(row["material_id"])] = f"elastic tensor in {origin}: {error}; K_VRH/G_VRH not trusted"
    return problems


def checked(record_id: str, name: TargetName, value: Any, issues: list[Issue], source: str) -> float | None:
    """``value`` if it is a valid ``name`` value, else None with the reason added to ``issues``."""
    number, problem = check_value(name, value)
    if problem:
        issues.append(Issue(record_id, "targets", Severity.degraded, f"{problem}; set to NaN", source))
    return number
