import math

import numpy as np
import pytest

from matmodal.manifest import RecordError
from matmodal.records import from_alexandria, from_mp_elastic, vrh_moduli
from matmodal.sources.materials_project import MaterialsProject
from matmodal.targets import COSTA_TARGETS, TARGETS, TargetName
from tests.fixtures import ALEX_FILES, defective_entries, real_entries


def hand_targets(entry):
    """The seven costa2025 targets computed by hand from the raw JSON."""
    data = entry["data"]
    volume = abs(np.linalg.det(np.array(entry["structure"]["lattice"]["matrix"])))
    nsites = len(entry["structure"]["sites"])
    return {
        "gap": data["band_gap_ind"], "e_form": data["e_form"], "e_hull": data["e_above_hull"],
        "e_tot_per_atom": data["energy_total"] / nsites, "mag_per_vol": data["total_mag"] / volume,
        "vol_per_atom": volume / nsites, "dos_per_atom": data["dos_ef"] / nsites,
    }


@pytest.mark.parametrize("name", ALEX_FILES)
def test_targets_match_hand_computation(mirror_dir, name):
    for i, entry in enumerate(real_entries(mirror_dir, name)):
        record, _ = from_alexandria(entry, name, i)
        expected = hand_targets(entry)
        for target in COSTA_TARGETS:
            assert TARGETS[target].compute(record) == pytest.approx(expected[target.value], rel=1e-9)


def test_derived_fields_are_said(mirror_dir):
    entry = real_entries(mirror_dir, ALEX_FILES[0])[0]  # matsciml extract: no formula, no spg
    record, issues = from_alexandria(entry, ALEX_FILES[0])
    assert "formula" in record.derived and record.formula == "Ac"
    assert record.data["spg"] == 194
    assert issues and "derived from the structure" in issues[0].reason
    full = real_entries(mirror_dir, ALEX_FILES[1])[0]  # full schema: nothing derived
    record, issues = from_alexandria(full, ALEX_FILES[1])
    assert record.derived == [] and issues == []


@pytest.mark.parametrize(
    "defect,reason",
    [
        ("no_structure", "no 'structure'"),
        ("nsites_zero", "nsites=0 is not a positive count"),
        ("nsites_mismatch", "nsites=99 disagrees with the structure"),
        ("zero_volume", "degenerate lattice"),
        ("partial_occupancy", "partial occupancies"),
        ("unknown_element", "unknown element"),
    ],
)
def test_bad_entries_name_record_and_reason(mirror_dir, defect, reason):
    entry = defective_entries(mirror_dir)[defect]
    with pytest.raises(RecordError) as info:
        from_alexandria(entry, "fixture")
    assert info.value.record_id == f"defect-{defect}"
    assert reason in info.value.reason


def test_missing_targets_are_none_not_errors(mirror_dir):
    record, _ = from_alexandria(defective_entries(mirror_dir)["nan_targets"], "fixture")
    assert TARGETS[TargetName.e_form].compute(record) is None
    assert TARGETS[TargetName.dos_per_atom].compute(record) is None
    assert TARGETS[TargetName.gap].compute(record) is not None


def test_hostile_id_is_kept_with_a_safe_file_name(mirror_dir):
    record, issues = from_alexandria(defective_entries(mirror_dir)["hostile_id"], "fixture")
    assert record.record_id == "../../escape/me"
    assert any("not file-safe" in i.reason for i in issues)


def test_vrh_moduli_match_voigt_reuss_hill_by_hand():
    c = np.array([[284.0, 108, 108, 0, 0, 0], [108, 284, 108, 0, 0, 0], [108, 108, 284, 0, 0, 0],
                  [0, 0, 0, 124, 0, 0], [0, 0, 0, 0, 124, 0], [0, 0, 0, 0, 0, 124]])
    s = np.linalg.inv(c)
    k_v = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9
    k_r = 1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[1, 2] + s[0, 2]))
    g_v = (c[0, 0] + c[1, 1] + c[2, 2] - c[0, 1] - c[1, 2] - c[0, 2] + 3 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15
    g_r = 15 / (4 * (s[0, 0] + s[1, 1] + s[2, 2]) - 4 * (s[0, 1] + s[1, 2] + s[0, 2]) + 3 * (s[3, 3] + s[4, 4] + s[5, 5]))
    k, g = vrh_moduli(c)
    assert k == pytest.approx((k_v + k_r) / 2) and g == pytest.approx((g_v + g_r) / 2)


def test_unstable_tensor_is_refused():
    c = np.diag([100.0, 100, 100, -5, 40, 40])
    with pytest.raises(ValueError, match="not positive definite"):
        vrh_moduli(c)


def test_mp_elastic_rows_from_mirror(mirror_dir):
    from matmodal.config import Settings

    frame = MaterialsProject(Settings(mirror_dir=mirror_dir)).elasticity(["mp-1002165"])
    row = frame.to_dict("records")[0]
    record, _ = from_mp_elastic(row)
    assert record.formula == "GeC" and record.nsites == 2
    assert record.number("k_vrh") == pytest.approx(166.67, abs=0.01)  # cubic: K_V = K_R
    assert math.isclose(TARGETS[TargetName.vol_per_atom].compute(record), 21.10649809 / 2, rel_tol=1e-6)
    row["volume"] = -1.0
    with pytest.raises(RecordError, match="not positive"):
        from_mp_elastic(row)
