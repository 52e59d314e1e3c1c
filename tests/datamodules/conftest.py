"""Fixtures of the DataModule tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Points ``$SNNLSTM_CACHE_DIR`` at a fresh folder, so no test writes into the real user cache."""
    folder = tmp_path / "user-cache"
    monkeypatch.setenv("SNNLSTM_CACHE_DIR", str(folder))
    return folder
