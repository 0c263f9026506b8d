"""Shared fixtures: the real offline mirror at ../shared/mirror (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("MATMODAL_TEST_MIRROR", REPO.parent / "shared" / "mirror"))


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The real public-data mirror (see its README); tests are skipped when it is absent."""
    if not (MIRROR / "alexandria").is_dir():
        pytest.skip(f"mirror not found at {MIRROR} (set MATMODAL_TEST_MIRROR)")
    return MIRROR


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Each test gets its own cache/output folders and fresh settings."""
    from matmodal import config

    root = tmp_path_factory.mktemp("matmodal")
    monkeypatch.setenv("MATMODAL_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("MATMODAL_OUTPUT_DIR", str(root / "outputs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()
