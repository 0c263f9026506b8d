"""featurise(): contract, caching, determinism, failures, trained mode, on real MP structures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from matmodal.manifest import Severity
from matmodal.modalities.structure import FEATURISERS, featurise
from matmodal.modalities.structure.graph import build_graph
from matmodal.modalities.structure.potnet import TrainSettings, collate, make_encoder
from matmodal.modalities.structure.potnet_featuriser import PotNetRun
from tests.modalities import test_structure_data as data

mp_items = data.mp_items  # shared real-data fixture
mp_structures = data.mp_structures  # shared real-data fixture
mp_table = data.mp_table  # shared real-data fixture

pytestmark = pytest.mark.ml


def bad_items() -> list[tuple[str, Structure]]:
    """Structures each featuriser must reject per record (fixtures built here)."""
    crowded = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    return [("crowded", crowded), ("disordered", disordered), ("not-a-structure", None)]


def test_registry_names_dims_and_pretrained_flags():
    assert {n: (i.dim, i.pretrained) for n, i in FEATURISERS.items()} == {
        "potnet": (128, False), "chgnet": (64, True), "magpie": (132, False)}
    for info in FEATURISERS.values():
        assert info.sees and info.leakage and info.weights


@pytest.mark.parametrize("name", sorted(FEATURISERS))
def test_featurise_contract_on_real_structures(name, mp_items, tmp_path):
    items = mp_items[:12] + bad_items()
    frame, issues = featurise(name, items, cache_dir=tmp_path, progress=False)
    dim = FEATURISERS[name].dim
    rejected = {"not-a-structure"} if name == "magpie" else {"crowded", "disordered", "not-a-structure"}
    assert list(frame.index) == [rid for rid, _ in items if rid not in rejected]
    assert frame.index.name == "record_id"
    assert list(frame.columns) == [f"{name}_{i:03d}" for i in range(dim)]
    assert (frame.dtypes == np.float32).all() and np.isfinite(frame.to_numpy()).all()
    assert frame.to_numpy().std(axis=0).max() > 0  # records differ
    assert {i.record_id for i in issues} == rejected
    assert all(i.stage == f"structure:{name}" and i.severity == Severity.dropped for i in issues)
    provenance = frame.attrs["provenance"]
    assert {"featuriser", "dim", "pretrained", "weights", "mode", "seed"} <= provenance.keys()
    assert provenance["dim"] == dim and provenance["mode"] == "frozen"


def test_potnet_rejects_crowded_and_disordered_cells_with_reasons(tmp_path):
    _, issues = featurise("potnet", bad_items(), cache_dir=tmp_path, progress=False)
    reasons = {i.record_id: i.reason for i in issues}
    assert "closer than" in reasons["crowded"] and "disordered" in reasons["disordered"]


def test_cache_is_reused_and_keyed_by_content_and_settings(mp_items, tmp_path):
    items = mp_items[:10]
    first, _ = featurise("potnet", items, cache_dir=tmp_path, progress=False, seed=1)
    again, _ = featurise("potnet", items, cache_dir=tmp_path, progress=False, seed=1)
    assert again.attrs["provenance"]["cache_hits"] == 10
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())
    renamed = [(f"copy-{rid}", s) for rid, s in items]  # same content, other ids: still cached
    assert featurise("potnet", renamed, cache_dir=tmp_path, progress=False,
                     seed=1)[0].attrs["provenance"]["cache_hits"] == 10
    other, _ = featurise("potnet", items, cache_dir=tmp_path, progress=False, seed=2)
    assert other.attrs["provenance"]["cache_hits"] == 0
    assert not np.allclose(first.to_numpy(), other.to_numpy())
    strained = [(rid, s.copy()) for rid, s in items[:2]]
    for _, s in strained:
        s.scale_lattice(s.volume * 1.05)
    assert featurise("potnet", strained, cache_dir=tmp_path, progress=False,
                     seed=1)[0].attrs["provenance"]["cache_hits"] == 0


def test_potnet_frozen_is_deterministic_and_batch_independent(mp_structures):
    graphs = [build_graph(s) for s in mp_structures[:16]]
    together = make_encoder(0).eval()(collate(graphs, 3.0)).detach().numpy()
    alone = make_encoder(0).eval()(collate(graphs[3:4], 3.0)).detach().numpy()
    np.testing.assert_allclose(alone[0], together[3], rtol=1e-5, atol=1e-5)
    again = make_encoder(0).eval()(collate(graphs, 3.0)).detach().numpy()
    np.testing.assert_array_equal(together, again)


def test_potnet_is_invariant_to_cell_choice(mp_structures):
    structure = next(s for s in mp_structures if len(s) == 2)
    supercell = structure * (2, 1, 1)
    shifted = structure.copy()
    shifted.translate_sites(list(range(len(shifted))), [0.13, 0.2, -0.05])
    embed = make_encoder(0).eval()
    vectors = [embed(collate([build_graph(s)], 3.0)).detach().numpy()[0]
               for s in (structure, supercell, shifted)]
    np.testing.assert_allclose(vectors[2], vectors[0], atol=1e-4)
    # a supercell changes the infinite-edge set (pairs within the bigger cell), so only close
    assert np.corrcoef(vectors[0], vectors[1])[0, 1] > 0.9


def test_composition_only_magpie_ignores_volume(mp_items, tmp_path):
    rid, structure = mp_items[0]
    expanded = structure.copy()
    expanded.scale_lattice(structure.volume * 1.3)
    frame, _ = featurise("magpie", [(rid, structure), ("expanded", expanded)], progress=False)
    np.testing.assert_array_equal(frame.iloc[0].to_numpy(), frame.iloc[1].to_numpy())
    labels = frame.attrs["provenance"]["feature_labels"]
    assert len(labels) == 132 and labels[0] == "MagpieData minimum Number"


def test_chgnet_sees_volume(mp_items):
    rid, structure = mp_items[0]
    expanded = structure.copy()
    expanded.scale_lattice(structure.volume * 1.3)
    frame, _ = featurise("chgnet", [(rid, structure), ("expanded", expanded)], progress=False)
    assert not np.allclose(frame.iloc[0].to_numpy(), frame.iloc[1].to_numpy())
    assert frame.attrs["provenance"]["pretrained"] is True


def test_unknown_name_and_mode_are_refused(mp_items):
    with pytest.raises(KeyError, match="choose from"):
        featurise("cgcnn", mp_items[:1])
    with pytest.raises(ValueError, match="modes"):
        featurise("magpie", mp_items[:1], mode="trained")
    with pytest.raises(ValueError, match="needs targets"):
        featurise("potnet", mp_items[:1], mode="trained")


def test_duplicate_ids_are_dropped_not_crashing(mp_items):
    frame, issues = featurise("magpie", [mp_items[0], mp_items[0]], progress=False)
    assert len(frame) == 1 and issues[0].reason == "duplicate record id"


def test_trained_mode_learns_the_target_and_records_training(mp_table, mp_items, tmp_path):
    bulk = pd.Series(mp_table["elasticity.K_Voigt"].to_numpy(), index=mp_table["material_id"],
                     name="K_Voigt")
    train = bulk.iloc[:40]
    run = PotNetRun(mp_items, mode="trained", seed=0, targets=train, cache_dir=tmp_path,
                    train=TrainSettings(epochs=15))
    assert run.extra["n_train"] == 40  # test ids never enter training
    graphs, _ = run.graphs.graphs(mp_items[:40])
    frozen = make_encoder(0).eval()
    before = frozen(collate([graphs[r] for r, _ in mp_items[:40]], 3.0)).detach().numpy()
    after = run.encoder()(collate([graphs[r] for r, _ in mp_items[:40]], 3.0)).detach().numpy()
    figures = run.extra["training"]
    assert figures["n_train"] == 40
    assert figures["train_mae_last_epoch"] < np.mean(np.abs(train - train.median()))
    # the trained embedding tracks the target better than the random one (linear probe)
    y = train.to_numpy()

    def probe_r2(x: np.ndarray) -> float:
        design = np.c_[x, np.ones(len(x))]
        fit = design @ np.linalg.lstsq(design, y, rcond=1e-3)[0]
        return 1 - np.sum((fit - y) ** 2) / np.sum((y - y.mean()) ** 2)

    assert probe_r2(after[:, :8]) > probe_r2(before[:, :8])
    assert not any(p.requires_grad for p in run.encoder().parameters())


def test_trained_mode_through_featurise_caches_the_model(mp_table, mp_items, tmp_path):
    train = pd.Series(mp_table["elasticity.K_Voigt"].to_numpy()[:20], name="K_Voigt",
                      index=mp_table["material_id"].to_numpy()[:20])
    frame, _ = featurise("potnet", mp_items[:30], cache_dir=tmp_path, progress=False,
                         mode="trained", targets=train)
    provenance = frame.attrs["provenance"]
    assert provenance["mode"] == "trained" and provenance["n_train"] == 20
    assert provenance["target"] == "K_Voigt" and "training_set_sha" in provenance["settings"]
    assert list((tmp_path / "structure" / "potnet" / "models").glob("*.pt"))


def test_alexandria_entries_embed_with_every_featuriser(mirror_dir):
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    from matmodal.sources import alexandria

    path = mirror_dir / "alexandria" / "hyllios_benchmark_pressure_10.json.bz2"
    entries = [ComputedStructureEntry.from_dict(e) for e in alexandria.iter_entries(path)]
    items = [(e.data["mat_id"], e.structure) for e in entries]
    for name, info in FEATURISERS.items():
        frame, issues = featurise(name, items, progress=False)
        assert frame.shape == (len(items), info.dim) and not issues
