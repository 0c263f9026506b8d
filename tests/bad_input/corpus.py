"""The bad-input corpus: real mirror entries, each altered with ONE defect, and the exact outcome.

Built by the tests from ``../shared/mirror`` at run time (nothing of the mirror is stored in
the repository). Each :class:`Kind` makes one entry (a JSON value, or raw bytes for defects
below the JSON level: invalid JSON, duplicate keys, bytes that are not UTF-8, deep nesting)
and states what must happen to it: kept (with exactly these manifest rows) or dropped (with
exactly this reason). ``{file}`` and ``{index}`` in an expected id stand for the entry's file
name and position (records with no usable id are named by position).
"""

from __future__ import annotations

import bz2
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures import ALEX_FILES, real_entries

FULL, SLIM = ALEX_FILES[1], ALEX_FILES[0]  # full schema (spg given) / matsciml extract (spg derived)
SPG = "derived from the structure: formula, spg (spglib, symprec=0.1 Å)"


@dataclass(frozen=True)
class Kind:
    """One defect: ``make(entry)`` alters a copy of a real entry; ``issues`` are the exact
    (stage, severity, reason) manifest rows of the record; a reason starting with ``re:``
    is a regular expression (for messages written by pymatgen)."""

    name: str
    make: Callable[[dict[str, Any]], Any]
    kept: bool
    issues: tuple[tuple[str, str, str], ...]
    record_id: str | None = None  # default "bad-<name>"; "{file}#{index}" when the id is unusable
    base: str = FULL
    targets: dict[str, float | None] | None = None  # expected target values when kept (None = NaN)

    @property
    def expected_id(self) -> str:
        return self.record_id or f"bad-{self.name}"


def _named(entry: dict[str, Any], name: str) -> dict[str, Any]:
    entry["data"]["mat_id"] = f"bad-{name}"
    return entry


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Set ``entry[a][b]...`` (dotted path, integer parts index lists) to ``value``."""
    def make(entry: dict[str, Any]) -> dict[str, Any]:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = entry
        for part in parents:
            node = node[part]
        node[last] = value
        return entry
    return make


def _scale_lattice(factors: tuple[float, float, float]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def make(entry: dict[str, Any]) -> dict[str, Any]:
        matrix = entry["structure"]["lattice"]["matrix"]
        entry["structure"]["lattice"]["matrix"] = [[x * f for x in row] for row, f in zip(matrix, factors, strict=True)]
        return entry
    return make


def _raw(template: str) -> Callable[[dict[str, Any]], bytes]:
    """Raw entry bytes: ``template`` with ``{entry}`` = the (named) entry's JSON minus its outer braces."""
    def make(entry: dict[str, Any]) -> bytes:
        return template.replace("{entry}", json.dumps(entry)[1:-1]).encode("utf-8", "surrogateescape")
    return make


def _text_edit(old: str, new: str) -> Callable[[dict[str, Any]], bytes]:
    """Raw entry bytes with ``old`` replaced by ``new`` in its JSON text (lone surrogates in
    ``new`` become the bytes they escape: text that is not UTF-8)."""
    def make(entry: dict[str, Any]) -> bytes:
        text = json.dumps(entry)
        assert old in text, old
        return text.replace(old, new, 1).encode("utf-8", "surrogateescape")
    return make


def _overlap(entry: dict[str, Any]) -> dict[str, Any]:
    sites = entry["structure"]["sites"]
    sites[1]["abc"] = [x + 1e-4 for x in sites[0]["abc"]]
    return entry


