"""Sequential digits: scikit-learn's bundled 8x8 handwritten digits read row by row.

The quickstart data set: 1797 images shipped with scikit-learn (no download), each turned
into 8 time steps of 8 features. Loading and splitting take milliseconds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import SequenceDataModule, check_float

__all__ = ["SequentialDigits"]

DIGITS_SIZE = 1797
"""Images in :func:`sklearn.datasets.load_digits`."""


class SequentialDigits(SequenceDataModule):
    """scikit-learn's 8x8 digits as row sequences (``[8 steps, 8 features]``), 10 classes.

    Pixel values ``0..16`` are divided by 16 into ``[0, 1]``. With ``normalize=True`` they are
    further standardised with the scalar mean and standard deviation of the training split.

    Batches are ``(inputs, targets)``: ``inputs`` ``float32`` ``[batch, 8, 8]``, ``targets``
    ``int64`` ``[batch]`` in ``[0, 10)``.

    Splits: ``round(test_fraction * 1797)`` images form the test (and predict) split,
    ``round(val_fraction * 1797)`` the validation split and the rest the training split, chosen
    at random with ``seed`` (per class proportions preserved when ``stratify``). A fraction of
    ``0`` removes that split (its dataloader returns ``[]``).

    Args:
        val_fraction: Share of all images used for validation, in ``[0, 1)``.
        test_fraction: Share of all images used for testing, in ``[0, 1)``; the two fractions
            must leave at least one training image.
        normalize: Standardise with training-split statistics instead of keeping ``[0, 1]``.
        stratify: Keep the class proportions equal across splits.
        batch_size: Samples per batch, ``>= 1``.
        num_workers: DataLoader worker processes, ``>= 0``.
        seed: Seed of the split, ``>= 0``.

    Raises:
        ValueError: If an argument is out of range.
    """

    def __init__(
        self,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        normalize: bool = False,
        stratify: bool = True,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        check_float("val_fraction", val_fraction, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_float("test_fraction", test_fraction, minimum=0.0, maximum=1.0, max_inclusive=False)
        n_val, n_test = round(val_fraction * DIGITS_SIZE), round(test_fraction * DIGITS_SIZE)
        if val_fraction + test_fraction >= 1.0 or n_val + n_test >= DIGITS_SIZE:
            raise ValueError(
                "val_fraction + test_fraction must leave at least one training image (sum < 1), "
                f"got val_fraction={val_fraction!r}, test_fraction={test_fraction!r}"
            )
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.normalize = bool(normalize)
        self.stratify = bool(stratify)
        self.n_val = n_val
        self.n_test = n_test
        self.train_indices: torch.Tensor | None = None
        self.val_indices: torch.Tensor | None = None
        self.test_indices: torch.Tensor | None = None
        self.mean: float | None = None
        self.std: float | None = None
        self.save_hyperparameters()

    @property
    def input_size(self) -> int:
        """Always ``8`` (pixels per row)."""
        return 8

    @property
    def num_classes(self) -> int:
        """Always ``10``."""
        return 10

    @property
    def seq_len(self) -> int:
        """Always ``8`` (rows per image)."""
        return 8

    def setup(self, stage: str | None = None) -> None:
        """Loads, scales and splits the digits (all splits at once; idempotent).

        Args:
            stage: Ignored: the whole data set is tiny.
        """
        if self.train_dataset is not None:
            return
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        images, labels = load_digits(return_X_y=True)
        x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 8, 8) / 16.0
        y = torch.as_tensor(labels, dtype=torch.int64)
        n = x.shape[0]

        rng = np.random.RandomState(self.seed)
        strat = labels if self.stratify else None
        rest = np.arange(n)
        test_idx = np.empty(0, dtype=np.int64)
        val_idx = np.empty(0, dtype=np.int64)
        if self.n_test > 0:
            rest, test_idx = train_test_split(rest, test_size=self.n_test, random_state=rng, stratify=strat)
        if self.n_val > 0:
            rest, val_idx = train_test_split(
                rest, test_size=self.n_val, random_state=rng, stratify=None if strat is None else strat[rest]
            )
        self.train_indices = torch.as_tensor(np.sort(rest), dtype=torch.int64)
        self.val_indices = torch.as_tensor(np.sort(val_idx), dtype=torch.int64)
        self.test_indices = torch.as_tensor(np.sort(test_idx), dtype=torch.int64)

        if self.normalize:
            train_x = x[self.train_indices]
            self.mean = float(train_x.mean())
            self.std = float(train_x.std()) or 1.0
            x = (x - self.mean) / self.std

        def subset(idx: torch.Tensor) -> TensorDataset | None:
            return TensorDataset(x[idx].contiguous(), y[idx]) if idx.numel() > 0 else None

        self.train_dataset = subset(self.train_indices)
        self.val_dataset = subset(self.val_indices)
        self.test_dataset = subset(self.test_indices)
