"""Column names of the aligned dataset tables, defined once (a leaf: imports nothing of matmodal).

Every layer that reads or writes a dataset table (datasets, models, protocols, predict, notebooks)
names its columns through these constants, so a rename happens in one place.
"""

from __future__ import annotations

import re

MATERIAL_ID = "material_id"  # the record id (Alexandria/MP id), unique per table row
FORMULA = "formula"  # reduced formula (pymatgen)
NSITES = "nsites"  # sites in the stored cell
SPACEGROUP = "spg"  # international space-group number (see matmodal.symmetry)
IMAGE_PATH = "image_path"  # absolute path of the rendered structure PNG (costa2025)
ECD_IMAGE = "ecd_image"  # absolute path of the ECD (111) slice PNG (massa2024)
TEXT_COMPOSITION = "text_composition"  # costa2025's composition string, e.g. "Ac Hg 2 Cd 2"
TEXT_ROBOCRYS = "text_robocrys"  # robocrystallographer description
TEXT_LEVELS = ("formula", "keywords", "all")  # massa2024's text levels (Fig. 1d), as spelled in parameters
EMBEDDING_COLUMN = re.compile(r"^[a-z][a-z0-9]*_\d{3}$")  # structure embeddings: <featuriser>_NNN


def embedding_columns(columns) -> list[str]:
    """The structure-embedding columns (``<featuriser>_NNN``, e.g. ``magpie_000``) among ``columns``."""
    return [c for c in columns if EMBEDDING_COLUMN.match(str(c))]
