"""The notebooks run interactively as shipped: from ``notebooks/`` (a JupyterLab kernel's working
folder) with their own parameter defaults against the mirror at ``../../shared/mirror``.

The default suite executes, for every notebook, its ``parameters`` cell and the first code cell
after it (imports + ``matmodal.setup``) in one subprocess; the slow test executes notebook 01 end to
end in a real kernel under papermill and requires its outputs to carry no stderr stream.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
# how a notebook says an earlier step has not run yet (runs.NoRunsError, datasets.build.load, ...)
PREREQUISITE = re.compile(r"run 0\d first|is not built yet|run `matmodal build|run notebook 0\d")


def _setup_cells(source: Path) -> str:
    """The ``parameters`` cell and the first code cell after it, as one script."""
    import jupytext

    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    start = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    return "\n\n".join(c.source for c in cells[start:start + 2])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATMODAL_")}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1"}


def test_every_notebook_sets_up_with_its_own_defaults_from_notebooks(mirror_dir):
    if (REPO.parent / "shared" / "mirror").resolve() != mirror_dir.resolve():
        pytest.skip("the notebooks' default mirror (../../shared/mirror) is not the test mirror")
    scripts = {source.stem: _setup_cells(source) for source in SOURCES}
    runner = (
        "import json, sys\n"
        "scripts = json.loads(sys.stdin.read())\n"
        "for stem, code in scripts.items():\n"
        "    scope, error = {}, None\n"
        "    try:\n"
        "        exec(compile(code, stem, 'exec'), scope)\n"
        "    except Exception as e:\n"
        "        error = f'{type(e).__name__}: {e}'\n"
        "    layout = scope.get('layout')\n"
        "    print(json.dumps({'stem': stem, 'profile': getattr(layout, 'profile', None), 'error': error,\n"
        "                      'mirror': str(scope['settings'].mirror_dir) if 'settings' in scope else None}))\n"
    )
    done = subprocess.run([sys.executable, "-c", runner], input=json.dumps(scripts), cwd=NOTEBOOKS, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"stem"')]
    assert [r["stem"] for r in rows] == [s.stem for s in SOURCES]
    # a notebook whose inputs come from an earlier one may stop, saying which to run first
    errors = {r["stem"]: r["error"] for r in rows if r["error"]}
    assert {s: e for s, e in errors.items() if not PREREQUISITE.search(e)} == {}
    assert not {"01_data_understanding", "02_dataset_construction", "03_ecd_slicing"} & set(errors)
    assert {r["profile"] for r in rows} == {"quick"}
    assert {Path(r["mirror"]).resolve() for r in rows if r["mirror"] not in (None, "None")} <= {mirror_dir.resolve()}


@pytest.mark.slow
def test_notebook_01_runs_end_to_end_with_its_defaults_and_no_stderr(mirror_dir, tmp_path):
    """01 as shipped (Alexandria, every entry) in a real kernel under papermill: quiet outputs."""
    from matmodal.notebook_runner import run_notebook
    from matmodal.quiet import stderr_outputs

    source = NOTEBOOKS / "01_data_understanding.py"
    executed = run_notebook(source, tmp_path, {"output_dir": str(tmp_path / "outputs")})
    noise = stderr_outputs(executed)
    assert not noise, f"stderr in cell {noise[0][0]}: {noise[0][1][:800]}"
    assert executed.with_suffix(".html").stat().st_size > 0
