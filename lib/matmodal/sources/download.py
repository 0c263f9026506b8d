"""HTTP downloads into the cache: retries with backoff, resumable ``.part`` files, sha256 registry."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import requests
from tqdm.auto import tqdm

from matmodal.sources.mirror import MissingDataError, offline_hint

RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 20


class ChecksumError(IOError):
    """A downloaded or cached file does not match its recorded sha256."""


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``folder`` (sorted; e.g. a saved model)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


class Registry:
    """``registry.json`` in a cache folder: file name -> sha256 of the finished download."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "registry.json"

    def load(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, name: str, digest: str) -> None:
        entries = self.load()
        entries[name] = digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(entries, indent=1, sort_keys=True))


def _get(session: requests.Session, url: str, headers: dict[str, str], timeout: float):
    response = session.get(url, headers=headers, stream=True, timeout=timeout)
    if response.status_code in RETRY_STATUS:
        raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
    response.raise_for_status()
    return response


def download(
    url: str,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    session: requests.Session | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a ``dest.part`` left by an earlier try).

    A finished file is verified against ``expected_sha256`` when given, and its digest is
    recorded in the folder's ``registry.json``; an existing ``dest`` whose digest matches the
    registry is reused without any network access.
    """
    registry = Registry(dest.parent)
    known = expected_sha256 or registry.load().get(dest.name)
    if dest.exists() and (known is None or sha256(dest) == known):
        return dest
    session = session or requests.Session()
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with _get(session, url, headers, timeout_s) as response:
                if offset and response.status_code != 206:  # server ignored Range: restart
                    offset = 0
                total = int(response.headers.get("Content-Length", 0)) + offset
                mode = "ab" if offset else "wb"
                with part.open(mode) as fh, tqdm(
                    total=total or None, initial=offset, unit="B", unit_scale=True,
                    desc=dest.name, disable=not progress,
                ) as bar:
                    for block in response.iter_content(CHUNK):
                        fh.write(block)
                        bar.update(len(block))
            break
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status is not None and status not in RETRY_STATUS:
                raise
            if attempt == retries:
                raise MissingDataError(offline_hint(url) + f" (last error: {error})") from error
            time.sleep(backoff_s * 2**attempt)
    digest = sha256(part)
    if expected_sha256 and digest != expected_sha256:
        part.unlink()
        raise ChecksumError(f"{url}: sha256 {digest} != expected {expected_sha256}")
    part.replace(dest)
    registry.record(dest.name, digest)
    return dest
