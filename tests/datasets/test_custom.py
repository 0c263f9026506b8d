"""`matmodal build custom` on a small real subset made from the mirror (MP elastic CIFs + their
published K_Voigt as a CSV), then `matmodal train` and `matmodal predict` on it (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pymatgen.core import Structure

from matmodal import cli
from matmodal.config import Settings
from matmodal.datasets.build import BuildOptions, load
from matmodal.datasets.custom import CustomTarget, build_custom

N = 6


@pytest.fixture
def own_data(mirror_dir, tmp_path) -> tuple[Path, Path, pd.DataFrame]:
    """CIFs named by MP id and a properties CSV, written by the test from mirror rows; plus a broken
    CIF, a non-numeric value and a CSV row without a structure."""
    columns = json.loads((mirror_dir / "materials_project" / "mp_elastic_1000.json").read_text())
    index = list(columns["material_id"])[:N]
    folder = tmp_path / "cifs"
    folder.mkdir()
    for i in index:
        Structure.from_str(columns["cif"][i], fmt="cif").to(filename=str(folder / f"{columns['material_id'][i]}.cif"))
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a oops\n")
    (folder / "notes.txt").write_text("not a structure file: ignored")
    props = pd.DataFrame({"material_id": [columns["material_id"][i] for i in index],
                          "k_voigt": [columns["elasticity.K_Voigt"][i] for i in index],
                          "comment": "real MP value"}).astype({"k_voigt": object})
    props.loc[1, "k_voigt"] = "n/a"
    props = pd.concat([props, pd.DataFrame([{"material_id": "mp-nostructure", "k_voigt": 1.0}])], ignore_index=True)
    csv = tmp_path / "props.csv"
    props.to_csv(csv, index=False)
    return folder, csv, props


def test_targets_are_parsed_with_units_and_checked():
    assert CustomTarget.parse("band_gap:eV") == CustomTarget("band_gap", "eV")
    assert CustomTarget.parse(" k :GPa ") == CustomTarget("k", "GPa")
    assert CustomTarget.parse("count") == CustomTarget("count", "")
    for bad, message in (("2x:eV", "NAME must be"), ("magpie_001", "embedding column"), ("nsites", "overwrite")):
        with pytest.raises(ValueError, match=message):
            CustomTarget.parse(bad)


def test_build_custom_from_real_structures_and_a_properties_csv(own_data, tmp_path):
    folder, csv, props = own_data
    settings = Settings(output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    dataset = build_custom(folder, csv, "material_id", ["k_voigt:GPa"],
                           options=BuildOptions(robocrys=False), settings=settings)
    table = dataset.table.set_index("material_id")
    expected = props.set_index("material_id").k_voigt.iloc[:N]
    assert sorted(table.index) == sorted(expected.index)
    for material, value in expected.items():
        got = table.loc[material, "k_voigt"]
        assert math.isnan(got) if value == "n/a" else got == float(value)
    assert table.text_composition.notna().all() and table.spg.notna().all()

    schema = pq.read_schema(dataset.folder / "table.parquet")
    assert schema.field("k_voigt").metadata[b"unit"] == b"GPa"
    manifest = dataset.manifest
    rows = set(zip(manifest.record_id, manifest.severity, manifest.reason, strict=True))
    assert (props.material_id[1], "degraded", "k_voigt='n/a' is not a finite number (left NaN)") in rows
    assert ("mp-nostructure", "dropped", "row of props.csv has no structure") in rows
    assert (str(folder / "broken.cif"), "unreadable", "Invalid CIF file with no structures!") in rows
    info = json.loads((dataset.folder / "provenance.json").read_text())
    assert info["custom_targets"] == {"k_voigt": "GPa"} and info["targets"] == ["k_voigt"]
    assert info["sources"]["properties"]["id_column"] == "material_id"
    assert len(info["sources"]["properties"]["sha256"]) == 64
    assert load("custom", settings).targets == ["k_voigt"]


def test_cli_build_custom_and_its_options_elsewhere(own_data, tmp_path, capsys):
    folder, csv, _ = own_data
    base = ["--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    code = cli.main([*base, "build", "custom", "--no-robocrys", "--structures", str(folder), "--properties",
                     str(csv), "--id-column", "material_id", "--target", "k_voigt:GPa", "--name", "mine"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"mine: {N} kept, ")
    assert "broken.cif" in captured.err
    assert cli.main([*base, "train", "mine", "--target", "k_vrh"]) == 2
    assert "dataset 'mine' has no target(s) ['k_vrh'] (has: k_voigt)" in capsys.readouterr().err
    assert cli.main([*base, "build", "custom", "--structures", str(folder)]) == 2
    assert "needs --structures DIR_OR_FILE, --properties CSV" in capsys.readouterr().err
    assert cli.main([*base, "build", "alexandria", "--properties", str(csv)]) == 2
    assert "--properties applies to `build custom`" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ml
def test_build_train_predict_end_to_end_on_own_data(own_data, tmp_path, capfd):
    folder, csv, props = own_data
    base = ["--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert cli.main([*base, "build", "custom", "--no-robocrys", "--image-size", "32", "--structures", str(folder),
                     "--properties", str(csv), "--id-column", "material_id", "--target", "k_voigt:GPa"]) == 0
    capfd.readouterr()
    assert cli.main([*base, "train", "custom", "--combination", "image+text", "--epochs", "1", "--seeds", "0",
                     "--baselines", "--keep-models", "all"]) == 0
    runs = pd.read_csv(pd.io.common.StringIO(capfd.readouterr().out))
    assert list(runs.run_id) == ["automm__k_voigt__image+text__seed0"] and (runs.status == "ok").all()

    run = tmp_path / "out" / "runs" / "quick" / "custom" / runs.run_id[0]
    new = [folder / f"{props.material_id[0]}.cif", folder / f"{props.material_id[2]}.cif"]
    assert cli.main([*base, "predict", "--model", str(run), "--input", *map(str, new)]) == 0
    frame = pd.read_csv(pd.io.common.StringIO(capfd.readouterr().out))
    assert list(frame.material_id) == [props.material_id[0], props.material_id[2]]
    assert set(frame.unit) == {"GPa"} and set(frame.target) == {"k_voigt"} and set(frame.epochs) == {1}
