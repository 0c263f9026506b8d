"""CHGNet featuriser streams: graphs built per batch, vectors identical to all-graphs-first."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matmodal.modalities.structure.chgnet import CHGNetRun
from tests.modalities import test_structure_data as data

mp_items = data.mp_items  # shared real-data fixture (MP elastic structures from the mirror)
mp_structures = data.mp_structures
mp_table = data.mp_table

pytestmark = pytest.mark.ml

CROWDED = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])


@pytest.fixture(scope="module")
def items(mp_items) -> list[tuple[str, Structure]]:
    """12 real structures and a record that cannot become a graph in the middle."""
    return [*mp_items[:5], ("crowded", CROWDED), *mp_items[5:12]]


def test_vectors_equal_chgnet_predict_structure_bit_for_bit(items):
    run = CHGNetRun(batch_size=4)
    outcome = run.compute(items)
    assert outcome.failures == {"crowded": "CHGNet graph failed (ValueError: atoms closer than 0.5 Å (0.040 Å))"}
    good = [(rid, s) for rid, s in items if rid != "crowded"]
    assert list(outcome.vectors) == [rid for rid, _ in good]
    reference = run.model.predict_structure([s for _, s in good], task="e", return_crystal_feas=True,
                                            batch_size=4)  # every graph first, then batches of 4
    for (rid, _), expected in zip(good, reference, strict=True):
        np.testing.assert_array_equal(outcome.vectors[rid], expected["crystal_fea"])


def test_exact_vectors_of_real_structures(items):
    """Values computed with the previous (all graphs first, autograd on) implementation."""
    vectors = CHGNetRun(batch_size=4).compute(items[:3]).vectors
    expected = {  # material_id: (first three entries, sum, L2 norm)
        "mp-1002165": ([-0.010674086, -0.114058137, -0.001820362], 6.448144436, 5.139047623),
        "mp-10025": ([0.006707457, 1.537919521, -0.004990203], 22.183839798, 37.626670837),
        "mp-10030": ([-0.003047355, 0.051806688, -0.001283658], 4.088005066, 5.734558582),
    }
    assert list(vectors) == list(expected)
    for rid, (head, total, norm) in expected.items():
        vector = vectors[rid]
        assert vector.dtype == np.float32 and vector.shape == (64,)
        np.testing.assert_allclose(vector[:3], head, atol=1e-6)
        assert float(vector.sum()) == pytest.approx(total, abs=1e-5)
        assert float(np.linalg.norm(vector)) == pytest.approx(norm, abs=1e-5)


class Recorder:
    """Stands in for the CHGNet model: forwards to it and logs each conversion and prediction."""

    def __init__(self, model) -> None:
        self.model, self.events = model, []

    def graph_converter(self, structure, graph_id=None):
        self.events.append("graph")
        return self.model.graph_converter(structure, graph_id=graph_id)

    def predict_graph(self, graphs, **kwargs):
        self.events.append(f"predict {len(graphs)}")
        return self.model.predict_graph(graphs, **kwargs)


def test_graphs_are_built_per_batch_not_all_first(items):
    run = CHGNetRun(batch_size=4)
    run.model = recorder = Recorder(run.model)
    run.compute(items)
    # 12 good graphs in batches of 4; the crowded cell fails its geometry check before conversion
    assert recorder.events == (["graph"] * 4 + ["predict 4"]) * 3
