from matmodal import cli


def test_build_from_the_mirror(mirror_dir, tmp_path, capsys):
    code = cli.main(["--mirror", str(mirror_dir), "--output-dir", str(tmp_path), "--cache-dir",
                     str(tmp_path / "c"), "build", "alexandria", "--no-robocrys"])
    assert code == 0
    assert capsys.readouterr().out.startswith("alexandria: 108 kept, ")
    assert (tmp_path / "datasets" / "quick" / "alexandria" / "manifest.csv").exists()


def test_fetch_lists_mirror_files(mirror_dir, capsys):
    assert cli.main(["--mirror", str(mirror_dir), "fetch", "alexandria"]) == 0
    assert capsys.readouterr().out.count(".json.bz2") == 2


def test_missing_mirror_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["--mirror", str(tmp_path / "none"), "build", "alexandria", "--no-robocrys"])
    assert code == 2
    assert "mirror has no alexandria/ folder" in capsys.readouterr().err


def _actions(parser):
    """Every (command path, action) of the parser and its subcommands."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from ((f"{name} {path}".strip(), a) for path, a in _actions(child))
        else:
            yield "", action


def test_every_flag_and_argument_is_documented():
    undocumented = [(path or "matmodal", a.dest) for path, a in _actions(cli.parser()) if not a.help]
    assert undocumented == []


def test_version(capsys):
    import matmodal

    with __import__("pytest").raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"matmodal {matmodal.__version__}"


def test_predict_help_says_model_folders_must_be_trusted(capsys):
    import pytest

    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "must be trusted" in text and "--trust-unverified" in text and "--dataset" in text


def test_run_all_usage_and_unknown_profile():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "run_all.sh"
    shown = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: ./run_all.sh [PROFILE]")
    assert "quick full paper" in shown.stdout
    wrong = subprocess.run(["bash", str(script), "bogus"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.splitlines() == [
        "run_all.sh: unknown profile 'bogus' (choose one of: quick full paper; see --help)"]
