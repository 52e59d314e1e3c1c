"""Reading checkpoints safely: tensors and plain containers only, with errors that name the file and the fix.

Every checkpoint snnlstm reads (``--ckpt_path``, ``init_from``, ``vocab_from``, the benchmark scripts) goes
through :func:`load_checkpoint`, i.e. ``torch.load(..., weights_only=True)``: PyTorch's weights-only
unpickler builds tensors, dicts, lists, tuples, sets, strings, numbers, booleans and ``None`` and refuses any
other class or function, so a checkpoint cannot run code while it is read.

Safe globals: none are registered. Every checkpoint shipped in ``benchmarks/checkpoints/`` and every one that
``snnlstm fit`` writes (classifiers with and without the ANN->SNN conversion and its
``ann-before-conversion.ckpt``, LSNNs, translators with their vocabulary, with ModelCheckpoint, SpikeMonitor
and conversion callback state, optimiser and cosine-schedule state) holds only those plain types.
Should a future checkpoint need a class, allow exactly that class with ``torch.serialization.safe_globals``
around the ``torch.load`` below, never with ``weights_only=False``.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

#: ``--ckpt_path`` values that Lightning resolves itself (not file names)
SPECIAL_CKPT_PATHS: tuple[str, ...] = ("last", "best", "hpc")

#: how ``torch.load`` reports a truncated or corrupt file (zip reader, unpickler, legacy-format reader)
_READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    RuntimeError,
    pickle.UnpicklingError,
    KeyError,
    IndexError,
    ValueError,
    AttributeError,
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, unreadable, or holding code."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file at the given path."""


class CorruptCheckpointError(CheckpointError):
    """The file is not a readable checkpoint (truncated, corrupt, or not written by ``torch.save``)."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint holds pickled classes or functions: reading it would run code."""


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu", *, what: str = "checkpoint") -> Any:
    """The contents of the checkpoint at ``path``, read with ``torch.load(weights_only=True)``.

    Args:
        path: A file written by ``torch.save`` (a Lightning ``.ckpt``).
        map_location: Where to put the tensors (``torch.load``'s ``map_location``).
        what: The role of the file in error messages, e.g. ``"init_from checkpoint"``.

    Returns:
        The loaded object (a dict for Lightning checkpoints).

    Raises:
        CheckpointNotFoundError: no such file.
        UnsafeCheckpointError: the file holds objects other than tensors and plain containers.
        CorruptCheckpointError: the file cannot be read (truncated or corrupt).
    """
    path = Path(path)
    _check_is_file(path, what)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _READ_ERRORS as err:
        unsafe = _unsafe_globals(path, err) if isinstance(err, pickle.UnpicklingError) else []
        if unsafe:
            raise UnsafeCheckpointError(_unsafe_message(path, what, unsafe)) from err
        raise CorruptCheckpointError(_corrupt_message(path, what, err)) from err


def is_checkpoint_file_path(ckpt_path: Any) -> bool:
    """Whether a ``--ckpt_path`` value names a local file (not ``last``/``best``/``hpc``/``registry``/a URL)."""
    if not isinstance(ckpt_path, (str, os.PathLike)):
        return False
    text = os.fspath(ckpt_path)
    return bool(text) and text not in SPECIAL_CKPT_PATHS and not text.startswith("registry") and "://" not in text


def _check_is_file(path: Path, what: str) -> None:
    """Raise :class:`CheckpointNotFoundError` unless ``path`` is a file."""
    if path.is_dir():
        raise CheckpointNotFoundError(f"{what} '{path}' is a directory, not a checkpoint file; give the .ckpt file in it")
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{what} '{path}' does not exist; check the path (`snnlstm fit` writes its checkpoints to "
            "<trainer.default_root_dir>/.../checkpoints/*.ckpt)"
        )


def _unsafe_globals(path: Path, err: BaseException) -> list[str]:
    """The classes/functions pickled in ``path`` that the weights-only unpickler refuses."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip-format checkpoint: the unpickler's message names the first one
        names = []
    return names or re.findall(r"GLOBAL ([\w.]+)", str(err))


def _unsafe_message(path: Path, what: str, names: list[str]) -> str:
    return (
        f"{what} '{path}' is refused: it holds objects that are not plain tensors or containers "
        f"({', '.join(sorted(set(names)))}), and unpickling them would run code. Use checkpoints written by "
        "`snnlstm fit`; if you trust this file, re-save only its tensors and plain values (state_dict, "
        "hyper_parameters) with torch.save"
    )


def _corrupt_message(path: Path, what: str, err: BaseException) -> str:
    return (
        f"{what} '{path}' cannot be read: it is truncated or corrupt ({type(err).__name__}: {_first_sentence(err)}). "
        "Copy it again in full, or re-run the training that wrote it"
    )


def _first_sentence(err: BaseException) -> str:
    """The gist of a ``torch.load`` error: the unpickler's own reason, else the first sentence."""
    text = str(err).strip()
    if "WeightsUnpickler error:" in text:  # skip torch's advice to retry with weights_only=False
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    if not text:
        return "unexpected end of file"
    return text.splitlines()[0].split(". ")[0].rstrip(".")
