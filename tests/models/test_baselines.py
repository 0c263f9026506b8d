"""Baselines, featuriser selection, log-target back-transform, validation-only tuning, study run list."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from matmodal.metrics import regression_metrics
from matmodal.models.baselines import gbm_predict, label, train_baseline
from matmodal.models.recipe import recipe_for, study_configs
from matmodal.models.run_spec import (
    PREDICTIONS,
    RunConfig,
    SplitData,
    TargetTransform,
    prepare_split,
    tabular_columns,
)
from matmodal.models.tuning import select, tuning_split, with_extra
from tests.grid_fixtures import tiny_elastic


def poisoned(split: SplitData) -> SplitData:
    """``split`` whose test targets are NaN: anything that reads them during fitting breaks."""
    test = split.test.copy()
    test[[c for c in test.columns if c in ("k_vrh", "g_vrh", "vol_per_atom")]] = np.nan
    return SplitData(split.train, test, split.columns, split.n_labelled, split.n_missing_modality)


def test_featuriser_selection_names_what_is_missing(mirror_dir):
    table = tiny_elastic(mirror_dir).table
    chosen = tabular_columns(table, ("magpie",))
    assert chosen == tabular_columns(table) and all(c.startswith("magpie_") for c in chosen)
    with pytest.raises(ValueError, match=r"\['chgnet'\].*present: \['magpie'\]"):
        tabular_columns(table, ("chgnet", "magpie"))
    config = RunConfig("t", "k_vrh", "tabular", model="gbm", features=("magpie",))
    assert config.run_id == "gbm-magpie__k_vrh__tabular__seed0"
    assert label(config.as_dict()) == "Baseline: GBM (Magpie)"
    assert label(RunConfig("t", "k_vrh", "tabular", model="gbm").as_dict()) == "Baseline: GBM (tabular)"


def test_gbm_never_reads_the_test_targets(mirror_dir):
    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "k_vrh", "tabular", model="gbm", seed=2)
    split = prepare_split(table, config)
    pred, curve, params = gbm_predict(split, config, split.columns["tabular"])
    again, _, _ = gbm_predict(poisoned(split), config, split.columns["tabular"])
    np.testing.assert_array_equal(pred, again)
    assert set(curve["split"]) == {"train", "val"} and params["n_iter"] >= 1


def test_tuning_selects_on_training_holdouts_only(mirror_dir):
    table = tiny_elastic(mirror_dir).table
    base = RunConfig("t", "k_vrh", "tabular", model="gbm", seed=0)
    split = prepare_split(table, base)
    view = tuning_split(split, 0.25, 7)
    assert set(view.train["material_id"]) | set(view.test["material_id"]) == set(split.train["material_id"])
    assert not set(view.test["material_id"]) & set(split.test["material_id"])
    candidates = [with_extra(base, **{"gbm.learning_rate": lr}) for lr in (0.05, 0.3)]

    def predict(v, c):
        return gbm_predict(v, c, v.columns["tabular"])[0]

    ranked = select(split, candidates, predict)
    blind = select(poisoned(split), candidates, predict)
    pd.testing.assert_frame_equal(ranked, blind)
    assert list(ranked.columns) == ["candidate", "mean_mae", "sd_mae", "maes"] and len(ranked.maes[0]) == 2


def test_log10_target_is_back_transformed_before_metrics(mirror_dir, tmp_path):
    t = TargetTransform("log10")
    y = np.array([1.5, 20.0, 310.0])
    np.testing.assert_allclose(t.inverse(t.forward(y)), y, rtol=1e-12)
    np.testing.assert_array_equal(TargetTransform().forward(y), y)
    with pytest.raises(ValueError, match=r"1 value\(s\) <= 0 \(first at row 1: 0.0\)"):
        t.forward(np.array([2.0, 0.0]))
    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "k_vrh", "tabular", model="gbm", target_transform="log10")
    result = train_baseline(table, config, tmp_path)
    saved = pd.read_parquet(tmp_path / PREDICTIONS)
    assert result["metrics"] == regression_metrics(saved["y_true"], saved["y_pred"])
    assert saved["y_pred"].min() > 0 and abs(np.log10(saved["y_pred"].median() / saved["y_true"].median())) < 0.5
    assert config.run_id == "gbm-log10__k_vrh__tabular__seed0"


def test_study_runs_always_include_the_strong_and_the_control_gbm(caplog):
    configs = study_configs("d", ["k_vrh"], [0, 1], base={"features": ("potnet",), "epochs": 5},
                            combinations=["tabular", "tabular+text"],
                            recipe={"tabular": {"epochs": 60, "tabular_width": 256}, "text": {"epochs": 15}},
                            available_features=["potnet", "chgnet", "magpie"], fusion=["fusion_gbm"],
                            fusion_combinations=["tabular+text"], log_targets=["k_vrh"])
    seed0 = [c for c in configs if c.seed == 0]
    assert [c.run_id for c in seed0] == [
        "mean-log10__k_vrh__tabular__seed0", "gbm-potnet-log10__k_vrh__tabular__seed0",
        "gbm-chgnet+magpie-log10__k_vrh__tabular__seed0", "gbm-magpie-log10__k_vrh__tabular__seed0",
        "fusion_gbm-potnet-log10__k_vrh__tabular+text__seed0", "automm-potnet__k_vrh__tabular__seed0",
        "automm-potnet__k_vrh__tabular+text__seed0"]
    assert (seed0[-2].epochs, seed0[-1].epochs, seed0[-1].tabular_width) == (60, 15, 256)
    with caplog.at_level(logging.WARNING):
        few = study_configs("d", ["k_vrh"], [0], base={}, combinations=[], available_features=["magpie"])
    assert [c.run_id for c in few] == ["mean__k_vrh__tabular__seed0", "gbm__k_vrh__tabular__seed0"]
    assert "chgnet" in caplog.text
    assert recipe_for("image+tabular", {"tabular": {"epochs": 60, "dropout": 0.2}, "image": {"epochs": 8}}) == {
        "epochs": 8, "dropout": 0.2}
    with pytest.raises(ValueError, match="lr"):
        recipe_for("tabular", {"tabular": {"lr": 1}})


def test_ensemble_is_the_mean_of_its_stored_members(mirror_dir, tmp_path):
    from matmodal.models.ensemble import label as ensemble_label
    from matmodal.models.ensemble import train_ensemble

    table = tiny_elastic(mirror_dir).table
    spec = "mean:tabular|gbm:tabular"
    config = RunConfig("t", "k_vrh", "tabular", model="ensemble", features=("magpie",), extra=(("ensemble.members", spec),))
    assert config.run_id == "ensemble-magpie__k_vrh__mean.tabular,gbm.tabular__seed0"
    assert ensemble_label(config.as_dict()) == "Ensemble (mean): mean Tabular + GBM Tabular (Magpie)"
    with pytest.raises(FileNotFoundError, match="mean:tabular: 0 finished"):
        train_ensemble(table, config, tmp_path / config.run_id)
    preds = []
    for model, transform in (("mean", "none"), ("gbm", "log10")):
        member = RunConfig("t", "k_vrh", "tabular", model=model, features=("magpie",), target_transform=transform)
        train_baseline(table, member, tmp_path / member.run_id)
        (tmp_path / member.run_id / "result.json").write_text('{"status": "ok"}')
        preds.append(pd.read_parquet(tmp_path / member.run_id / PREDICTIONS)["y_pred"].to_numpy())
    result = train_ensemble(table, config, tmp_path / config.run_id)
    saved = pd.read_parquet(tmp_path / config.run_id / PREDICTIONS)
    np.testing.assert_allclose(saved["y_pred"], (preds[0] + preds[1]) / 2)
    assert result["members"] == ["mean__k_vrh__tabular__seed0", "gbm-magpie-log10__k_vrh__tabular__seed0"]


def test_an_ensemble_member_can_name_its_recipe(tmp_path):
    """``automm-cached:tabular+text`` is the run of recipe ``cached``, not the recipe-less one."""
    from matmodal.models.ensemble import label as ensemble_label
    from matmodal.models.ensemble import member_folder, members

    spec = "gbm:tabular|automm-cached:tabular+text"
    config = RunConfig("t", "k_vrh", "tabular", model="ensemble", features=("magpie",), extra=(("ensemble.members", spec),))
    assert members(config) == [("gbm", "tabular", ""), ("automm", "tabular+text", "cached")]
    assert ensemble_label(config.as_dict()) == (
        "Ensemble (mean): GBM Tabular + AutoMM Tabular + Text (recipe cached) (Magpie)")
    for name in ("automm-magpie__k_vrh__tabular+text__seed0", "automm-magpie-frozen__k_vrh__tabular+text__seed0",
                 "automm-magpie-cached__k_vrh__tabular+text__seed0"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text('{"status": "ok"}')
    assert member_folder(tmp_path, config, "automm", "tabular+text", "cached").name == (
        "automm-magpie-cached__k_vrh__tabular+text__seed0")
    assert member_folder(tmp_path, config, "automm", "tabular+text").name == "automm-magpie__k_vrh__tabular+text__seed0"


def test_a_saved_gbm_predicts_exactly_what_the_run_predicted_and_refuses_foreign_types(mirror_dir, tmp_path):
    """The GBM run writes model/gbm.skops + gbm.json; loading it back (no pickle) gives the
    run's own test predictions bit for bit; a file asking for other types is refused."""
    import json

    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingRegressor

    from matmodal.models.baselines import GBM_CARD, GBM_FILE, load_gbm

    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "k_vrh", "tabular", model="gbm", features=("magpie",), seed=1, target_transform="log10")
    result = train_baseline(table, config, tmp_path)
    saved = load_gbm(tmp_path / "model")
    card = json.loads((tmp_path / "model" / GBM_CARD).read_text())
    assert card["n_train"] == result["n_train"] == 41 and card["seed"] == 1 and card["target_transform"] == "log10"
    assert card["features"] == result["feature_columns"]["tabular"] and len(card["features"]) == 132
    split = prepare_split(table, config)
    values = TargetTransform("log10").inverse(saved.predict(split.test))
    np.testing.assert_array_equal(values, pd.read_parquet(tmp_path / PREDICTIONS)["y_pred"].to_numpy())
    with pytest.raises(ValueError, match="lacks"):
        saved.predict(split.test.drop(columns=card["features"][:1]))

    class Sneaky(HistGradientBoostingRegressor):  # a type no saved GBM holds
        pass

    sio.dump(Sneaky(max_iter=2).fit(np.eye(4), np.arange(4.0)), tmp_path / "model" / GBM_FILE)
    with pytest.raises(ValueError, match=r"asks for types a saved GBM never holds.*Sneaky"):
        load_gbm(tmp_path / "model")
