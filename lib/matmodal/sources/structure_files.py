"""Structures from the user's own files: one reader for ``matmodal predict`` and custom datasets.

Accepted: CIF, POSCAR/CONTCAR/``*.vasp`` (anything pymatgen's ``Structure.from_file`` reads), and
JSON (also ``.json.gz``/``.json.bz2``, ``.jsonl[.gz]``) holding a pymatgen ``Structure`` dict, an
Alexandria/MP entry (``{"structure": ...}``, the structure as a dict or CIF text), a row with
``cif``, an MP devset record (``lattice_matrix``, ``species``, ``frac_coords``), a list of those,
an Alexandria dump (``{"entries": [...]}``) or the project's MP extract (pandas "dict of
columns", e.g. ``mp_elastic_1000.json``). A folder stands for the structure files directly in it
(sorted by name; other files are ignored).

Names: the entry's id field (``data.mat_id``, ``material_id``, ``mat_id``, ``mp_id``, ``task_id``,
``id``), else the file stem (``stem#i`` for the i-th of several entries). Structures are returned
unchecked: the caller applies :func:`matmodal.records.check_structure`.
"""

from __future__ import annotations

import bz2
import gzip
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pymatgen.core import Lattice, Structure

ID_FIELDS = ("material_id", "mat_id", "mp_id", "task_id", "id")
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".json", ".jsonl", ".gz", ".bz2")
POSCAR_NAMES = ("POSCAR", "CONTCAR")


def _is_json(path: Path) -> bool:
    return any(s.lower() in (".json", ".jsonl") for s in path.suffixes[-2:])


def _load_json(path: Path) -> Any:
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else bz2.open if name.endswith(".bz2") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        if ".jsonl" in name:
            return [json.loads(line) for line in handle if line.strip()]
        return json.load(handle)


def _columns_to_rows(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A pandas "dict of columns" (``{"cif": {"0": ...}, "material_id": {"0": ...}}``) as rows."""
    if not data or not all(isinstance(v, dict) for v in data.values()) or not {"cif", "structure"} & set(data):
        return None
    index = list(next(iter(data.values())))
    return [{column: values.get(i) for column, values in data.items()} for i in index]


def _items(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("entries"), list):
            return data["entries"]
        rows = _columns_to_rows(data)
        return rows if rows is not None else [data]
    raise ValueError(f"expected a JSON object or list, got a {type(data).__name__}")


def _cif(text: str) -> Structure:
    with warnings.catch_warnings():  # pymatgen's parse notes; a failure raises with the reason
        warnings.simplefilter("ignore", UserWarning)
        return Structure.from_str(text, fmt="cif")


def structure_of(item: Any) -> Structure:
    """The structure of one JSON item (see the module docstring for the accepted layouts)."""
    if not isinstance(item, dict):
        raise ValueError(f"entry is a {type(item).__name__}, not an object")
    if "lattice" in item and "sites" in item:
        return Structure.from_dict(item)
    raw = item.get("structure")
    if isinstance(raw, dict):
        return Structure.from_dict(raw)
    if isinstance(raw, str):
        return _cif(raw)
    if isinstance(item.get("cif"), str):
        return _cif(item["cif"])
    if {"lattice_matrix", "species", "frac_coords"} <= set(item):
        return Structure(Lattice(item["lattice_matrix"]), item["species"], item["frac_coords"])
    raise ValueError("no structure: expected 'structure' (dict or CIF), 'cif', a pymatgen Structure dict "
                     f"('lattice' + 'sites') or 'lattice_matrix'/'species'/'frac_coords'; keys: {sorted(item)[:12]}")


def name_of(item: Any, fallback: str) -> str:
    """The entry's own id (see :data:`ID_FIELDS`), else ``fallback``."""
    if isinstance(item, dict):
        data = item.get("data") if isinstance(item.get("data"), dict) else {}
        for source in (data, item):
            for key in ID_FIELDS:
                if source.get(key) not in (None, ""):
                    return str(source[key])
    return fallback


def file_structures(path: Path) -> Iterator[tuple[str, str, Structure | Exception]]:
    """``(label, name, structure or the error)`` for every entry of one file; raises when the
    file itself cannot be read. ``label`` is the file, or ``file#i`` for the i-th of several."""
    path = Path(path)
    if not _is_json(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            structure = Structure.from_file(path)
        yield str(path), path.stem, structure
        return
    items = _items(_load_json(path))
    if not items:
        raise ValueError("no entry in the file")
    for i, item in enumerate(items):
        label = str(path) if len(items) == 1 else f"{path}#{i}"
        name = name_of(item, path.stem if len(items) == 1 else f"{path.stem}#{i}")
        try:
            yield label, name, structure_of(item)
        except Exception as error:  # one bad entry must not cost the others
            yield label, name, error


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder becomes the structure files directly in it (sorted)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and (
                p.suffix.lower() in STRUCTURE_SUFFIXES or p.name.split(".")[0] in POSCAR_NAMES))
        else:
            out.append(path)
    return out


def reason(error: BaseException) -> str:
    """A one-line reason for a skipped file or entry."""
    text = str(error) or type(error).__name__
    return text if isinstance(error, ValueError | FileNotFoundError) else f"{type(error).__name__}: {text}"
