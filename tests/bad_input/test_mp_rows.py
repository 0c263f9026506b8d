"""Materials Project elastic rows (real mirror rows, one defect each): exact outcome per kind."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from matmodal.config import Settings
from matmodal.datasets.build import collect, safe_records, target_frame
from matmodal.records import from_mp_elastic
from matmodal.sources.materials_project import MaterialsProject
from matmodal.targets import ELASTIC_TARGETS

TENSOR = "elasticity.elastic_tensor"


@pytest.fixture(scope="module")
def row(mirror_dir):
    """mp-1002165 (GeC, cubic): K_VRH 166.67 GPa from its real tensor."""
    return MaterialsProject(Settings(mirror_dir=mirror_dir)).elasticity(["mp-1002165"]).to_dict("records")[0]


def _tensor(change):
    def make(row):
        row[TENSOR] = change(np.array(row[TENSOR], dtype=float)).tolist() if callable(change) else change
        return row
    return make


def _cif(text):
    def make(row):
        row.pop("structure")
        row["cif"] = text
        return row
    return make


def _set(key, value):
    def make(row):
        row[key] = value
        return row
    return make


DROPPED = {
    "tensor_5x6": (_tensor(lambda t: t[:5]), "elastic tensor: elastic tensor must be a 6x6 matrix, got shape (5, 6)"),
    "tensor_nan": (_tensor(lambda t: np.where(np.eye(6) > 0, np.nan, t)),
                   "elastic tensor: 6 non-finite (NaN/inf) component(s)"),
    "tensor_inf": (_tensor(lambda t: t + np.where(np.arange(36).reshape(6, 6) == 7, np.inf, 0)),
                   "elastic tensor: 1 non-finite (NaN/inf) component(s)"),
    "tensor_negative_moduli": (_tensor(lambda t: -t),
                               "elastic tensor: not positive definite (mechanically unstable: lowest eigenvalue "
                               "-500.0 GPa)"),
    "tensor_singular": (_tensor(lambda t: t * 0), "elastic tensor: elastic tensor is singular (no Reuss bound)"),
    "tensor_missing": (_set(TENSOR, None), "elastic tensor: missing (no 6x6 tensor in the row)"),
    "tensor_text": (_set(TENSOR, "GPa"), "elastic tensor: could not convert string to float: 'GPa'"),
    "tensor_ragged": (_set(TENSOR, [[1.0, 2.0], [3.0]]), "re:elastic tensor: setting an array element with a sequence.*"),
    "cif_garbage": (_cif("data_x\n_cell_length_a nonsense\n"), "re:unparsable CIF: .*"),
    "volume_text": (_set("volume", "21.1"), "volume is a str, not a number"),
    "volume_negative": (_set("volume", -1.0), "volume=-1.0 Å³ is not positive"),
    "volume_wrong": (_set("volume", 30.0), "volume=30.0 Å³ disagrees with the structure (21.1065 Å³)"),
    "nsites_wrong": (_set("nsites", 3), "nsites=3 disagrees with the structure (2 sites)"),
}


@pytest.mark.parametrize("kind", sorted(DROPPED))
def test_bad_mp_row_is_dropped_with_its_reason(row, kind):
    make, reason = DROPPED[kind]
    bad = make(copy.deepcopy(row))
    good = copy.deepcopy(row) | {"material_id": "good"}
    items = list(safe_records(from_mp_elastic, [(good, "mp_elastic", 0), (bad, "mp_elastic", 1)]))
    issues = []
    records = collect(items, issues)
    assert [r.record_id for r in records] == ["good"]
    assert [(i.record_id, i.severity, i.index) for i in issues] == [
        ("good", "degraded", 0), ("mp-1002165", "dropped", 1)]  # good: its space group derived, said
    if reason.startswith("re:"):
        assert re.fullmatch(reason[3:], issues[1].reason, flags=re.S), issues[1].reason
    else:
        assert issues[1].reason == reason


def test_row_without_an_id_is_named_by_position(row):
    (issue,) = safe_records(from_mp_elastic, [(copy.deepcopy(row) | {"material_id": None}, "mp_elastic", 7)])
    assert (issue.record_id, issue.reason, issue.index) == ("mp_elastic#7", "row has no material_id", 7)


def test_impossible_modulus_is_kept_with_the_target_left_nan(row):
    stiff = _tensor(lambda t: t * 7)(copy.deepcopy(row))  # K_VRH 1,167 GPa: far above diamond (443)
    record, _ = from_mp_elastic(stiff)
    issues = []
    frame = target_frame([record], ELASTIC_TARGETS, issues).set_index("material_id")
    assert np.isnan(frame.loc["mp-1002165", "k_vrh"]) and frame.loc["mp-1002165", "g_vrh"] > 0
    assert [i.reason for i in issues] == [
        "k_vrh=1166.67 GPa is outside the physical range [0, 1000] GPa (left NaN)"]
