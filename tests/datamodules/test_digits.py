"""Tests of ``SequentialDigits`` (scikit-learn's bundled 8x8 digits)."""

from __future__ import annotations

import pytest
import torch

from snnlstm.datamodules import SequentialDigits


def test_properties_before_setup() -> None:
    dm = SequentialDigits()
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (8, 8, 10)
    assert dm.train_dataset is None


@pytest.mark.parametrize("stratify", [True, False], ids=["stratified", "random"])
def test_shapes_and_range(stratify: bool) -> None:
    dm = SequentialDigits(batch_size=16, stratify=stratify)
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        x, y = next(iter(loader))
        assert x.shape == (16, 8, 8) and x.dtype == torch.float32
        assert y.shape == (16,) and y.dtype == torch.int64
    x = dm.train_dataset.tensors[0]
    assert x.min() == 0 and x.max() == 1


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction", "sizes"),
    [(0.15, 0.15, (1257, 270, 270)), (0.1, 0.2, (1258, 180, 359)), (0.0, 0.25, (1348, 0, 449))],
    ids=["default", "10-20", "no-val"],
)
def test_split_sizes_add_up_and_disjoint(val_fraction: float, test_fraction: float, sizes: tuple) -> None:
    dm = SequentialDigits(val_fraction=val_fraction, test_fraction=test_fraction)
    dm.setup()
    idx = (dm.train_indices, dm.val_indices, dm.test_indices)
    assert tuple(len(i) for i in idx) == sizes and sum(sizes) == 1797
    assert len(torch.cat(idx).unique()) == 1797
    assert len(dm.train_dataset) == sizes[0]
    if sizes[1] == 0:
        assert dm.val_dataset is None and dm.val_dataloader() == []


def test_stratified_keeps_class_balance() -> None:
    dm = SequentialDigits(stratify=True)
    dm.setup()
    counts = torch.bincount(dm.test_dataset.tensors[1], minlength=10)
    assert counts.min() >= 25 and counts.max() <= 29  # 270 / 10 = 27 per class


def test_deterministic_with_seed() -> None:
    a, b, c = SequentialDigits(seed=5), SequentialDigits(seed=5), SequentialDigits(seed=6)
    for dm in (a, b, c):
        dm.setup()
    for name in ("train_indices", "val_indices", "test_indices"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.test_indices, c.test_indices)
    assert torch.equal(a.val_dataset.tensors[0], b.val_dataset.tensors[0])


def test_normalize_uses_training_statistics() -> None:
    dm = SequentialDigits(normalize=True)
    dm.setup()
    train_x = dm.train_dataset.tensors[0]
    assert abs(train_x.mean().item()) < 1e-5 and abs(train_x.std().item() - 1) < 1e-4
    raw = SequentialDigits(normalize=False)
    raw.setup()
    torch.testing.assert_close(dm.test_dataset.tensors[0], (raw.test_dataset.tensors[0] - dm.mean) / dm.std)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"val_fraction": -0.1}, r"val_fraction must be a finite number in \[0, 1\), got -0.1"),
        ({"test_fraction": 1.0}, r"test_fraction must be a finite number in \[0, 1\), got 1.0"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \+ test_fraction must leave"),
        ({"batch_size": 0}, r"batch_size must be an integer in \[1, inf\], got 0"),
        ({"seed": -1}, r"seed must be an integer in \[0, inf\], got -1"),
    ],
    ids=["val-neg", "test-one", "sum-one", "batch_size", "seed"],
)
def test_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        SequentialDigits(**kwargs)
