"""The newer MP readers (2025 binary elasticity, MP summary): real mirror rows with one defect
each, read through ``safe_records`` between two good rows and given to ``target_frame`` as the
build does: the exact outcome per kind (dropped with its reason, or kept with the target left
NaN and the reasons), the good rows keep their real values, and ``len(records) + dropped ==
rows read``."""

from __future__ import annotations

import copy
import math
import re

import pytest

from matmodal.config import Settings
from matmodal.datasets.build import collect, safe_records, target_frame
from matmodal.datasets.elastic import from_binary_elastic
from matmodal.datasets.mp_summary import SUMMARY_TARGETS, from_mp_summary
from matmodal.sources.materials_project import MaterialsProject
from matmodal.targets import ELASTIC_TARGETS

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def mp(mirror_dir) -> MaterialsProject:
    return MaterialsProject(Settings(mirror_dir=mirror_dir))


@pytest.fixture(scope="module")
def binary_row(mp) -> dict:
    """mp-975512 (InSb3) of the 2025 release: K_VRH 53.357, G_VRH 12.164 GPa."""
    return mp.binary_elasticity(["mp-975512"]).to_dict("records")[0]


@pytest.fixture(scope="module")
def summary_row(mp) -> dict:
    """mp-1 (Cs) of the 2018 summary file."""
    return next(mp.summary_rows())


def _set(**values):
    return lambda row: row | values


def _first_site(value):
    def make(row):
        row["structure"]["sites"][0]["abc"] = value
        return row
    return make


def _missing(*names):
    return f"target(s) missing or NaN: {', '.join(names)}"


# kind: (defect applied to the real row, "drop:<reason>" | "re:<pattern>" | [degraded reasons])
BINARY = {
    "k_nan": (_set(k_vrh=NAN), [_missing("k_vrh")]),
    "k_inf": (_set(k_vrh=INF), ["k_vrh=inf is not finite; set to NaN", _missing("k_vrh")]),
    "k_negative": (_set(k_vrh=-53.357), ["k_vrh=-53.357 GPa is outside the physical range [0, 1000] GPa; "
                                         "set to NaN", _missing("k_vrh")]),
    "k_text": (_set(k_vrh="53.357"), ["k_vrh is a str ('53.357'), not a number; set to NaN", _missing("k_vrh")]),
    "both_moduli_bad": (_set(k_vrh=NAN, g_vrh=-1.0), "drop:neither K_VRH nor G_VRH is a valid modulus"),
    "structure_missing": (_set(structure=None), "drop:entry has no 'structure'"),
    "structure_text": (_set(structure="InSb3"), "drop:structure is a str, not an object"),
    "structure_nan_coords": (_first_site([NAN, 0.0, 0.0]),
                             "drop:site 0 has non-finite (NaN/inf) coordinates [nan, 0.0, 0.0]"),
    "lattice_not_3x3": (_set(structure={"lattice": "x", "sites": []}),
                        "drop:structure.lattice.matrix is not a 3x3 array of numbers"),
    "formula_disagrees": (_set(formula="InSb2"), "drop:formula InSb2 disagrees with the structure (InSb3)"),
    "no_id": (_set(material_id=None), "drop:row has no material id"),
}

SUMMARY = {
    "e_form_nan": (_set(formation_energy_per_atom=NAN), [_missing("e_form")]),
    "e_form_huge": (_set(formation_energy_per_atom=1e29), [
        "e_form=1e+29 eV/atom is outside the physical range [-15, 15] eV/atom; set to NaN", _missing("e_form")]),
    "gap_text": (_set(band_gap="0.1"), ["gap is a str ('0.1'), not a number; set to NaN", _missing("gap")]),
    "cif_unparsable": (_set(cif="data_broken\n_cell_length_a x\n"),
                       "drop:unparsable CIF: ValueError: Invalid CIF file with no structures!"),
    "cif_missing": (_set(cif=None), "drop:entry has no 'structure'"),
    "volume_negative": (_set(volume=-1.0), "drop:volume=-1.0 Å³ is not a positive number"),
    "no_id": (_set(material_id=None), "drop:row has no material_id"),
}


def _outcome(reader, targets, row, make):
    """Records and issues of [good, defective, good-2] read as the build reads them."""
    rows = [copy.deepcopy(row) | {"material_id": "good"}, make(copy.deepcopy(row)),
            copy.deepcopy(row) | {"material_id": "good-2"}]
    issues: list = []
    records = collect(safe_records(reader, [(r, "mirror", i) for i, r in enumerate(rows)]), issues)
    frame = target_frame(records, targets, issues).set_index("material_id")
    return records, issues, frame


def _check(reader, targets, row, make, expected):
    records, issues, frame = _outcome(reader, targets, row, make)
    dropped = [i for i in issues if i.severity == "dropped"]
    assert len(records) + len(dropped) == 3
    good = _outcome(reader, targets, row, _set())[2].loc["good"]
    for name in ("good", "good-2"):  # the rows around the bad one: real values, no target note
        assert frame.loc[name].equals(good)
        assert not [i for i in issues if i.record_id == name and i.stage == "targets"]
    if isinstance(expected, str):
        (issue,) = dropped
        pattern = re.escape(expected[5:]) if expected.startswith("drop:") else expected[3:]
        assert re.fullmatch(pattern, issue.reason, flags=re.S), issue.reason
        assert issue.index == 1 and [r.record_id for r in records] == ["good", "good-2"]
        return
    assert not dropped and len(records) == 3
    bad = records[1].record_id
    assert [i.reason for i in issues if i.record_id == bad and i.stage == "targets"] == expected
    assert all(i.severity == "degraded" for i in issues if i.record_id == bad)
    left_nan = {c for c in frame.columns if math.isnan(frame.loc[bad, c]) and not math.isnan(good[c])}
    assert left_nan == {r.removeprefix("target(s) missing or NaN: ") for r in expected if r.startswith("target(s)")}


@pytest.mark.parametrize("kind", sorted(BINARY))
def test_bad_binary_elasticity_row_has_its_exact_outcome(binary_row, kind):
    make, expected = BINARY[kind]
    _check(from_binary_elastic, ELASTIC_TARGETS, binary_row, make, expected)


@pytest.mark.parametrize("kind", sorted(SUMMARY))
def test_bad_mp_summary_row_has_its_exact_outcome(summary_row, kind):
    make, expected = SUMMARY[kind]
    _check(from_mp_summary, SUMMARY_TARGETS, summary_row, make, expected)
