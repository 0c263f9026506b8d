from matmodal import cli


def test_build_from_the_mirror(mirror_dir, tmp_path, capsys):
    code = cli.main(["--mirror", str(mirror_dir), "--output-dir", str(tmp_path), "--cache-dir",
                     str(tmp_path / "c"), "build", "alexandria", "--no-robocrys"])
    assert code == 0
    assert "alexandria: 108 records" in capsys.readouterr().out
    assert (tmp_path / "datasets" / "quick" / "alexandria" / "manifest.csv").exists()


def test_fetch_lists_mirror_files(mirror_dir, capsys):
    assert cli.main(["--mirror", str(mirror_dir), "fetch", "alexandria"]) == 0
    assert capsys.readouterr().out.count(".json.bz2") == 2


def test_missing_mirror_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["--mirror", str(tmp_path / "none"), "build", "alexandria", "--no-robocrys"])
    assert code == 2
    assert "mirror has no alexandria/ folder" in capsys.readouterr().err
