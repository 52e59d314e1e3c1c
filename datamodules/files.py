"""File helpers shared by the DataModules: the user cache folder, atomic writes, content digests and
readable errors for text that is not UTF-8.

Caches never go into a data set's folder (which may be read-only shared data) but into
:func:`cache_root`: ``$SNNLSTM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/snnlstm``, else
``~/.cache/snnlstm``; each DataModule uses a subfolder of it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CACHE_ENV", "atomic_output", "atomic_write_text", "cache_root", "default_cache_dir", "file_digest", "utf8_error"]

CACHE_ENV = "SNNLSTM_CACHE_DIR"
"""Environment variable naming the cache root (it wins over ``XDG_CACHE_HOME``)."""
DIGEST_CHUNK = 1 << 20
"""Bytes read at a time by :func:`file_digest`."""


def cache_root() -> Path:
    """The root of every ``snnlstm`` cache: ``$SNNLSTM_CACHE_DIR``, ``$XDG_CACHE_HOME/snnlstm`` or ``~/.cache/snnlstm``.

    Empty variables count as unset (as the XDG base-directory specification says).
    """
    own = os.environ.get(CACHE_ENV)
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "snnlstm"


def default_cache_dir(name: str) -> Path:
    """The cache folder of one kind of data, ``cache_root() / name`` (read when called, not at import)."""
    return cache_root() / name


def file_digest(path: str | Path) -> str:
    """BLAKE2b (128-bit) hex digest of the bytes of ``path``, read in :data:`DIGEST_CHUNK` chunks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(DIGEST_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_output(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write into; it replaces ``path`` (:func:`os.replace`) on success.

    Readers therefore see no file or a complete one, never a partial one. On any exception, ``KeyboardInterrupt``
    included, the temporary file is removed and the exception propagates; ``path`` is left as it was.

    Args:
        path: The final file.
        suffix: End of the temporary name (e.g. ``".tmp.npy"``), after ``<name>.<pid>``.

    Yields:
        The temporary path (not created yet), in the same folder as ``path``.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op once replaced


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` as UTF-8 to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def utf8_error(path: str | Path, data: bytes, fix: str) -> ValueError:
    """The error for ``data`` (the bytes of ``path``) that do not decode as UTF-8.

    Args:
        path: The file, named in the message.
        data: Its (decompressed) bytes.
        fix: What to do about it, appended to the message.

    Returns:
        A ``ValueError`` naming the file, the 1-based line and the offending bytes, then ``fix``
        (or a generic one when ``data`` is valid UTF-8 after all).
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.end]
        return ValueError(f"{path} is not UTF-8 text: line {line} has the byte(s) {bad!r} ({err.reason}); {fix}")
    return ValueError(f"{path} could not be decoded as UTF-8; {fix}")
