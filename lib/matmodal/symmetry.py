"""Space groups, with one spglib tolerance for the whole project (a leaf module)."""

from __future__ import annotations

from typing import Any

SYMPREC = 0.1  # Å: spglib distance tolerance wherever a space group is derived


def spacegroup_number(structure: Any, symprec: float = SYMPREC) -> int | None:
    """International space-group number of a pymatgen ``Structure`` (spglib at ``symprec`` Å);
    None when spglib fails on the cell."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:  # spglib raises several types on degenerate cells
        return None
