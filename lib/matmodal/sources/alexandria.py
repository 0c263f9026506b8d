"""Alexandria PBE 3D dump files (``alexandria_NNN.json.bz2``): list, download, stream, sample.

Each file is ``{"entries": [ComputedStructureEntry dict, ...]}`` with about 100,000 entries.
:func:`iter_entries` decodes one entry at a time from the bz2 stream, so memory stays
constant whatever the file size. Data: CC-BY-4.0, Schmidt et al., Materials Today Physics 48,
101560 (2024).
"""

from __future__ import annotations

import bz2
import codecs
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import requests

from matmodal.config import Settings, get_settings
from matmodal.manifest import Unreadable
from matmodal.sources.download import download
from matmodal.sources.mirror import MissingDataError, offline_hint

PBE_3D_URL = "https://alexandria.icams.rub.de/data/pbe/"
FILE_PATTERN = re.compile(r"alexandria_\d{3}\.json\.bz2")
SECTION = "alexandria"
_ENTRIES_KEY = re.compile(r'"entries"\s*:\s*\[')
_DECODER = json.JSONDecoder()
READ_CHARS = 1 << 20  # characters decoded per read
MAX_ENTRY_CHARS = 64 << 20  # an entry larger than this is taken as corrupt


class SourceFileError(ValueError):
    """A whole file is unreadable (truncated bz2, invalid JSON, no ``entries`` array)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def list_files(settings: Settings | None = None, session: requests.Session | None = None) -> list[str]:
    """Names of the available dump files: the mirror's ``alexandria/`` folder or the server index."""
    settings = settings or get_settings()
    if settings.mirror_dir is not None:
        folder = settings.mirror_dir / SECTION
        if not folder.is_dir():
            raise MissingDataError(f"mirror has no {SECTION}/ folder: {folder}")
        return sorted(p.name for p in folder.glob("*.json.bz2"))
    try:
        response = (session or requests.Session()).get(PBE_3D_URL, timeout=30)
        response.raise_for_status()
    except requests.RequestException as error:
        raise MissingDataError(offline_hint("the Alexandria file index")) from error
    return sorted(set(FILE_PATTERN.findall(response.text)))


def fetch(name: str, settings: Settings | None = None, **download_kw: Any) -> Path:
    """Local path of dump file ``name``: from the mirror, else downloaded into the cache."""
    settings = settings or get_settings()
    if settings.mirror_dir is not None:
        path = settings.mirror_dir / SECTION / name
        if not path.exists():
            raise MissingDataError(
                f"{name} is not in the mirror ({path}); copy it there or unset MATMODAL_MIRROR_DIR"
            )
        return path
    return download(PBE_3D_URL + name, settings.cache_dir / SECTION / name, **download_kw)


class _Stream:
    """A growing text buffer over a (bz2) file, decompressed incrementally; whole-file errors named."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("rb")
        self.bz2 = bz2.BZ2Decompressor() if path.suffix == ".bz2" else None
        # bytes that are not UTF-8 stay as lone surrogates: one bad entry costs only itself
        # (its id is escaped, an element name in it is unknown), not the rest of the file
        self.text = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _raw(self) -> bytes:
        """The next decompressed bytes (b"" at a clean end of file)."""
        while True:
            block = self.handle.read(READ_CHARS // 4)
            if self.bz2 is None:
                return block
            if not block:
                if not self.bz2.eof:
                    raise SourceFileError(self.path, "truncated bz2 stream (file ends before the end-of-stream marker)")
                return b""
            try:
                data = self.bz2.decompress(block)
            except OSError as error:
                raise SourceFileError(self.path, f"corrupt bz2 stream ({error})") from error
            if data:
                return data

    def more(self) -> None:
        raw = self._raw()
        chunk = self.text.decode(raw, final=not raw)
        if not raw:
            self.eof = True
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0

    def skip_space(self) -> str:
        """Skip white space and return the next character ('' at end of file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self.more()

    def close(self) -> None:
        self.handle.close()


def _seek_entries(stream: _Stream) -> None:
    while (match := _ENTRIES_KEY.search(stream.buf, stream.pos)) is None:
        if stream.eof or len(stream.buf) > MAX_ENTRY_CHARS:
            raise SourceFileError(stream.path, 'no "entries" array (not an Alexandria dump file)')
        stream.more()
    stream.pos = match.end()


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}"]')
_SEPARATOR = re.compile(r"[,\]]")


