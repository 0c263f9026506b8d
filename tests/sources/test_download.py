import hashlib

import pytest
import requests

from matmodal.sources.download import ChecksumError, Registry, download

PAYLOAD = bytes(range(256)) * 1000


class FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body
        self.headers = {"Content-Length": str(len(body))}

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}", response=self)

    def iter_content(self, size):
        for i in range(0, len(self.body), size):
            yield self.body[i : i + size]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeServer(requests.Session):
    """Serves PAYLOAD with Range support; the first `fail` answers are HTTP 503 (fixture)."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.ranges: list[str | None] = []

    def get(self, url, headers=None, **kw):
        rng = (headers or {}).get("Range")
        self.ranges.append(rng)
        if self.fail:
            self.fail -= 1
            return FakeResponse(503, b"")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            return FakeResponse(206, PAYLOAD[start:])
        return FakeResponse(200, PAYLOAD)


def test_retries_then_verifies_and_registers(tmp_path):
    server = FakeServer(fail=2)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = download("http://x/f.bin", tmp_path / "f.bin", expected_sha256=digest, backoff_s=0,
                    session=server, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert len(server.ranges) == 3
    assert Registry(tmp_path).load()["f.bin"] == digest
    again = FakeServer()
    download("http://x/f.bin", tmp_path / "f.bin", session=again, progress=False)
    assert again.ranges == []  # cached and verified against the registry: no request


def test_resumes_a_partial_file(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    server = FakeServer()
    download("http://x/f.bin", tmp_path / "f.bin", session=server, progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused(tmp_path):
    with pytest.raises(ChecksumError):
        download("http://x/f.bin", tmp_path / "f.bin", expected_sha256="0" * 64,
                 session=FakeServer(), progress=False)
    assert not (tmp_path / "f.bin").exists()
