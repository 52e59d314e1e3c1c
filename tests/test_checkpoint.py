"""snnlstm.checkpoint: weights-only loading of every checkpoint, and errors that name the file and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from benchmarks.slim_checkpoint import slim_checkpoint
from snnlstm.nn.settings import LSTMSettings
from snnlstm.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    is_checkpoint_file_path,
    load_checkpoint,
)
from snnlstm.datamodules.translation import load_codec
from snnlstm.models import SequenceClassifier
from tests.conftest import TinySequences, make_trainer

SHIPPED = sorted((Path(__file__).parents[1] / "benchmarks" / "checkpoints").rglob("*.ckpt"))


class _Payload:
    """Unpickles to ``open(marker, "w")``: reading a checkpoint holding it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _good_checkpoint(path: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(3)}, "hyper_parameters": {"hidden_size": 8, "gates": ("i", "f")}}, path)
    return path


def _truncated(tmp_path: Path, keep: float) -> Path:
    data = _good_checkpoint(tmp_path / "good.ckpt").read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _unsafe(tmp_path: Path, zip_format: bool = True) -> tuple[Path, Path]:
    """A checkpoint with ``os.system`` and a code-running payload; and the marker that the payload would create."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "hook": os.system, "payload": _Payload(marker)}, path,
               _use_new_zipfile_serialization=zip_format)
    return path, marker


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED])
def test_every_shipped_checkpoint_loads_weights_only(path: Path) -> None:
    """No safe globals needed: the shipped checkpoints hold tensors and plain containers only."""
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    checkpoint = load_checkpoint(path)
    assert isinstance(checkpoint["state_dict"], dict) and "hyper_parameters" in checkpoint


def test_a_full_trainer_checkpoint_loads_weights_only(tmp_path: Path) -> None:
    """Optimizer, LR schedule, loops and ModelCheckpoint state, as ``snnlstm fit`` writes them."""
    model = SequenceClassifier(input_size=4, num_classes=2, seq_len=6, lr_schedule="cosine", layer=LSTMSettings(hidden_size=8))
    checkpointing = ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="val/acc", mode="max", save_last=True)
    trainer = make_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[checkpointing])
    trainer.fit(model, TinySequences())
    checkpoint = load_checkpoint(checkpointing.last_model_path)
    assert {"optimizer_states", "lr_schedulers", "loops", "callbacks"} <= set(checkpoint)


def test_missing_file_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"init_from checkpoint '.*nope\.ckpt' does not exist; check"):
        load_checkpoint(tmp_path / "nope.ckpt", what="init_from checkpoint")
    with pytest.raises(FileNotFoundError, match="is a directory, not a checkpoint file; give the .ckpt file"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.99], ids=["empty", "first-bytes", "half", "last-byte-missing"])
def test_truncated_checkpoint_names_the_file_and_the_fix(tmp_path: Path, keep: float) -> None:
    path = _truncated(tmp_path, keep)
    with pytest.raises(CorruptCheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "truncated or corrupt" in message and "Copy it again in full" in message
    assert "weights_only" not in message  # not torch's advice to load it unsafely


@pytest.mark.parametrize("content", [b"not a checkpoint at all", os.urandom(4096)], ids=["text", "random"])
def test_corrupt_checkpoint(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.ckpt"
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match="corrupt.ckpt' cannot be read: it is truncated or corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path: Path, zip_format: bool) -> None:
    path, marker = _unsafe(tmp_path, zip_format)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "not plain tensors or containers" in message and "would run code" in message
    assert "system" in message
    assert not marker.exists()


def test_init_from_corrupt_or_unsafe_checkpoint(tmp_path: Path) -> None:
    """Before: ``RuntimeError: PytorchStreamReader failed ...`` naming no file; the payload ran (weights_only=False)."""
    corrupt = _truncated(tmp_path, 0.5)
    with pytest.raises(CorruptCheckpointError, match=r"init_from checkpoint '.*truncated\.ckpt' cannot be read"):
        SequenceClassifier(input_size=4, num_classes=2, init_from=str(corrupt), layer=LSTMSettings(hidden_size=8))
    unsafe, marker = _unsafe(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=r"init_from checkpoint '.*unsafe\.ckpt' is refused"):
        SequenceClassifier(input_size=4, num_classes=2, init_from=str(unsafe), layer=LSTMSettings(hidden_size=8))
    assert not marker.exists()


def test_vocab_from_corrupt_or_unsafe_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CorruptCheckpointError, match=r"vocab_from checkpoint '.*truncated\.ckpt' cannot be read"):
        load_codec(_truncated(tmp_path, 0.5))
    unsafe, marker = _unsafe(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=r"vocab_from checkpoint '.*unsafe\.ckpt' is refused"):
        load_codec(unsafe)
    assert not marker.exists()


def test_slim_checkpoint_refuses_corrupt_or_unsafe_input(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        slim_checkpoint(_truncated(tmp_path, 0.5), tmp_path / "slim.ckpt")
    unsafe, marker = _unsafe(tmp_path)
    with pytest.raises(ValueError, match="would run code"):
        slim_checkpoint(unsafe, tmp_path / "slim.ckpt")
    assert not marker.exists() and not (tmp_path / "slim.ckpt").exists()


@pytest.mark.parametrize(
    ("value", "is_file_path"),
    [("runs/x/last.ckpt", True), (Path("a.ckpt"), True), ("last", False), ("best", False), ("hpc", False),
     ("registry:model:v1", False), ("s3://bucket/a.ckpt", False), ("", False), (None, False)],
)
def test_is_checkpoint_file_path(value: object, is_file_path: bool) -> None:
    assert is_checkpoint_file_path(value) is is_file_path
