import os
from pathlib import Path

import pytest

from matmodal import notebook_runner


def test_profile_parameters_overlay(tmp_path):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("quick:\n  02_dataset_construction: {image_size: 32}\n")
    params = notebook_runner.notebook_parameters(profiles, "quick", "02_dataset_construction",
                                                 {"seed": 0, "image_size": 64})
    assert params == {"seed": 0, "image_size": 32, "profile": "quick"}
    with pytest.raises(ValueError, match="full"):
        notebook_runner.notebook_parameters(profiles, "full", "02_dataset_construction", {})
    overridden = notebook_runner.notebook_parameters(profiles, "quick", "04_training", {},
                                                     ["04_training.max_rows=40", "04_training.seeds=[0, 1]"])
    assert overridden == {"max_rows": 40, "seeds": [0, 1], "profile": "quick"}


@pytest.mark.parametrize(("text", "message"), [
    ("quick:\n  04_training: {epoch: 3}\n", "profiles.yaml: quick.04_training.epoch: Extra inputs are not permitted"),
    ("quick:\n  09_nope: {}\n", "quick.09_nope: unknown notebook"),
    ("fast:\n  04_training: {}\n", "unknown profile 'fast'"),
    ("quick:\n  04_training: {epochs: ten}\n", "quick.04_training.epochs: Input should be a valid integer"),
    ("quick:\n  05_evaluation: {profile: full}\n", "profile is passed by the runner"),
    ("quick:\n  02_dataset_construction: {datasets: [mp_elastc]}\n", "datasets.0: Input should be"),
])
def test_profiles_file_errors_name_the_profile_notebook_and_parameter(tmp_path, text, message):
    from matmodal.profiles import ProfileError, load_profiles

    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(".", r"\.")) as error:
        load_profiles(path)
    assert "\n" not in str(error.value)


def test_a_bad_override_is_one_clear_line(capsys):
    code = notebook_runner.main(["--set", "04_training.max_rows=many", "--only", "04_training"])
    assert code == 2
    assert "--set 04_training.max_rows=many: quick.04_training.max_rows: Input should be a valid integer" \
        in capsys.readouterr().err
    assert notebook_runner.main(["--set", "max_rows=4"]) == 2
    assert "expected NOTEBOOK.PARAMETER=VALUE" in capsys.readouterr().err


def test_secret_in_an_executed_notebook_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", "abcdefgh12345678")
    leaked = tmp_path / "leak.ipynb"
    leaked.write_text('{"outputs": "key=abcdefgh12345678"}')
    with pytest.raises(RuntimeError, match="MP_API_KEY"):
        notebook_runner.assert_no_secret(leaked)
    assert not leaked.exists()
    clean = tmp_path / "clean.ipynb"
    clean.write_text("{}")
    notebook_runner.assert_no_secret(clean)


def test_profiles_file_names_every_notebook_profile():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1] / "notebooks"
    profiles = yaml.safe_load((root / "profiles.yaml").read_text())
    assert set(profiles) == {"quick", "full", "paper"}


def test_every_profile_parameter_is_a_declared_notebook_parameter(tmp_path, caplog):
    """papermill must parse every line of each `parameters` cell, and profiles.yaml may only set
    parameters a notebook declares (a typo would otherwise be injected and silently ignored)."""
    from pathlib import Path

    import jupytext
    import nbformat
    import papermill
    import yaml

    root = Path(__file__).resolve().parents[1] / "notebooks"
    profiles = yaml.safe_load((root / "profiles.yaml").read_text())
    common = {"mirror", "output_dir", "seed", "profile"}  # what run_all passes to every notebook
    for source in sorted(root.glob("[0-9][0-9]_*.py")):
        notebook = jupytext.read(source)
        notebook.metadata["kernelspec"] = {"name": notebook_runner.KERNEL, "language": "python", "display_name": "x"}
        path = tmp_path / f"{source.stem}.ipynb"
        nbformat.write(notebook, path)
        caplog.clear()
        declared = set(papermill.inspect_notebook(str(path)))
        assert not [r.message for r in caplog.records if "Unable to parse" in r.message], source.name
        assert common <= declared, source.name
        for profile, sections in profiles.items():
            assert set(sections.get(source.stem) or {}) <= declared, (profile, source.name)


