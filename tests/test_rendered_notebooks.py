"""The committed rendered notebooks (rendered_notebooks/quick/, written by run_all.sh) are what a
reviewer reads without running anything: every notebook is there, no library noise on stderr,
no machine's folders, small enough to commit."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from matmodal.quiet import EXPECTED_STDERR

ROOT = Path(__file__).resolve().parents[1]
RENDERED = ROOT / "rendered_notebooks" / "quick"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
STDERR = re.compile(r'data-mime-type="application/vnd\.jupyter\.stderr"[^>]*>\s*<pre>(.*?)</pre>', re.S)


def stderr_texts(page: str) -> list[str]:
    """Text of every stderr output block of an nbconvert HTML page."""
    return [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in STDERR.findall(page)]


def test_stderr_blocks_are_found_in_nbconvert_html():
    page = ('<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr">'
            "<pre>LeafSpec is deprecated &amp; noisy</pre></div>")
    assert stderr_texts(page) == ["LeafSpec is deprecated & noisy"]


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_rendered_notebook_is_committed_quiet_and_machine_neutral(stem):
    path = RENDERED / f"{stem}.html"
    assert path.exists(), f"{path.relative_to(ROOT)} missing: run ./run_all.sh and commit rendered_notebooks/"
    page = path.read_text()
    unexpected = [t for t in stderr_texts(page) if not any(re.search(p, t) for p in EXPECTED_STDERR)]
    assert not unexpected, f"{path.name}: unexpected stderr output: {unexpected[0][:300]}"
    for folder in {"/root/", "/home/", "/work/"}:
        assert folder not in page, f"{path.name} shows a machine folder ({folder})"
    assert path.stat().st_size < 3_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"


def test_rendered_notebooks_link_assets_that_are_committed():
    """The pages share one stylesheet and one module script (notebook_runner.share_head_assets)."""
    pages = {path.name: path.read_text() for path in RENDERED.glob("*.html")}
    linked = {name for page in pages.values() for name in re.findall(r'(?:href|src)="(notebook-[0-9a-f]{12}\.\w+)"', page)}
    assert linked, "no page links the shared stylesheet"
    assert {path.name for path in RENDERED.glob("notebook-*")} == linked
    assert all("<style type=\"text/css\">" not in page.split("</head>")[0] for page in pages.values())
