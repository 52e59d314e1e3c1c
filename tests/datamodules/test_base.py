"""Tests of the shared ``SequenceDataModule`` behaviour."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from jsonargparse import ArgumentParser
from torch.utils.data import TensorDataset

from snnlstm.datamodules import SequenceDataModule, SequentialDigits, SequentialMNIST


class _Toy(SequenceDataModule):
    """Concrete subclass with 10 random sequences of shape [3, 2]."""

    input_size = 2
    num_classes = 4
    seq_len = 3

    def setup(self, stage: str | None = None) -> None:
        self.train_dataset = TensorDataset(torch.randn(10, 3, 2), torch.randint(0, 4, (10,)))
        self.test_dataset = TensorDataset(torch.randn(6, 3, 2), torch.randint(0, 4, (6,)))


def test_base_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        SequenceDataModule()


@pytest.mark.parametrize("num_workers", [0, 2], ids=["main-process", "workers"])
def test_loader_settings(num_workers: int) -> None:
    dm = _Toy(batch_size=4, num_workers=num_workers)
    dm.setup()
    train = dm.train_dataloader()
    assert train.batch_size == 4 and train.num_workers == num_workers
    assert train.persistent_workers is (num_workers > 0)
    assert train.pin_memory is torch.cuda.is_available()
    assert isinstance(train.sampler, torch.utils.data.RandomSampler)
    assert isinstance(dm.test_dataloader().sampler, torch.utils.data.SequentialSampler)
    assert dm.val_dataloader() == []  # no validation split after setup


def test_val_before_setup_raises() -> None:
    with pytest.raises(RuntimeError, match=r"setup\(\)"):
        _Toy().val_dataloader()


@pytest.mark.parametrize(
    ("cls", "args", "expected"),
    [
        (SequentialMNIST, ["--variant", "permuted", "--image_size", "32", "--val_size", "0"], (1024, 1)),
        (SequentialMNIST, ["--normalize", "false", "--batch_size", "64"], (28, 28)),
        (SequentialDigits, ["--val_fraction", "0.2", "--stratify", "false"], (8, 8)),
    ],
    ids=["mnist-permuted", "mnist-row", "digits"],
)
def test_constructor_is_cli_settable(cls: type, args: list[str], expected: tuple[int, int]) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    cfg = parser.parse_args([a if not a.startswith("--") else "--data." + a[2:] for a in args])
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # jsonargparse < 4.49
    dm = instantiate(cfg).data
    assert isinstance(dm, cls) and (dm.seq_len, dm.input_size) == expected


def test_cli_rejects_bad_literal() -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(SequentialMNIST, "data")
    with pytest.raises(Exception):
        parser.parse_args(["--data.variant", "column"])


class _Classifier(L.LightningModule):
    def __init__(self, seq_len: int, input_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(seq_len * input_size, num_classes)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.fc(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):  # noqa: D102
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):  # noqa: D102
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):  # noqa: D102
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):  # noqa: D102
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:Total length of `list` across ranks is zero")
@pytest.mark.parametrize("val_fraction", [0.15, 0.0], ids=["with-val", "no-val"])
def test_trainer_runs_on_digits(val_fraction: float) -> None:
    dm = SequentialDigits(val_fraction=val_fraction, batch_size=64)
    model = _Classifier(dm.seq_len, dm.input_size, dm.num_classes)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        limit_test_batches=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert "test_loss" in trainer.test(model, datamodule=dm, verbose=False)[0]