def _notebook(path, body):
    path.write_text('# %% tags=["parameters"]\nsample_size = 1\n\n# %%\n' + body + "\n")


def test_runner_executes_with_parameters_and_stops_at_the_first_failure(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_data_understanding.py", "assert sample_size == 7, sample_size\nprint('seed', seed, profile)")
    _notebook(nbs / "02_dataset_construction.py", "raise RuntimeError('broken on purpose')")
    _notebook(nbs / "03_ecd_slicing.py", "print('should not run')")
    (nbs / "profiles.yaml").write_text("quick:\n  01_data_understanding: {sample_size: 7}\n")
    code = notebook_runner.main(["--notebooks", str(nbs), "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert "FAILED in 02_dataset_construction.py" in capsys.readouterr().err
    out = tmp_path / "out" / "notebooks" / "quick"
    assert (out / "01_data_understanding.ipynb").exists() and (out / "01_data_understanding.html").exists()
    assert "seed 0 quick" in (out / "01_data_understanding.ipynb").read_text()
    assert not (out / "03_ecd_slicing.ipynb").exists()


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("stem", ["05_evaluation", "06_heatmaps"])
def test_evaluating_before_training_stops_and_writes_nothing(tmp_path, stem):
    """05/06 before 04 used to overwrite paper_figures with empty tables, then crash."""
    from papermill.exceptions import PapermillExecutionError

    figures = tmp_path / "paper_figures"
    params = {"profile": "full", "mirror": "", "output_dir": str(tmp_path / "outputs"), "seed": 0,
              "figures_dir": str(figures)}
    with pytest.raises(PapermillExecutionError, match=r"no runs under .*outputs/runs/full/mp_elastic — run 04 first"):
        notebook_runner.run_notebook(NOTEBOOKS / f"{stem}.py", tmp_path / "executed", params)
    assert not figures.exists()


PATH_NAMES = {"settings", "layout", "runs_root", "out", "figures", "grid_root"}


def _setup_statements(notebook) -> tuple[str, str]:
    """The parameters cell, and the path-deciding statements of the setup cell after it
    (assignments to settings/layout/runs_root/out/figures/grid_root)."""
    import ast

    cells = [c for c in notebook.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    chosen = []
    for node in ast.parse(cells[index + 1].source).body:
        targets = [t for n in getattr(node, "targets", []) for t in ast.walk(n) if isinstance(t, ast.Name)]
        if {t.id for t in targets} & PATH_NAMES:
            chosen.append(ast.unparse(node))
    return cells[index].source, "\n".join(chosen)


@pytest.mark.parametrize("profile", ["quick", "full", "paper"])
def test_every_notebook_resolves_its_paths_through_the_layout_of_its_profile(tmp_path, mirror_dir, profile):
    """Execute each notebook's parameters cell, the runner's parameters for ``profile`` and the
    setup statements: every path comes from the layout of that profile, under output_dir."""
    import jupytext

    output = tmp_path / "outputs"
    common = {"mirror": str(mirror_dir), "output_dir": str(output), "seed": 0}
    for source in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        parameters, setup = _setup_statements(jupytext.read(source))
        assert "matmodal.setup(profile=profile" in setup, f"{source.name}: no setup call in the cell after parameters"
        injected = notebook_runner.notebook_parameters(NOTEBOOKS / "profiles.yaml", profile, source.stem, common)
        namespace: dict = {}
        exec(parameters, namespace)
        namespace.update(injected)
        exec("import matmodal\nfrom pathlib import Path\n" + setup, namespace)
        settings, layout = namespace["settings"], namespace["layout"]
        assert settings.profile == profile and layout.profile == profile, source.name
        assert settings.output_dir == output and settings.mirror_dir == mirror_dir.resolve(), source.name
        assert layout.runs_root == output / "runs" / profile
        expected = {"runs_root": output / "runs" / profile, "grid_root": output / "runs" / profile,
                    "out": output / "massa" / profile, "figures": tmp_path / "paper_figures" / "massa2024" / profile}
        for name, path in expected.items():
            if name in namespace:
                assert namespace[name] == path, (source.name, name)
        assert layout.figures_dir("costa2025", "mp_elastic") == tmp_path / f"paper_figures/costa2025/{profile}/mp_elastic"


FULL_SAMPLE = [
    "02_dataset_construction.datasets=[mp_elastic]", "02_dataset_construction.featurisers=[magpie]",
    "02_dataset_construction.robocrys_limit=5", "02_dataset_construction.image_size=0",
    "04_training.datasets=[mp_elastic]", "04_training.targets=[k_vrh]", "04_training.seeds=[0]",
    "04_training.combinations=[tabular]", "04_training.epochs=1", "04_training.max_rows=60",
    "04_training.features=[magpie]", "04_training.recipe={}", "04_training.fusion=[]", "04_training.ensembles=[]",
    "05_evaluation.datasets=[mp_elastic]", "06_heatmaps.datasets=[mp_elastic]",
]


@pytest.mark.slow
def test_full_profile_on_a_small_sample_writes_under_full(mirror_dir, tmp_path):
    """`./run_all.sh full` used to evaluate the quick grid; on a small sample its tables land under full/."""
    args = ["--profile", "full", "--notebooks", str(NOTEBOOKS), "--mirror", str(mirror_dir),
            "--output-dir", str(tmp_path / "outputs"),
            "--only", "02_dataset_construction", "04_training", "05_evaluation", "06_heatmaps"]
    assert notebook_runner.main(args + [a for item in FULL_SAMPLE for a in ("--set", item)]) == 0
    assert (tmp_path / "outputs/datasets/full/mp_elastic/table.parquet").exists()
    assert len(list((tmp_path / "outputs/runs/full/mp_elastic").glob("*/result.json"))) == 3  # mean, gbm, tabular
    tables = tmp_path / "paper_figures/costa2025/full/mp_elastic_smoke"  # 1 seed, 1 epoch: a smoke grid (Layout)
    assert (tables / "table2_mae.csv").exists() and (tables / "figure4_heatmaps.png").exists()
    assert not (tmp_path / "paper_figures/costa2025/quick").exists()
    assert (tmp_path / "outputs/notebooks/full/05_evaluation.html").exists()


def _code_line(stem: str, needle: str) -> str:
    import jupytext

    lines = [line for cell in jupytext.read(NOTEBOOKS / f"{stem}.py").cells if cell.cell_type == "code"
             for line in cell.source.splitlines() if needle in line]
    assert len(lines) == 1, (stem, needle, lines)
    return lines[0]


def test_notebook_02_shows_the_table_without_its_embedding_columns(mirror_dir):
    """The display line used `c[-4:].isdigit()`, False for "_000": every magpie_NNN column was shown."""
    from matmodal.schema import embedding_columns
    from tests.grid_fixtures import tiny_elastic

    first = tiny_elastic(mirror_dir).table
    assert len(embedding_columns(first.columns)) > 100  # Magpie: magpie_000 ... (real dataset columns)
    namespace = {"first": first, "embedding_columns": embedding_columns}
    shown = eval(_code_line("02_dataset_construction", "first.drop(").split("  #")[0], namespace)
    assert not embedding_columns(shown.columns)
    assert {"material_id", "formula", "k_vrh"} <= set(shown.columns)


def test_notebook_03_sections_are_numbered_in_order():
    import re

    import jupytext

    headings = [m.group(1) for cell in jupytext.read(NOTEBOOKS / "03_ecd_slicing.py").cells if cell.cell_type == "markdown"
                for m in re.finditer(r"^## (\d+) ·", cell.source, re.MULTILINE)]
    assert headings == [str(i) for i in range(1, len(headings) + 1)] and len(headings) >= 4


def test_injected_paths_are_relative_to_the_notebooks_folder(tmp_path):
    """Rendered notebooks must not show the absolute folders of whoever ran them."""
    notebooks = tmp_path / "project" / "notebooks"
    notebooks.mkdir(parents=True)
    mirror = tmp_path / "shared" / "mirror"
    assert notebook_runner.relative_to_notebooks(mirror, notebooks) == "../../shared/mirror"
    assert notebook_runner.relative_to_notebooks(tmp_path / "project" / "outputs", notebooks) == "../outputs"


def test_published_html_lands_beside_paper_figures(tmp_path):
    from matmodal.layout import Layout

    layout = Layout(tmp_path / "outputs", tmp_path / "paper_figures", "quick")
    html = tmp_path / "01_data_understanding.html"
    html.write_text("<html>ok</html>")
    copied = notebook_runner.publish(html, layout.published_notebooks_dir)
    assert copied == tmp_path / "rendered_notebooks" / "quick" / "01_data_understanding.html"
    assert copied.read_text() == "<html>ok</html>"


def test_integer_profile_values_stay_integers():
    """`tower_clip: {align_epochs: 5}` reached `range()` as 5.0 and crashed notebook 07 (quick)."""
    from matmodal.profiles import load_profiles

    for profile in ("quick", "full"):
        value = load_profiles(NOTEBOOKS / "profiles.yaml")[profile]["07_massa_training"]["tower_clip"]["align_epochs"]
        assert isinstance(value, int), (profile, value)


def test_published_html_names_no_machine_folder(tmp_path):
    project, home = tmp_path / "work" / "main", tmp_path / "home" / "me"
    text = f"table in {project}/outputs/datasets/quick/mp_elastic, weights in {home}/.cache/matmodal/x"
    assert notebook_runner.machine_neutral(text, project, home) == (
        "table in ./outputs/datasets/quick/mp_elastic, weights in ~/.cache/matmodal/x")


def test_batch_mode_reaches_the_kernel_but_does_not_leak_into_this_process(monkeypatch):
    """The runner used to set MATMODAL_BATCH=1 for good, so later in-process quiet() calls hid every
    progress bar of an interactive session (and broke tests run after it)."""
    from matmodal.quiet import BATCH_ENV

    monkeypatch.delenv(BATCH_ENV, raising=False)
    with notebook_runner.kernel_env({BATCH_ENV: "1"}):
        assert os.environ[BATCH_ENV] == "1"
    assert BATCH_ENV not in os.environ


def test_published_pages_share_one_stylesheet(tmp_path):
    """Each rendered page embedded nbconvert's ~7,300-line stylesheet; published pages link one shared copy."""
    head = '<html><head><title>{0}</title><style type="text/css">\n.jp-Cell {{ margin: 0 }}\n</style>\n' \
           '<script type="module">\nconsole.log(1);\n</script></head>' \
           '<body><style scoped="">.df {{ color: red }}</style>{0}</body></html>'
    folder = tmp_path / "rendered_notebooks" / "quick"
    for stem in ("01_data_understanding", "02_dataset_construction"):
        html = tmp_path / f"{stem}.html"
        html.write_text(head.format(stem))
        notebook_runner.publish(html, folder)
    assets = sorted(path.name for path in folder.glob("notebook-*"))
    assert [Path(name).suffix for name in assets] == [".css", ".mjs"]
    css = next(folder.glob("notebook-*.css"))
    assert css.read_text().strip() == ".jp-Cell { margin: 0 }"
    page = (folder / "02_dataset_construction.html").read_text()
    assert f'<link rel="stylesheet" href="{css.name}">' in page
    assert "<style scoped=\"\">.df { color: red }</style>" in page  # body styles (pandas tables) stay
    assert "console.log" not in page and 'type="module" src="notebook-' in page
    (folder / "notebook-000000000000.css").write_text("stale")
    assert [path.name for path in notebook_runner.prune_assets(folder)] == ["notebook-000000000000.css"]


def test_a_symlinked_mirror_stays_relative_to_the_project(tmp_path):
    """With ../shared a link to another folder, the rendered notebooks showed
    '../../../../work/shared/mirror' (the link's target) instead of '../../shared/mirror'."""
    target = tmp_path / "elsewhere" / "deep" / "shared"
    (target / "mirror").mkdir(parents=True)
    project = tmp_path / "clone" / "main"
    (project / "notebooks").mkdir(parents=True)
    (tmp_path / "clone" / "shared").symlink_to(target)
    mirror = project / ".." / "shared" / "mirror"
    assert notebook_runner.relative_to_notebooks(mirror, project / "notebooks") == "../../shared/mirror"
