"""Tests of the DataModules' file helpers: user cache folder, atomic writes, digests, UTF-8 errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from snnlstm.datamodules.files import atomic_output, atomic_write_text, cache_root, default_cache_dir, file_digest, utf8_error


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SNNLSTM_CACHE_DIR": "own", "XDG_CACHE_HOME": "xdg"}, "own"),
        ({"SNNLSTM_CACHE_DIR": "", "XDG_CACHE_HOME": "xdg"}, "xdg/snnlstm"),
        ({"XDG_CACHE_HOME": ""}, "home/.cache/snnlstm"),
        ({}, "home/.cache/snnlstm"),
    ],
    ids=["own", "empty-own", "empty-xdg", "home"],
)
def test_cache_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict, expected: str) -> None:
    for name in ("SNNLSTM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value) if value else "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / expected
    assert default_cache_dir("gsc") == tmp_path / expected / "gsc"


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError], ids=["ctrl-c", "error"])
def test_atomic_output_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_output(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_text("half")
            raise error()
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"] and target.read_text() == "old"
    atomic_write_text(target, "new ü")
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"] and target.read_text(encoding="utf-8") == "new ü"


def test_file_digest_covers_the_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from snnlstm.datamodules import files

    monkeypatch.setattr(files, "DIGEST_CHUNK", 7)  # several chunks
    path = tmp_path / "clip.wav"
    path.write_bytes(b"RIFF" + bytes(range(100)))
    assert file_digest(path) == hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    first = file_digest(path)
    path.write_bytes(b"RIFF" + bytes(range(1, 101)))  # same size
    assert file_digest(path) != first


def test_utf8_error_names_the_line_and_the_fix() -> None:
    err = utf8_error("corpus.de", "eins\nzwei\ndrei fährt\n".encode("latin-1"), "re-encode it")
    assert str(err) == "corpus.de is not UTF-8 text: line 3 has the byte(s) b'\\xe4' (invalid continuation byte); re-encode it"
