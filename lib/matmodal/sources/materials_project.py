"""Materials Project: an mp-api wrapper (summary, elasticity) with an on-disk cache and backoff,
or the mirror's extracts when ``mirror_dir`` is set (same return shapes either way).

Two interfaces at scale stream instead of loading a table:

* :meth:`MaterialsProject.summary_rows` -- summary fields (formation_energy_per_atom [eV/atom],
  band_gap [eV], efermi [eV], volume [Å³/cell], total_magnetization [μB/cell], structure):
  mirror ``mp2018_structures_34738.jsonl.gz`` read line by line, seeded reservoir sample first,
  CIFs left unparsed (records parse them); online the ``materials.summary`` endpoint.
* :meth:`MaterialsProject.binary_elasticity` -- K_VRH, G_VRH [GPa] of the 2025 elasticity
  release (mirror ``mp_binary_elasticity_2025_3884.json.gz``; online ``materials.elasticity``,
  binaries only), structures kept as dicts until a record needs them.

The API key is read from the environment variable ``MP_API_KEY`` only; it is never printed,
logged or written anywhere (cache files hold query results, not credentials).
Data: CC-BY-4.0, Jain et al., APL Materials 1, 011002 (2013); elastic constants: de Jong et
al., Scientific Data 2, 150009 (2015).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from importlib.resources import files
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import yaml
from pymatgen.core import Lattice, Structure

from matmodal.config import Settings, get_settings
from matmodal.sources.alexandria import reservoir_sample
from matmodal.sources.mirror import MissingDataError, mirror_file, offline_hint

log = logging.getLogger(__name__)

SECTION = "materials_project"
ELASTIC_FILE = "mp_elastic_1000.json"
DEVSET_FILE = "mp_devset_200.json"
SUMMARY_2018_FILE = "mp2018_structures_34738.jsonl.gz"
ELASTIC_2025_FILE = "mp_binary_elasticity_2025_3884.json.gz"
# the summary fields of the scale interface (names as the API spells them)
SCALE_SUMMARY_FIELDS = [
    "material_id", "structure", "formation_energy_per_atom", "band_gap", "efermi", "volume",
    "total_magnetization",
]
BINARY_ELASTIC_FIELDS = ["material_id", "formula_pretty", "structure", "bulk_modulus", "shear_modulus"]
SUMMARY_FIELDS = [
    "material_id", "formula_pretty", "structure", "formation_energy_per_atom", "efermi",
    "band_gap", "is_stable", "energy_above_hull", "symmetry",
]
ELASTIC_FIELDS = ["material_id", "structure", "bulk_modulus", "shear_modulus", "elastic_tensor"]
RETRY_CODES = ("429", "500", "502", "503", "504")
T = TypeVar("T")


def api_key() -> str:
    """The MP API key from ``MP_API_KEY`` (never echoed)."""
    key = os.environ.get("MP_API_KEY", "").strip()
    if not key:
        raise MissingDataError(
            "the Materials Project API needs a key in the environment variable MP_API_KEY "
            "(https://next-gen.materialsproject.org/api), or use the offline mirror with "
            "MATMODAL_MIRROR_DIR=<dir> (see ../shared/mirror/README.md)"
        )
    return key


@contextmanager
def mp_rester() -> Iterator[Any]:
    """An authenticated ``mp_api.client.MPRester``; no network is one MissingDataError with the offline hint."""
    import requests
    from mp_api.client import MPRester

    try:
        with MPRester(api_key=api_key(), mute_progress_bars=True) as rester:
            yield rester
    except requests.ConnectionError as error:
        raise MissingDataError(offline_hint("Materials Project data")) from error


def with_backoff(fn: Callable[..., T], *args: Any, retries: int = 5, base_s: float = 2.0, **kw: Any) -> T:
    """Call ``fn``, retrying with exponential backoff on HTTP 429/5xx answers."""
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kw)
        except Exception as error:
            transient = any(code in str(error) for code in RETRY_CODES)
            if not transient or attempt == retries:
                raise
            time.sleep(base_s * 2**attempt)
    raise AssertionError("unreachable")


def _cache_key(kind: str, query: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, **query}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _summary_row(doc: Any) -> dict[str, Any]:
    data = doc if isinstance(doc, dict) else doc.model_dump()
    symmetry = data.get("symmetry") or {}
    return {
        "material_id": str(data["material_id"]),
        "formula_pretty": data.get("formula_pretty"),
        "structure": data.get("structure"),
        "formation_energy_per_atom": data.get("formation_energy_per_atom"),
        "efermi": data.get("efermi"),
        "band_gap": data.get("band_gap"),
        "is_stable": data.get("is_stable"),
        "energy_above_hull": data.get("energy_above_hull"),
        "spacegroup_number": symmetry.get("number") if isinstance(symmetry, dict) else None,
    }


def _elastic_row(doc: Any) -> dict[str, Any]:
    data = doc if isinstance(doc, dict) else doc.model_dump()
    tensor = (data.get("elastic_tensor") or {}).get("ieee_format")
    return {
        "material_id": str(data["material_id"]),
        "structure": data.get("structure"),
        "k_vrh": (data.get("bulk_modulus") or {}).get("vrh"),
        "g_vrh": (data.get("shear_modulus") or {}).get("vrh"),
        "elasticity.elastic_tensor": tensor,
    }


class MaterialsProject:
    """The Materials Project, online (mp-api, cached) or from the mirror's extracts."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._structure_cache: dict[str, list[tuple[str, Structure]]] = {}

    @property
    def offline(self) -> bool:
        return self.settings.mirror_dir is not None

    # -- cache ---------------------------------------------------------------------------
    def _cached(self, kind: str, query: dict[str, Any], fetch: Callable[[], list[dict[str, Any]]]) -> pd.DataFrame:
        path = self.settings.cache_dir / SECTION / f"{kind}-{_cache_key(kind, query)}.json.gz"
        if path.exists():
            rows = json.loads(gzip.decompress(path.read_bytes()))
        else:
            rows = fetch()
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = [{**r, "structure": _as_dict(r.get("structure"))} for r in rows]
            path.write_bytes(gzip.compress(json.dumps(payload, default=_json_default).encode()))
            rows = payload
        frame = pd.DataFrame(rows)
        if "structure" in frame:
            frame["structure"] = [Structure.from_dict(s) if isinstance(s, dict) else s for s in frame["structure"]]
        return frame

    # -- public --------------------------------------------------------------------------
    def summary(
        self,
        material_ids: Sequence[str] | None = None,
        *,
        spacegroup_numbers: Sequence[int] | None = None,
        is_stable: bool | None = None,
    ) -> pd.DataFrame:
        """Summary documents: id, formula, structure, formation energy (eV/atom), Fermi energy (eV),
        band gap (eV), stability, space group number."""
        if self.offline:
            frame = self._mirror_summary()
        else:
            query = {"material_ids": material_ids, "spacegroup_numbers": spacegroup_numbers, "is_stable": is_stable}
            frame = self._cached("summary", query, lambda: self._api_summary(**query))
        return _filter(frame, material_ids, spacegroup_numbers, is_stable)

    def elasticity(self, material_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Elasticity rows: id, structure and the 6x6 Voigt tensor (GPa) in
        ``elasticity.elastic_tensor`` (K_VRH/G_VRH are recomputed by :mod:`matmodal.records`)."""
        frame = self.elastic_rows if self.offline else self._cached(
            "elasticity", {"material_ids": material_ids}, lambda: self._api_elasticity(material_ids)
        )
        return _filter(frame, material_ids, None, None)

    def structure(self, material_id: str) -> Structure:
        """The structure of ``material_id`` from the first source that has it
        (order: :meth:`structure_candidates`)."""
        candidates = self.structure_candidates(material_id)
        if candidates:
            return candidates[0][1]
        if self.offline:
            raise MissingDataError(
                f"no structure for {material_id} in the mirror ({SUMMARY_2018_FILE}, {ELASTIC_2025_FILE}, "
                f"{ELASTIC_FILE}); add it to the mirror or fetch it online with MP_API_KEY set"
            )
        raise MissingDataError(f"{material_id} not found in the Materials Project")

    def structure_candidates(self, material_id: str) -> list[tuple[str, Structure]]:
        """Every structure the sources hold for ``material_id`` as ``(origin, Structure)``; mirror
        order: mp2018 summary, 2025 elasticity, older elasticity (they are different MP snapshots:
        a caller that needs one cell must check which fits). Call :meth:`prefetch_structures`
        first for many ids: one pass over each file instead of one per id."""
        if material_id not in self._structure_cache:
            self.prefetch_structures([material_id])
        return self._structure_cache[material_id]

    def prefetch_structures(self, material_ids: Sequence[str]) -> None:
        """Read the structures of ``material_ids`` from every source in one pass each."""
        wanted = sorted(set(material_ids) - set(self._structure_cache))
        if not wanted:
            return
        found: dict[str, list[tuple[str, Structure]]] = {mid: [] for mid in wanted}
        if self.offline:
            for row in self.summary_rows(material_ids=wanted):
                _add_candidate(found, row["material_id"], SUMMARY_2018_FILE, lambda r=row: parse_cif(r["cif"]))
            for row in self.binary_elasticity(wanted).to_dict("records"):
                _add_candidate(found, row["material_id"], ELASTIC_2025_FILE,
                               lambda r=row: _as_structure(r["structure"]))
            origin, frame = ELASTIC_FILE, self.elastic_rows
            frame = frame[frame["material_id"].isin(wanted)]
        else:
            origin, frame = "materials.summary", self.summary(wanted)
        for row in frame.to_dict("records"):
            _add_candidate(found, row["material_id"], origin, lambda r=row: _as_structure(r["structure"]))
        self._structure_cache.update(found)

    # -- scale interfaces -----------------------------------------------------------------
    def summary_rows(
        self, *, sample: int | None = None, material_ids: Sequence[str] | None = None, seed: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Summary rows with :data:`SCALE_SUMMARY_FIELDS`, streamed (mirror rows carry the raw
        ``cif`` text instead of ``structure``; records parse it).

        ``sample``: a seeded reservoir sample of N rows (None or 0: every row); ``material_ids``:
        only these ids (applied before sampling). Only the sample is ever held in memory."""
        seed = self.settings.seed if seed is None else seed
        if self.offline:
            rows = iter_jsonl(mirror_file(SECTION, SUMMARY_2018_FILE, self.settings))
            if material_ids is not None:
                wanted = set(material_ids)
                rows = (row for row in rows if row.get("material_id") in wanted)
            return iter(reservoir_sample(rows, sample, seed)) if sample else rows
        ids = sorted(material_ids) if material_ids is not None else None
        if sample:
            ids = reservoir_sample(ids if ids is not None else self._api_ids(), sample, seed)
        frame = self._cached("summary_scale", {"material_ids": ids}, lambda: self._api_scale_summary(ids))
        return iter(frame.to_dict("records"))

    def binary_elasticity(self, material_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The 2025 elasticity release for binaries: material_id, formula, structure (a dict or
        ``Structure``), k_vrh and g_vrh (GPa, Voigt-Reuss-Hill as published; no tensor)."""
        if self.offline:
            frame = read_binary_elasticity_file(mirror_file(SECTION, ELASTIC_2025_FILE, self.settings))
        else:
            query = {"material_ids": sorted(material_ids) if material_ids is not None else None}
            frame = self._cached("binary_elasticity", query,
                                 lambda: self._api_binary_elasticity(query["material_ids"]))
        return _filter(frame, material_ids, None, None)

    # -- mirror readers ------------------------------------------------------------------
    @cached_property
    def elastic_rows(self) -> pd.DataFrame:
        """``mp_elastic_1000.json`` (pandas dict-of-columns) as rows, with parsed structures."""
        return read_elastic_file(mirror_file(SECTION, ELASTIC_FILE, self.settings))

    def _mirror_summary(self) -> pd.DataFrame:
        return read_devset_file(mirror_file(SECTION, DEVSET_FILE, self.settings))

    # -- API -----------------------------------------------------------------------------
    def _api_summary(self, material_ids, spacegroup_numbers, is_stable) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with mp_rester() as mpr:
            for number in spacegroup_numbers or [None]:
                kw: dict[str, Any] = {"fields": SUMMARY_FIELDS}
                if material_ids:
                    kw["material_ids"] = list(material_ids)
                if number is not None:
                    kw["spacegroup_number"] = number
                if is_stable is not None:
                    kw["is_stable"] = is_stable
                rows += [_summary_row(d) for d in with_backoff(mpr.materials.summary.search, **kw)]
        return rows

    def _api_ids(self) -> list[str]:
        """Every summary material id (sorted, cached): the population a sample is drawn from."""
        frame = self._cached("summary_ids", {}, self._api_all_ids)
        return sorted(frame["material_id"])

    def _api_all_ids(self) -> list[dict[str, Any]]:
        with mp_rester() as mpr:
            docs = with_backoff(mpr.materials.summary.search, fields=["material_id"])
        return [{"material_id": str(_as_data(d)["material_id"])} for d in docs]

    def _api_scale_summary(self, material_ids) -> list[dict[str, Any]]:
        kw: dict[str, Any] = {"fields": SCALE_SUMMARY_FIELDS}
        if material_ids is not None:
            kw["material_ids"] = list(material_ids)
        with mp_rester() as mpr:
            docs = with_backoff(mpr.materials.summary.search, **kw)
        return [{key: _as_data(d).get(key) for key in SCALE_SUMMARY_FIELDS}
                | {"material_id": str(_as_data(d)["material_id"])} for d in docs]

    def _api_binary_elasticity(self, material_ids) -> list[dict[str, Any]]:
        kw: dict[str, Any] = {"fields": BINARY_ELASTIC_FIELDS}
        if material_ids is not None:
            kw["material_ids"] = list(material_ids)
        with mp_rester() as mpr:
            docs = [_as_data(d) for d in with_backoff(mpr.materials.elasticity.search, **kw)]
        rows = [_binary_row(d) for d in docs]
        return [r for r in rows if r["structure"] is None or _n_elements(r["structure"]) == 2]

    def _api_elasticity(self, material_ids) -> list[dict[str, Any]]:
        with mp_rester() as mpr:
            kw: dict[str, Any] = {"fields": ELASTIC_FIELDS}
            if material_ids:
                kw["material_ids"] = list(material_ids)
            return [_elastic_row(d) for d in with_backoff(mpr.materials.elasticity.search, **kw)]


def _as_structure(value: Any) -> Structure:
    if value is None:
        raise ValueError("no structure")
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def _add_candidate(found: dict[str, list], material_id: str, origin: str, parse: Callable[[], Structure]) -> None:
    """Append ``(origin, parse())`` to ``found[material_id]``; an unparsable structure is skipped
    (logged): the other sources may still have the material."""
    try:
        found.setdefault(material_id, []).append((origin, parse()))
    except Exception as error:  # pymatgen raises many types on a bad CIF or dict
        log.info("%s: structure from %s not usable: %s", material_id, origin, error)


def _as_data(doc: Any) -> dict[str, Any]:
    return doc if isinstance(doc, dict) else doc.model_dump()


def _modulus(value: Any) -> float | None:
    """The VRH value of an API modulus field (``{"vrh": ...}``) or a bare number (GPa)."""
    return value.get("vrh") if isinstance(value, dict) else value


def _binary_row(data: dict[str, Any]) -> dict[str, Any]:
    mid = data.get("material_id")
    return {"material_id": None if mid is None else str(mid), "formula": data.get("formula_pretty") or data.get("formula"),
            "structure": data.get("structure"),
            "k_vrh": _modulus(data.get("bulk_modulus", data.get("bulk_modulus_vrh"))),
            "g_vrh": _modulus(data.get("shear_modulus", data.get("shear_modulus_vrh")))}


def _n_elements(structure: Any) -> int:
    if isinstance(structure, dict):
        structure = Structure.from_dict(structure)
    return len(structure.composition.elements)


def _filter(frame, material_ids, spacegroup_numbers, is_stable) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    if material_ids is not None:
        keep &= frame["material_id"].isin(list(material_ids)).to_numpy()
    if spacegroup_numbers is not None and "spacegroup_number" in frame:
        keep &= frame["spacegroup_number"].isin(list(spacegroup_numbers)).to_numpy()
    if is_stable is not None and "is_stable" in frame:
        keep &= (frame["is_stable"] == is_stable).to_numpy()
    return frame.loc[keep].reset_index(drop=True)


def _as_dict(structure: Any) -> Any:
    return structure.as_dict() if isinstance(structure, Structure) else structure


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return str(value)


def read_elastic_file(path) -> pd.DataFrame:
    """The MP elastic extract: one row per material, CIF kept and parsed lazily by records."""
    columns = json.loads(path.read_text())
    frame = pd.DataFrame({name: pd.Series(values) for name, values in columns.items()})
    frame = frame.reset_index(drop=True)
    frame["structure"] = None
    return frame.astype({"material_id": str}).pipe(_parse_cifs)


def parse_cif(text: str) -> Structure:
    """A structure from CIF text (pymatgen's parser; its "rounded to ideal values" note is benign)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Structure.from_str(text, fmt="cif")


def _parse_cifs(frame: pd.DataFrame) -> pd.DataFrame:
    structures = []
    for cif in frame["cif"]:
        try:
            structures.append(parse_cif(cif))
        except Exception:  # an unparsable CIF is reported by records.from_mp_elastic
            structures.append(None)
    frame["structure"] = structures
    return frame


@lru_cache(maxsize=1)
def mp_zval() -> dict[str, float]:
    """Element -> valence electrons (ZVAL) of the PAW POTCAR the Materials Project uses for it:
    pymatgen's ``MPRelaxSet.yaml`` POTCAR choice (PBE) joined with the ZVALs of pymatgen's
    ``potcar-summary-stats.json.bz2`` (both ship with pymatgen: works offline, no POTCARs needed)."""
    vasp = files("pymatgen.io.vasp")
    symbols = yaml.safe_load((vasp / "MPRelaxSet.yaml").read_text())["POTCAR"]
    stats = json.loads(bz2.decompress((vasp / "potcar-summary-stats.json.bz2").read_bytes()))
    zval = {e["symbol"]: float(e["ZVAL"]) for entries in stats["PBE"].values() for e in entries}
    return {element: zval[symbol] for element, symbol in symbols.items() if symbol in zval}


def read_devset_file(path) -> pd.DataFrame:
    """The MP devset extract (list of summary records without ids): ids are derived as
    ``mpdev-<lmdb_key>`` and structures built from lattice, species and fractional coordinates.
    ``energy_per_atom`` is dropped: it is inconsistent with ``uncorrected_energy_per_atom``."""
    rows = []
    for doc in json.loads(path.read_text()):
        structure = Structure(Lattice(doc["lattice_matrix"]), doc["species"], doc["frac_coords"],
                              site_properties={"magmom": doc.get("magmom")} if doc.get("magmom") else None)
        rows.append({
            "material_id": f"mpdev-{doc['lmdb_key']}", "formula_pretty": doc.get("formula_pretty"),
            "structure": structure, "formation_energy_per_atom": doc.get("formation_energy_per_atom"),
            "efermi": doc.get("efermi"), "band_gap": doc.get("band_gap"), "is_stable": doc.get("is_stable"),
            "spacegroup_number": doc.get("spacegroup_number"), "is_metal": doc.get("is_metal"),
            "is_magnetic": doc.get("is_magnetic"),
        })
    return pd.DataFrame(rows)


def iter_jsonl(path) -> Iterator[dict[str, Any]]:
    """The rows of a (gzipped) JSON-lines file, one at a time; a malformed line becomes a row
    ``{"material_id": "<file>#<line>", "_error": reason}`` that the record parser reports."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield {"material_id": f"{path.name}#{number}", "_error": f"line {number} is not JSON: {error.msg}"}
                continue
            if not isinstance(row, dict):
                yield {"material_id": f"{path.name}#{number}",
                       "_error": f"line {number} is a JSON {type(row).__name__}, not an object"}
                continue
            yield row


def read_binary_elasticity_file(path) -> pd.DataFrame:
    """``mp_binary_elasticity_2025_3884.json.gz`` as rows (material_id, formula, structure dict,
    k_vrh, g_vrh in GPa); structures stay dicts until a record parses them."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        docs = json.load(handle)
    if not isinstance(docs, list):
        raise MissingDataError(f"{path.name}: expected a JSON list of materials, got a {type(docs).__name__}")
    return pd.DataFrame([_binary_row({**d, "material_id": d.get("mp_id")}) for d in docs],
                        columns=["material_id", "formula", "structure", "k_vrh", "g_vrh"])