def _value_end(buf: str, pos: int) -> int | None:
    """End of the JSON value starting at ``pos`` by bracket matching (strings skipped), without
    decoding it; None when the buffer ends first. Used only on values ``json`` refused."""
    if buf[pos] not in "[{":
        match = _SEPARATOR.search(buf, pos)
        return match.start() if match else None
    depth = 0
    for token in _TOKEN.finditer(buf, pos):
        text = token.group()
        if text == '"':
            return None  # a string that does not end inside the buffer
        if text[0] == '"':
            continue
        depth += 1 if text in "[{" else -1
        if depth == 0:
            return token.end()
    return None


def _next_value(stream: _Stream, index: int) -> Any:
    """The next entry: a decoded value (any JSON type) or :class:`Unreadable` with the reason."""
    while True:
        try:
            value, end = _DECODER.raw_decode(stream.buf, stream.pos)
        except RecursionError:
            problem = "nested too deeply to decode"
        except json.JSONDecodeError as error:
            problem = f"invalid JSON ({error.msg})"
        else:
            stream.pos = end
            return value
        end = _value_end(stream.buf, stream.pos)
        if end is not None:  # the whole value is in the buffer: it is bad, skip it
            stream.pos = end
            return Unreadable(f"entry #{index}: {problem}; skipped")
        if stream.eof or len(stream.buf) - stream.pos > MAX_ENTRY_CHARS:
            reason = "file ends inside" if stream.eof else f"more than {MAX_ENTRY_CHARS} characters in"
            raise SourceFileError(stream.path, f"{reason} entry #{index} ({problem})")
        stream.more()


def iter_entries(path: Path | str) -> Iterator[Any]:
    """Yield the entries of one dump file, one at a time (constant memory).

    An entry is yielded as decoded (a dict for a good one; any other JSON value is the record
    parser's to refuse), or as :class:`~matmodal.manifest.Unreadable` when it is not valid JSON
    or nested too deeply and its end can still be found: the file goes on after it. Raises
    :class:`SourceFileError` naming the file and the entry index for whole-file problems
    (truncated or corrupt bz2, no ``entries`` array, a file that ends inside an entry);
    entries before the problem have been yielded.
    """
    stream = _Stream(Path(path))
    try:
        _seek_entries(stream)
        index = 0
        while True:
            char = stream.skip_space()
            if char == "]":
                return
            if char == "":
                raise SourceFileError(path, f"file ends after entry #{index - 1} (no closing ']')")
            if char == "," and index > 0:
                stream.pos += 1
                stream.skip_space()
            elif index > 0:
                raise SourceFileError(path, f"expected ',' or ']' after entry #{index - 1}, got {char!r}")
            yield _next_value(stream, index)
            index += 1
    finally:
        stream.close()


def iter_many(paths: Iterable[Path | str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """``(file name, index in file, entry)`` over several files, in the given order."""
    for path in paths:
        for index, entry in enumerate(iter_entries(path)):
            yield Path(path).name, index, entry


def reservoir_sample(
    items: Iterable[Any], n: int, seed: int = 0
) -> list[Any]:
    """Uniform sample of ``n`` items from a stream of unknown length (Algorithm R), seeded.

    The result is in stream order of the kept items' positions, so it is reproducible for
    the same files, order and seed.
    """
    if n < 0:
        raise ValueError("sample size must be >= 0")
    rng = np.random.default_rng(seed)
    kept: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        if i < n:
            kept.append((i, item))
        else:
            j = int(rng.integers(0, i + 1))
            if j < n:
                kept[j] = (i, item)
    return [item for _, item in sorted(kept, key=lambda pair: pair[0])]


def sample_entries(
    paths: Sequence[Path | str], n: int, seed: int = 0
) -> list[tuple[str, int, dict[str, Any]]]:
    """Seeded reservoir sample of ``n`` entries across ``paths`` (costa2025 used n = 1,000)."""
    return reservoir_sample(iter_many(sorted(paths, key=lambda p: Path(p).name)), n, seed)
