"""Run the numbered notebooks headlessly: jupytext -> papermill (explicit kernel) -> HTML.

Used by ``run_all.sh``. Parameters come from ``notebooks/profiles.yaml`` (one section per
profile, one mapping per notebook stem), plus ``mirror``, ``output_dir`` and ``seed`` for all.
Executed copies are kept as ``.ipynb`` and rendered ``.html`` under
``<output_dir>/notebooks/<profile>/``; the run stops at the first failing notebook, naming it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

KERNEL = "matmodal"
SECRET_ENV = ("MP_API_KEY",)


def notebook_parameters(profile_file: Path, profile: str, stem: str, common: dict[str, Any]) -> dict[str, Any]:
    """Common parameters overlaid with the profile's section for this notebook."""
    sections = yaml.safe_load(profile_file.read_text()) or {}
    if profile not in sections:
        raise KeyError(f"profile {profile!r} is not in {profile_file} (has: {', '.join(sections)})")
    return {**common, **(sections[profile].get(stem) or {})}


def assert_no_secret(path: Path) -> None:
    """Fail if a secret's value (e.g. the MP API key) appears in an executed notebook."""
    text = path.read_text(errors="ignore")
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 8 and value in text:
            path.unlink()
            raise RuntimeError(f"{path.name} contained the value of {name}; the file was deleted")


def run_notebook(source: Path, out_dir: Path, parameters: dict[str, Any]) -> Path:
    """Execute one jupytext notebook; returns the executed ``.ipynb``."""
    import jupytext
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{source.stem}.input.ipynb"
    executed = out_dir / f"{source.stem}.ipynb"
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python (matmodal)", "language": "python"}
    notebook.metadata.setdefault("language_info", {"name": "python"})
    nbformat.write(notebook, raw)
    papermill.execute_notebook(
        str(raw), str(executed), parameters=parameters, kernel_name=KERNEL,
        cwd=str(source.parent), progress_bar=False, log_output=True,
    )
    raw.unlink()
    assert_no_secret(executed)
    body, _ = HTMLExporter().from_filename(str(executed))
    executed.with_suffix(".html").write_text(body)
    return executed


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--profile", default="quick")
    cli.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    cli.add_argument("--mirror", default=os.environ.get("MATMODAL_MIRROR_DIR", ""))
    cli.add_argument("--output-dir", type=Path, default=Path("outputs"))
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--only", nargs="*", help="notebook stems to run (default: all, in order)")
    args = cli.parse_args(argv)
    common = {"mirror": str(Path(args.mirror).resolve()) if args.mirror else "",
              "output_dir": str(args.output_dir.resolve()), "seed": args.seed}
    out_dir = args.output_dir / "notebooks" / args.profile
    sources = sorted(args.notebooks.glob("[0-9][0-9]_*.py"))
    for source in sources:
        if args.only and source.stem not in args.only:
            continue
        params = notebook_parameters(args.notebooks / "profiles.yaml", args.profile, source.stem, common)
        start = time.perf_counter()
        print(f"[run_all] {source.name} ({args.profile}) ...", flush=True)
        try:
            executed = run_notebook(source, out_dir, params)
        except Exception as error:  # name the failing notebook, then stop
            print(f"[run_all] FAILED in {source.name}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        print(f"[run_all] {source.name} done in {time.perf_counter() - start:.0f} s -> {executed}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
