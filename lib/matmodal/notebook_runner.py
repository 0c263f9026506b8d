"""Run the numbered notebooks headlessly: jupytext -> papermill (explicit kernel) -> HTML.

Used by ``run_all.sh``. Parameters come from ``notebooks/profiles.yaml`` (one section per
profile, one mapping per notebook stem, validated by :mod:`matmodal.profiles`), plus ``mirror``,
``output_dir``, ``seed`` and ``profile`` for all, plus any ``--set NOTEBOOK.PARAMETER=VALUE``
overrides (e.g. a small sample of the full profile). Executed copies are kept as ``.ipynb`` and
rendered ``.html`` in ``Layout.rendered_notebooks_dir`` (``<output_dir>/notebooks/<profile>/``),
and the HTML is copied to ``Layout.published_notebooks_dir`` (``rendered_notebooks/<profile>/``
beside ``paper_figures/``, committed for reviewers). Paths are injected relative to the notebooks'
folder (the kernel's working directory), so no rendered notebook shows the absolute folders of
whoever ran it. The run stops at the first failing notebook, naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from matmodal.paths import machine_neutral
from matmodal.quiet import BATCH_ENV, restore_env

KERNEL = "matmodal"
SECRET_ENV = ("MP_API_KEY",)


def notebook_parameters(profile_file: Path, profile: str, stem: str, common: dict[str, Any],
                        overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Common parameters overlaid with the profile's validated section for this notebook."""
    from matmodal.profiles import ProfileError, load_profiles, with_overrides

    sections = load_profiles(profile_file)
    if profile not in sections:
        raise ProfileError(f"profile {profile!r} is not in {profile_file} (has: {', '.join(sections)})")
    chosen = with_overrides(profile, sections[profile], list(overrides))
    return {**common, **chosen.get(stem, {}), "profile": profile}


def assert_no_secret(path: Path) -> None:
    """Fail if a secret's value (e.g. the MP API key) appears in an executed notebook."""
    text = path.read_text(errors="ignore")
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 8 and value in text:
            path.unlink()
            raise RuntimeError(f"{path.name} contained the value of {name}; the file was deleted")


def relative_to_notebooks(path: str | Path, notebooks: Path) -> str:
    """``path`` as the kernel (working directory ``notebooks``) should see it: relative, no user folders.

    Symbolic links are kept, not followed: a ``../shared`` that links to ``/work/shared`` stays
    ``../../shared/mirror`` (resolving it wrote the link's absolute target into every notebook)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(notebooks))


_HEAD_STYLE = re.compile(r"<style[^>]*>(.*?)</style>\s*", re.DOTALL)
_HEAD_MODULE = re.compile(r'<script type="module">(.*?)</script>', re.DOTALL)


def _asset(folder: Path, suffix: str, text: str) -> str:
    """Write ``text`` once under ``folder`` as ``notebook-<sha256[:12]><suffix>``; returns the file name."""
    name = f"notebook-{hashlib.sha256(text.encode()).hexdigest()[:12]}{suffix}"
    if not (folder / name).exists():
        (folder / name).write_text(text)
    return name


def share_head_assets(html: str, folder: Path) -> str:
    """Move the template's CSS and module script out of ``<head>`` into files shared by every notebook.

    nbconvert embeds ~7,300 identical lines of stylesheet (and the mermaid loader) in each page;
    the committed pages link one copy instead (named by content hash, so a template change writes
    a new file). Styles inside the body (pandas' scoped table styles) stay where they are.
    """
    end = html.find("</head>")
    if end < 0:
        return html
    head, body = html[:end], html[end:]
    css = "\n".join(match.group(1) for match in _HEAD_STYLE.finditer(head))
    if css:
        link = f'<link rel="stylesheet" href="{_asset(folder, ".css", css)}">\n'
        head = _HEAD_STYLE.sub("", head)
        head = head.replace("</title>", "</title>" + link, 1) if "</title>" in head else head + link
    module = _HEAD_MODULE.search(head)
    if module:
        name = _asset(folder, ".mjs", module.group(1))
        head = head[:module.start()] + f'<script type="module" src="{name}"></script>' + head[module.end():]
    return head + body


def publish(html: Path, folder: Path, project: Path | None = None) -> Path:
    """Write one rendered notebook into the committed folder for reviewers, machine-neutral,
    with the template's stylesheet and scripts shared between the pages (:func:`share_head_assets`)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / html.name
    target.write_text(share_head_assets(machine_neutral(html.read_text(), project or Path.cwd()), folder))
    prune_assets(folder)
    return target


def prune_assets(folder: Path) -> list[Path]:
    """Delete shared ``notebook-*`` assets that no page in ``folder`` links any more; returns them."""
    pages = "".join(page.read_text(errors="ignore") for page in folder.glob("*.html"))
    stale = [asset for asset in folder.glob("notebook-*") if asset.name not in pages]
    for asset in stale:
        asset.unlink()
    return stale


@contextmanager
def kernel_env(values: dict[str, str]) -> Iterator[None]:
    """Environment for the kernels started inside the block; this process's is restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        restore_env(saved)


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
    with kernel_env({BATCH_ENV: "1"}):  # the kernel inherits it: matmodal.quiet's batch mode (no progress bars)
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
    from matmodal.layout import Layout
    from matmodal.profiles import ProfileError, parse_override

    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--profile", default="quick")
    cli.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    cli.add_argument("--mirror", default=os.environ.get("MATMODAL_MIRROR_DIR", ""))
    cli.add_argument("--output-dir", type=Path, default=Path("outputs"))
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--only", nargs="*", help="notebook stems to run (default: all, in order)")
    cli.add_argument("--set", dest="overrides", action="append", default=[], metavar="NOTEBOOK.PARAMETER=VALUE",
                     help="override one profile value (YAML value, repeatable), e.g. 04_training.max_rows=40")
    cli.add_argument("--publish", action="store_true",
                     help="also copy each rendered HTML to rendered_notebooks/<profile>/ (run_all.sh does)")
    args = cli.parse_args(argv)
    common = {"mirror": relative_to_notebooks(args.mirror, args.notebooks) if args.mirror else "",
              "output_dir": relative_to_notebooks(args.output_dir, args.notebooks), "seed": args.seed}
    layout = Layout(args.output_dir, args.output_dir.parent / "paper_figures", args.profile)
    out_dir = layout.rendered_notebooks_dir
    sources = sorted(args.notebooks.glob("[0-9][0-9]_*.py"))
    try:
        stems = {parse_override(o)[0] for o in args.overrides} | set(args.only or ())
        unknown = sorted(stems - {s.stem for s in sources})
        if unknown:
            raise ProfileError(f"no notebook {', '.join(unknown)} in {args.notebooks}")
        params = {s.stem: notebook_parameters(args.notebooks / "profiles.yaml", args.profile, s.stem, common,
                                              args.overrides) for s in sources}
    except (ProfileError, FileNotFoundError) as error:
        print(f"[run_all] {error}", file=sys.stderr)
        return 2
    for source in sources:
        if args.only and source.stem not in args.only:
            continue
        start = time.perf_counter()
        print(f"[run_all] {source.name} ({args.profile}) ...", flush=True)
        try:
            executed = run_notebook(source, out_dir, params[source.stem])
            if args.publish:
                publish(executed.with_suffix(".html"), layout.published_notebooks_dir)
        except Exception as error:  # name the failing notebook, then stop
            print(f"[run_all] FAILED in {source.name}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        print(f"[run_all] {source.name} done in {time.perf_counter() - start:.0f} s -> {executed}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
