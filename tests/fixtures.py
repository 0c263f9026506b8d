"""Test fixtures built by the tests themselves from real mirror entries (named as such)."""

from __future__ import annotations

import bz2
import copy
import json
from pathlib import Path
from typing import Any

ALEX_FILES = ("alexandria_000_first100_98.json.bz2", "hyllios_benchmark_pressure_10.json.bz2")


def real_entries(mirror: Path, name: str = ALEX_FILES[1]) -> list[dict[str, Any]]:
    """The entries of one real mirror file, parsed whole (independent of matmodal's streamer)."""
    return json.load(bz2.open(mirror / "alexandria" / name))["entries"]


def write_dump(path: Path, entries: list[Any]) -> Path:
    """An Alexandria-format bz2 dump file made by the test (fixture, not real data)."""
    path.write_bytes(bz2.compress(json.dumps({"entries": entries}).encode()))
    return path


def defective_entries(mirror: Path) -> dict[str, dict[str, Any]]:
    """Real entries, each altered with one defect; keyed by the defect."""
    base = real_entries(mirror)
    out: dict[str, dict[str, Any]] = {}

    def variant(key: str, index: int) -> dict[str, Any]:
        entry = copy.deepcopy(base[index])
        entry["data"]["mat_id"] = f"defect-{key}"
        out[key] = entry
        return entry

    variant("no_structure", 0).pop("structure")
    variant("nsites_zero", 1)["data"]["nsites"] = 0
    variant("nsites_mismatch", 2)["data"]["nsites"] = 99
    flat = variant("zero_volume", 3)["structure"]["lattice"]
    flat["matrix"][2] = list(flat["matrix"][1])
    partial = variant("partial_occupancy", 4)["structure"]["sites"][0]
    partial["species"] = [{"element": partial["species"][0]["element"], "occu": 0.5}]
    nan = variant("nan_targets", 5)["data"]
    nan["e_form"], nan["dos_ef"] = float("nan"), None
    unknown = variant("unknown_element", 6)
    unknown["structure"]["sites"][0]["species"][0]["element"] = "Xx"
    unknown["structure"]["sites"][0]["label"] = "Xx"
    hostile = variant("hostile_id", 7)
    hostile["data"]["mat_id"] = "../../escape/me"
    return out