def _many_sites(n: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def make(entry: dict[str, Any]) -> dict[str, Any]:
        site = entry["structure"]["sites"][0]
        entry["structure"]["sites"] = [copy.deepcopy(site) for _ in range(n)]
        entry["data"]["nsites"] = n
        return entry
    return make


def _one_atom_cell(edge: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A one-site cell with one lattice vector of ``edge`` Å (volume per atom kept sane)."""
    def make(entry: dict[str, Any]) -> dict[str, Any]:
        site = entry["structure"]["sites"][0]
        entry["structure"]["sites"] = [dict(site, abc=[0.0, 0.0, 0.0])]
        side = (20.0 / edge) ** 0.5
        entry["structure"]["lattice"] = {"matrix": [[edge, 0, 0], [0, side, 0], [0, 0, side]]}
        entry["data"]["nsites"] = 1
        entry["composition"] = {site["species"][0]["element"]: 1}
        return entry
    return make


def _drop(reason: str, stage: str = "records") -> tuple[tuple[str, str, str], ...]:
    return ((stage, "dropped", reason),)


def _degraded(*reasons: str, stage: str = "records") -> tuple[tuple[str, str, str], ...]:
    return tuple((stage, "degraded", r) for r in reasons)


def _targets(reason: str) -> tuple[str, str, str]:
    return ("targets", "degraded", reason)


POSITION = "{file}#{index}"
KINDS: list[Kind] = [
    # --- the entry itself is not an entry -------------------------------------------------
    Kind("entry_string", lambda e: "not an entry", False, _drop("entry is a str, not an object"), POSITION),
    Kind("entry_list", lambda e: [1, 2, 3], False, _drop("entry is a list, not an object"), POSITION),
    Kind("entry_null", lambda e: None, False, _drop("entry is a NoneType, not an object"), POSITION),
    Kind("entry_number", lambda e: 42, False, _drop("entry is a int, not an object"), POSITION),
    Kind("valid_json_not_entry", lambda e: {"hello": "world"}, False,
         _drop("entry has neither data.mat_id nor entry_id"), POSITION),
    Kind("data_string", lambda e: dict(_set("data", "oops")(e), entry_id="bad-data_string"), False,
         _drop("data is a str, not an object")),
    Kind("data_list", lambda e: dict(_set("data", [1, 2])(e), entry_id="bad-data_list"), False,
         _drop("data is a list, not an object")),
    Kind("no_id", lambda e: (e["data"].pop("mat_id"), e)[1], False,
         _drop("entry has neither data.mat_id nor entry_id"), POSITION),
    Kind("id_list", _set("data.mat_id", ["a", "b"]), False, _drop("id is a list, not a string"), POSITION),
    Kind("id_dict", _set("data.mat_id", {"a": 1}), False, _drop("id is a dict, not a string"), POSITION),
    # --- below the JSON level: the reader skips the entry and goes on ----------------------
    Kind("invalid_json", _raw('{{entry}, "broken" "no colon"}'), False,
         _drop("entry #{index}: invalid JSON (Expecting ':' delimiter); skipped", "parse"), POSITION),
    Kind("bare_garbage", lambda e: b"nope", False,
         _drop("entry #{index}: invalid JSON (Expecting value); skipped", "parse"), POSITION),
    Kind("deep_nesting", _raw('{{entry}, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"), False,
         _drop("entry #{index}: nested too deeply to decode; skipped", "parse"), POSITION),
    Kind("duplicate_keys", _text_edit('"mat_id": "bad-duplicate_keys"',
                                      '"mat_id": "first", "e_form": 99.0, "mat_id": "bad-duplicate_keys"'),
         True, ()),  # JSON's rule: the last value of a key wins (e_form stays the real one, after it)
    Kind("not_utf8_id", _text_edit("bad-not_utf8_id", "bad-\udcff-x"), True,
         _degraded("id had control or non-text characters; stored escaped as 'bad-\\\\udcff-x'",
                   "re:^id is not file-safe; files use 'bad-_udcff-x-[0-9a-f]{10}'$"), "bad-\\udcff-x"),
    Kind("duplicate_id", _set("data.mat_id", "agm001000110"), False,
         _drop("duplicate id (first seen in {file})"), "agm001000110"),
    Kind("nul_id", _set("data.mat_id", "bad\x00nul"), True,
         _degraded("id had control or non-text characters; stored escaped as 'bad\\\\x00nul'",
                   "re:^id is not file-safe; files use 'bad_x00nul-[0-9a-f]{10}'$"), "bad\\x00nul"),
    Kind("lone_surrogate_id", _set("data.mat_id", "bad-\ud800"), True,
         _degraded("id had control or non-text characters; stored escaped as 'bad-\\\\ud800'",
                   "re:^id is not file-safe; files use 'bad-_ud800-[0-9a-f]{10}'$"), "bad-\\ud800"),
    Kind("hostile_id", _set("data.mat_id", "../../escape/me"), True,
         _degraded("re:^id is not file-safe; files use '_\\.\\._escape_me-[0-9a-f]{10}'$"), "../../escape/me"),
    Kind("long_id", _set("data.mat_id", "x" * 5000), True,
         _degraded("re:^id is not file-safe; files use 'x{80}-[0-9a-f]{10}'$"), "x" * 5000),
    # --- geometry: refused before spglib, robocrys or the renderer see it ------------------
    Kind("no_structure", lambda e: (e.pop("structure"), e)[1], False, _drop("entry has no 'structure'")),
    Kind("structure_string", _set("structure", "Si"), False, _drop("structure is a str, not an object")),
    Kind("nan_frac_coords", _set("structure.sites.0.abc", [float("nan")] * 3), False,
         _drop("site 0 has non-finite (NaN/inf) coordinates [nan, nan, nan]"), base=SLIM),
    Kind("inf_lattice", _set("structure.lattice.matrix.0.0", float("inf")), False,
         _drop("lattice has non-finite (NaN/inf) components"), base=SLIM),
    Kind("huge_lattice_1e6", _scale_lattice((1e6, 1e6, 1e6)), False,
         _drop("re:^volume per atom [0-9.e+]+ Å³ is outside \\[1, 1000\\] Å³/atom$"), base=SLIM),
    Kind("cell_1e18_A3", _scale_lattice((1e6, 1e6, 1e5)), False,
         _drop("re:^volume per atom [0-9.e+]+ Å³ is outside \\[1, 1000\\] Å³/atom$"), base=SLIM),
    Kind("long_thin_cell", _scale_lattice((300.0, 1 / 17.32, 1 / 17.32)), False,
         _drop("re:^lattice vector of [0-9.]+ Å is longer than 1000 Å$"), base=SLIM),
    Kind("tiny_cell", _scale_lattice((0.2, 0.2, 0.2)), False,
         _drop("re:^volume per atom [0-9.]+ Å³ is outside \\[1, 1000\\] Å³/atom$"), base=SLIM),
    Kind("self_image", _one_atom_cell(0.4), False,
         _drop("an atom is 0.4 Å from its own periodic image (minimum 0.5 Å)"), base=SLIM),
    Kind("overlapping_atoms", _overlap, False,
         _drop("re:^overlapping atoms: sites 0 and 1 are 0.000[0-9]+ Å apart \\(minimum 0.5 Å\\)$"), base=SLIM),
    Kind("zero_volume", lambda e: _set("structure.lattice.matrix.2", e["structure"]["lattice"]["matrix"][1])(e),
         False, _drop("re:^degenerate lattice \\(cell volume .* Å³\\)$"), base=SLIM),
    Kind("too_many_sites", _many_sites(20_000), False, _drop("20000 sites is more than the limit of 1000")),
    Kind("lattice_strings", lambda e: _set("structure.lattice.matrix",
                                           [[str(x) for x in r] for r in e["structure"]["lattice"]["matrix"]])(e),
         False, _drop("structure.lattice.matrix is not a 3x3 array of numbers")),
    Kind("lattice_2x3", lambda e: _set("structure.lattice.matrix", e["structure"]["lattice"]["matrix"][:2])(e),
         False, _drop("structure.lattice.matrix is not a 3x3 array of numbers")),
    Kind("sites_dict", _set("structure.sites", {"0": 1}), False, _drop("structure.sites is a dict, not a list")),
    Kind("site_without_coords", lambda e: (e["structure"]["sites"][0].pop("abc"),
                                           e["structure"]["sites"][0].pop("xyz"), e)[2],
         False, _drop("site 0 has no 3 numeric coordinates (abc)")),
    Kind("coords_strings", _set("structure.sites.0.abc", ["0", "0", "0"]), False,
         _drop("site 0 has no 3 numeric coordinates (abc)")),
    Kind("species_string", _set("structure.sites.0.species", "Ge"), False, _drop("re:unparsable structure: TypeError: .*")),
    Kind("partial_occupancy", _set("structure.sites.0.species", [{"element": "Ge", "occu": 0.5}]), False,
         _drop("partial occupancies (disordered structure); DFT targets need an ordered cell")),
    Kind("unknown_element", lambda e: _set("structure.sites.0.label", "Xx")(
        _set("structure.sites.0.species", [{"element": "Xx", "occu": 1}])(e)), False,
         _drop("unknown element: 'Xx' is not a valid Element")),
    Kind("composition_mismatch", _set("composition", {"Si": 1.0}), False,
         _drop("composition Si1 disagrees with the structure (Ac2 Ge2 Pt2)")),
    Kind("composition_garbage", _set("composition", "%%%"), False, _drop("unknown element in composition: ValueError: %%% is an invalid formula!")),
    Kind("nsites_zero", _set("data.nsites", 0), False, _drop("nsites=0 is not a positive count")),
    Kind("nsites_mismatch", _set("data.nsites", 99), False, _drop("nsites=99 disagrees with the structure (6 sites)")),
    Kind("nsites_string", _set("data.nsites", "6"), False, _drop("nsites='6' is not a positive count")),
    Kind("nsites_fraction", _set("data.nsites", 5.5), False, _drop("nsites=5.5 is not a positive count")),
    Kind("nsites_bool", _set("data.nsites", True), False, _drop("nsites=True is not a positive count")),
    # --- impossible or mistyped values: kept, the value left NaN, the reason said ---------
    Kind("nan_targets", lambda e: _set("data.dos_ef", None)(_set("data.e_form", float("nan"))(e)), True,
         (_targets("target(s) missing or NaN: e_form, dos_per_atom"),), targets={"e_form": None, "dos_per_atom": None}),
    Kind("infinite_energy", _set("data.energy_total", float("inf")), True,
         (_targets("e_tot_per_atom=inf is not finite (left NaN)"),), targets={"e_tot_per_atom": None}),
    Kind("energy_1e29", _set("data.e_form", 1e29), True,
         (_targets("e_form=1e+29 eV/atom is outside the physical range [-15, 15] eV/atom (left NaN)"),),
         targets={"e_form": None}),
    Kind("negative_gap", _set("data.band_gap_ind", -0.5), True,
         (_targets("gap=-0.5 eV is outside the physical range [0, 30] eV (left NaN)"),), targets={"gap": None}),
    Kind("negative_dos", _set("data.dos_ef", -60.0), True,
         (_targets("dos_per_atom=-10 states/(eV·atom) is outside the physical range [-0.01, 100] "
                   "states/(eV·atom) (left NaN)"),), targets={"dos_per_atom": None}),
    Kind("huge_magnetisation", _set("data.total_mag", 1e6), True,
         (_targets("re:^mag_per_vol=[0-9.]+ μB/Å³ is outside the physical range \\[-1, 1\\] μB/Å³ \\(left NaN\\)$"),),
         targets={"mag_per_vol": None}),
    Kind("gap_as_string", _set("data.band_gap_ind", "0.1"), True,
         (*_degraded("data.band_gap_ind is a str ('0.1'), not a number; treated as missing"),
          _targets("target(s) missing or NaN: gap")), targets={"gap": None}),
    Kind("magnetisation_bool", _set("data.total_mag", True), True,
         (*_degraded("data.total_mag is a bool (True), not a number; treated as missing"),
          _targets("target(s) missing or NaN: mag_per_vol")), targets={"mag_per_vol": None}),
    Kind("dos_list", _set("data.dos_ef", [1, 2]), True,
         (*_degraded("data.dos_ef is a list ([1, 2]), not a number; treated as missing"),
          _targets("target(s) missing or NaN: dos_per_atom")), targets={"dos_per_atom": None}),
    Kind("formula_number", _set("data.formula", 123), True, _degraded("derived from the structure: formula")),
    Kind("spg_string", _set("data.spg", "P-1"), True,
         _degraded("data.spg='P-1' is not a space group number (1-230)",
                   "derived from the structure: spg (spglib, symprec=0.1 Å)")),
    Kind("spg_999", _set("data.spg", 999), True,
         _degraded("data.spg=999 is not a space group number (1-230)",
                   "derived from the structure: spg (spglib, symprec=0.1 Å)")),
    Kind("extra_fields", _set("data.junk", {"nested": [1, {"a": None}], "text": "x"}), True, ()),
    Kind("huge_array_field", _set("data.junk", list(range(200_000))), True, ()),
    # --- wrong types in further fields ----------------------------------------------------
    Kind("energy_as_string", _set("data.energy_total", "-22.7"), True,
         (*_degraded("data.energy_total is a str ('-22.7'), not a number; treated as missing"),
          _targets("target(s) missing or NaN: e_tot_per_atom")), targets={"e_tot_per_atom": None}),
    Kind("hull_as_dict", _set("data.e_above_hull", {"value": 0.0}), True,
         (*_degraded("data.e_above_hull is a dict ({'value': 0.0}), not a number; treated as missing"),
          _targets("target(s) missing or NaN: e_hull")), targets={"e_hull": None}),
    Kind("composition_list", _set("composition", ["Ge", "Pt"]), False,
         _drop("re:unknown element in composition: TypeError: .*")),
    Kind("lattice_string", _set("structure.lattice", "cubic"), False,
         _drop("structure.lattice.matrix is not a 3x3 array of numbers")),
    Kind("site_string", _set("structure.sites.0", "Ge at origin"), False,
         _drop("site 0 has no 3 numeric coordinates (abc)")),
    Kind("coords_two_numbers", _set("structure.sites.0.abc", [0.5, 0.5]), False,
         _drop("site 0 has no 3 numeric coordinates (abc)")),
    Kind("element_number", lambda e: _set("structure.sites.0.species", [{"element": 32, "occu": 1}])(e), False,
         _drop("unknown element: 32 is not a valid Element")),
    Kind("structure_list", _set("structure", [1, 2, 3]), False, _drop("structure is a list, not an object")),
    Kind("data_null", lambda e: dict(_set("data", None)(e), entry_id="bad-data_null"), True,
         (*_degraded("derived from the structure: nsites, formula, spg (spglib, symprec=0.1 Å)"),
          _targets("target(s) missing or NaN: gap, e_form, e_hull, e_tot_per_atom, mag_per_vol, dos_per_atom")),
         targets={"gap": None, "e_form": None}),
]


def entry_bytes(kind: Kind, base: dict[str, Any]) -> bytes:
    """The raw JSON bytes of ``kind`` applied to a copy of ``base`` (named ``bad-<kind>``)."""
    value = kind.make(_named(copy.deepcopy(base), kind.name))
    return value if isinstance(value, bytes) else json.dumps(value).encode("utf-8", "surrogateescape")


def write_mixed(path: Path, mirror: Path, kinds: list[Kind] = KINDS) -> tuple[list[Any], dict[str, int]]:
    """A bz2 dump with every kind, each between two real good entries; returns the layout.

    Layout: the list of what sits at each position (a real entry dict, or a Kind) and the
    position of each kind. Good entries come from both real files, each used once.
    """
    good = real_entries(mirror, FULL) + real_entries(mirror, SLIM)
    bases = {FULL: real_entries(mirror, FULL)[0], SLIM: real_entries(mirror, SLIM)[0]}
    layout: list[Any] = []
    parts: list[bytes] = []
    positions: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        layout.append(good[i % len(good)])
        parts.append(json.dumps(good[i % len(good)]).encode())
        positions[kind.name] = len(layout)
        layout.append(kind)
        parts.append(entry_bytes(kind, bases[kind.base]))
    layout.append(good[len(kinds) % len(good)])
    parts.append(json.dumps(layout[-1]).encode())
    path.write_bytes(bz2.compress(b'{"entries": [' + b", ".join(parts) + b"]}"))
    return layout, positions


def fill(text: str, file: str, index: int) -> str:
    """``text`` with ``{file}`` and ``{index}`` filled in (regular expressions keep their braces)."""
    return text.replace("{file}", file).replace("{index}", str(index))


def matches(expected: str, actual: str) -> bool:
    return re.fullmatch(expected[3:], actual) is not None if expected.startswith("re:") else expected == actual
