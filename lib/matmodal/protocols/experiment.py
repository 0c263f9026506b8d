"""massa2024 experiment preparation: text levels, the rows of one (dataset, target) experiment
with every needed modality (rows without one are dropped with the reason), tensor caches, and the
real charge-density stand-in table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matmodal.datasets.density_slices import DENSITY_NPZ, density_slice_table  # noqa: F401  (moved there; re-exported)
from matmodal.manifest import Issue, Severity
from matmodal.modalities.robocrys_levels import TextLevel, levels_from_description
from matmodal.models.torch_common import Tokenizer, load_images

ID = "material_id"
IMAGE = "image"  # the experiment's image column (copied from the first of IMAGE_COLUMNS)
TEXT_LEVELS = ("formula", "keywords", "all")
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "formula": ("text_formula", "text_composition", "formula"),
    "keywords": ("text_keywords",),
    "all": ("text_all", "text_robocrys"),
}
ALL_COLUMNS = TEXT_COLUMNS["all"]
IMAGE_COLUMNS = ("image_path", "ecd_image")  # rendered structure (costa2025, MP elastic), ECD slice (massa)
FORMULA_TEXTS = ("symbols", "words")  # how the Formula level is written: "Si 4 Ru 8" or "silicon 4 ruthenium 8"

# --------------------------------------------------------------------------- text levels


def keywords_text(formula: str, description: str | None) -> str | None:
    """massa2024's 'Keywords' level: the formula and robocrys' bond-length sentences."""
    if not isinstance(description, str) or not description:  # None or NaN: no robocrys text
        return None
    return levels_from_description(formula, description)[TextLevel.keywords]


def formula_words(formula: str) -> str:
    """The Formula level in words: element names with the cell's atom counts, in the formula's order.

    ``"Si 4 Ru 8"`` / ``"Si4Ru8"`` -> ``"silicon 4 ruthenium 8"``. Same information as the symbols;
    a pretrained text tower knows the element words far better than the one- or two-letter symbols.
    """
    from pymatgen.core import Composition, Element

    try:
        composition = Composition(formula.replace(" ", ""))
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"cannot read formula {formula!r}: {error}") from error
    unknown = [str(s) for s in composition if not isinstance(s, Element)]
    if unknown:
        raise ValueError(f"cannot read formula {formula!r}: not elements: {', '.join(unknown)}")
    return " ".join(f"{element.long_name.lower()} {count:g}" for element, count in composition.items())


def _first_column(table: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((c for c in names if c in table.columns and table[c].notna().any()), None)


def level_texts(table: pd.DataFrame, level: str) -> pd.Series:
    """Texts of a level (``formula``, ``keywords``, ``all``); None where the row has none."""
    if level not in TEXT_LEVELS:
        raise ValueError(f"unknown text level {level!r} ({', '.join(TEXT_LEVELS)})")
    column = _first_column(table, TEXT_COLUMNS[level])
    if column is not None:
        return table[column].astype(object).where(table[column].notna(), None)
    full, formula = _first_column(table, ALL_COLUMNS), _first_column(table, TEXT_COLUMNS["formula"])
    if level == "keywords" and full and formula:
        return pd.Series([keywords_text(f, d) for f, d in zip(table[formula], table[full], strict=True)],
                         index=table.index, dtype=object)
    return pd.Series(None, index=table.index, dtype=object)


# --------------------------------------------------------------------------- experiment data


@dataclass
class Experiment:
    """The rows of one (dataset, target) experiment with every needed modality, and tensor caches."""

    dataset: str
    target: str
    table: pd.DataFrame
    texts: dict[str, list[str]]
    issues: list[Issue] = field(default_factory=list)
    _images: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)
    _tokens: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @property
    def ids(self) -> list[str]:
        return self.table[ID].tolist()

    @property
    def y(self) -> np.ndarray:
        return self.table[self.target].to_numpy(dtype=float)

    def images(self, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        key = (size, tuple(mean), tuple(std))
        if key not in self._images:
            self._images[key] = load_images(self.table[IMAGE].tolist(), size, mean, std)
        return self._images[key]

    def tokens(self, tokenizer: Tokenizer, level: str, max_length: int) -> dict[str, torch.Tensor]:
        key = (tokenizer.name, tokenizer.source, level, max_length)
        if key not in self._tokens:
            self._tokens[key] = tokenizer.encode(self.texts[level], max_length)
        ids, mask = self._tokens[key]
        return {"input_ids": ids, "attention_mask": mask}


def _missing(table: pd.DataFrame, target: str, levels: Sequence[str], image: bool,
             image_column: str | None) -> dict[str, pd.Series]:
    checks = {f"target {target} missing or NaN": ~np.isfinite(pd.to_numeric(table[target], errors="coerce"))}
    if image:
        paths = table[image_column] if image_column else pd.Series(None, index=table.index)
        checks["no image"] = ~paths.map(lambda p: isinstance(p, str) and Path(p).is_file())
    for level in levels:
        checks[f"no '{level}' text"] = level_texts(table, level).isna()
    return checks


def prepare(table: pd.DataFrame, target: str, text_levels: Sequence[str] = (), image: bool = True,
            dataset: str = "", formula_text: str = "symbols") -> Experiment:
    """Keep the rows with the target, the image (if needed) and every text level; note the others.

    ``formula_text``: the Formula level as written in the table (``symbols``) or spelled out with
    :func:`formula_words` (``words``).
    """
    if formula_text not in FORMULA_TEXTS:
        raise ValueError(f"unknown formula_text {formula_text!r} ({', '.join(FORMULA_TEXTS)})")
    image_column = _first_column(table, IMAGE_COLUMNS)  # on the whole table: every row may be dropped
    checks = _missing(table, target, text_levels, image, image_column)
    dropped = pd.Series(False, index=table.index)
    issues = []
    for reason, bad in checks.items():
        new = bad & ~dropped
        issues += [Issue(i, "massa_protocol", Severity.dropped, reason, dataset) for i in table.loc[new, ID]]
        dropped |= bad
    kept = table.loc[~dropped].sort_values(ID).reset_index(drop=True)
    if image:
        kept[IMAGE] = kept[image_column] if image_column else pd.Series(dtype=object)
    texts = {level: level_texts(kept, level).tolist() for level in text_levels}
    if formula_text == "words" and "formula" in texts:
        texts["formula"] = [formula_words(f) for f in texts["formula"]]
    return Experiment(dataset, target, kept, texts, issues)



