"""Display tables for every study: number formatting, mean ± sd cells, CSV + Markdown + LaTeX.

A table is written as ``<stem>.csv`` (the long numbers), ``<stem>.md`` and ``<stem>.tex`` (the
display table); LaTeX escapes the units' unicode (Å, ³, μ, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def number(value: float, digits: int = 3, sign: bool = False) -> str:
    """``digits`` decimals, or ``digits`` significant figures below 0.01 (e.g. Mag/vol)."""
    if not np.isfinite(value):
        return ""
    plus = "+" if sign else ""
    small = value != 0 and abs(value) < 0.01
    return f"{value:{plus}.{digits}g}" if small else f"{value:{plus}.{digits}f}"


def cell(mean: float, sd: float, digits: int) -> str:
    """``mean ± sd`` with the sd in the mean's format; ``–`` without a mean, the mean alone without sd."""
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(sd):
        return number(mean, digits)
    small = mean != 0 and abs(mean) < 0.01  # the sd follows the mean's format
    return f"{number(mean, digits)} ± {number(sd, digits) if small else f'{sd:.{digits}f}'}"


_LATEX = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "±": r"$\pm$",
          "Δ": r"$\Delta$", "²": r"$^2$", "³": r"$^3$", "μ": r"$\mu$", "Å": r"\AA{}", "·": r"$\cdot$"}


def latex_text(text: str) -> str:
    """Escape LaTeX specials and the units' unicode (Å, ³, μ, ...)."""
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def write_table(long: pd.DataFrame, wide: pd.DataFrame, folder: Path, stem: str, caption: str) -> list[Path]:
    """``<stem>.csv`` (numbers, long), ``<stem>.md`` and ``<stem>.tex`` (display table)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.csv", folder / f"{stem}.md", folder / f"{stem}.tex"]
    long.to_csv(paths[0], index=False, float_format="%.6g")
    paths[1].write_text(f"{caption}\n\n{wide.to_markdown(disable_numparse=True)}\n")
    latex = wide.map(lambda s: latex_text(str(s).replace("**", "")))
    latex.columns = [latex_text(c) for c in latex.columns]
    latex.index = pd.Index([latex_text(i) for i in latex.index], name=wide.index.name)
    paths[2].write_text(latex.to_latex(caption=latex_text(caption), label=f"tab:{stem}", escape=False))
    return paths
