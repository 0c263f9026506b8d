"""Data-understanding figures: target distributions, element frequencies, cell sizes, space groups."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from pymatgen.core import Composition

from matmodal.targets import LABELS, UNITS


def target_distributions(table: pd.DataFrame, targets: Sequence[str], ncols: int = 4) -> Figure:
    """One histogram (with KDE) per target, labelled with the paper's name and unit."""
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, targets, strict=False):
        values = table[name].dropna()
        sns.histplot(values, ax=ax, kde=len(values) > 2 and values.nunique() > 1, bins=30, color="tab:blue")
        ax.set_xlabel(f"{LABELS.get(name, name)} ({UNITS.get(name, '')})")
        ax.set_title(f"n={len(values)}", fontsize=9)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def element_counts(formulas: Sequence[str]) -> pd.Series:
    """How many materials contain each element."""
    counts: Counter[str] = Counter()
    for formula in formulas:
        counts.update(str(el) for el in Composition(formula).elements)
    return pd.Series(counts, name="materials").sort_values(ascending=False)


def element_frequency(table: pd.DataFrame, top: int = 30) -> Figure:
    """Bar chart of the ``top`` most frequent elements."""
    counts = element_counts(table["formula"]).head(top)
    fig, ax = plt.subplots(figsize=(10, 3))
    sns.barplot(x=counts.index, y=counts.to_numpy(), ax=ax, color="tab:green", errorbar=None)
    ax.set_ylabel("materials containing it")
    ax.set_xlabel("element")
    fig.tight_layout()
    return fig


def structure_overview(table: pd.DataFrame) -> Figure:
    """Sites per cell and the most common space groups."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
    sns.histplot(table["nsites"], ax=left, discrete=True)
    left.set_xlabel("sites per cell")
    top = table["spg"].value_counts().head(15)
    sns.barplot(x=top.index.astype(str), y=top.to_numpy(), ax=right, color="tab:orange", errorbar=None)
    right.set_xlabel("space group number")
    right.set_ylabel("materials")
    fig.tight_layout()
    return fig
