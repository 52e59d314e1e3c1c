"""Shared base class for the sequence-classification DataModules of ``snnlstm``.

Every DataModule in the project yields batches ``(inputs, targets)`` with

* ``inputs``: ``float32`` tensor of shape ``[batch, time, features]``;
* ``targets``: ``int64`` tensor of shape ``[batch]``;

and exposes the three properties :attr:`SequenceDataModule.input_size` (``features``),
:attr:`SequenceDataModule.num_classes` and :attr:`SequenceDataModule.seq_len` (``time``).
These are valid right after ``__init__`` (before :meth:`setup`), so a ``LightningCLI`` can link
them into the model with ``link_arguments(..., apply_on="instantiate")``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

__all__ = ["SequenceDataModule"]


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> None:
    """Raises a ``ValueError`` unless ``value`` is an ``int`` (not ``bool``) in ``[minimum, maximum]``.

    Args:
        name: Argument name, used in the error message.
        value: The value to check.
        minimum: Smallest allowed value (inclusive), or ``None`` for no lower bound.
        maximum: Largest allowed value (inclusive), or ``None`` for no upper bound.

    Raises:
        ValueError: If ``value`` is not an integer or lies outside the range.
    """
    lo = "-inf" if minimum is None else str(minimum)
    hi = "inf" if maximum is None else str(maximum)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> None:
    """Raises a ``ValueError`` unless ``value`` is a finite real number in the given interval.

    Args:
        name: Argument name, used in the error message.
        value: The value to check (``int`` is accepted, ``bool`` is not).
        minimum: Lower bound, or ``None`` for none.
        maximum: Upper bound, or ``None`` for none.
        min_inclusive: Whether ``minimum`` itself is allowed.
        max_inclusive: Whether ``maximum`` itself is allowed.

    Raises:
        ValueError: If ``value`` is not a finite number or lies outside the interval.
    """
    left = ("[" if min_inclusive else "(") + ("-inf" if minimum is None else f"{minimum:g}")
    right = ("inf" if maximum is None else f"{maximum:g}") + ("]" if max_inclusive else ")")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value >= minimum if min_inclusive else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if max_inclusive else value < maximum
    if not ok:
        raise ValueError(f"{name} must be a finite number in {left}, {right}, got {value!r}")


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raises a ``ValueError`` unless ``value`` is one of ``allowed``.

    Args:
        name: Argument name, used in the error message.
        value: The value to check.
        allowed: The allowed values.

    Raises:
        ValueError: If ``value`` is not in ``allowed`` (``True``/``False`` never match ``1``/``0``).
    """
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)!r}, got {value!r}")


class SequenceDataModule(LightningDataModule, abc.ABC):
    """Base class: dataloaders over ``[time, features]`` sequences with integer class labels.

    Subclasses build ``self.train_dataset``, ``self.val_dataset`` and ``self.test_dataset``
    (any map-style :class:`~torch.utils.data.Dataset` whose items are ``(x, y)`` with ``x`` of
    shape ``[time, features]`` ``float32`` and ``y`` a scalar ``int64``) in :meth:`setup`, and
    implement the properties :attr:`input_size`, :attr:`num_classes` and :attr:`seq_len` from
    constructor arguments alone so they are valid before :meth:`setup`.

    Dataloaders: the training loader shuffles (with the global RNG, so
    ``seed_everything`` controls the order), the others do not; none drops the last batch.
    ``pin_memory`` is on when CUDA is available and ``persistent_workers`` when
    ``num_workers > 0``. A split that a subclass leaves as ``None`` (e.g. no validation split
    requested) yields an empty list, which Lightning treats as "no batches".
    :meth:`predict_dataloader` iterates over the test set.

    Args:
        batch_size: Samples per batch, ``>= 1``.
        num_workers: DataLoader worker processes, ``>= 0`` (``0`` loads in the main process).
        seed: Seed of the random train/validation(/test) split, any integer ``>= 0``.

    Raises:
        ValueError: If an argument is out of range.
    """

    def __init__(self, batch_size: int = 128, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        check_int("batch_size", batch_size, minimum=1)
        check_int("num_workers", num_workers, minimum=0)
        check_int("seed", seed, minimum=0)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None

    # ------------------------------------------------------------------ properties
    @property
    @abc.abstractmethod
    def input_size(self) -> int:
        """Features per time step (the last dimension of a batch's inputs)."""

    @property
    @abc.abstractmethod
    def num_classes(self) -> int:
        """Number of target classes; targets lie in ``[0, num_classes)``."""

    @property
    @abc.abstractmethod
    def seq_len(self) -> int:
        """Time steps per sequence (the middle dimension of a batch's inputs)."""

    # ------------------------------------------------------------------ helpers
    def split_generator(self) -> torch.Generator:
        """Returns a fresh CPU generator seeded with :attr:`seed`, for reproducible splits."""
        return torch.Generator().manual_seed(self.seed)

    def _loader(self, dataset: Dataset | None, split: str, *, shuffle: bool = False, required: bool = False) -> Any:
        """Builds the DataLoader of one split.

        Args:
            dataset: The split's dataset, or ``None`` when it is absent.
            split: Split name for error messages (``"train"``, ``"val"``, ``"test"``).
            shuffle: Whether to reshuffle every epoch.
            required: Raise if the dataset is missing instead of returning ``[]``.

        Returns:
            A :class:`~torch.utils.data.DataLoader`, or ``[]`` for an absent optional split.

        Raises:
            RuntimeError: If :meth:`setup` has not built a required split.
        """
        if dataset is None:
            if required or not self._setup_done:
                raise RuntimeError(
                    f"{type(self).__name__} has no {split} dataset: call setup() with the matching stage "
                    "(e.g. setup('fit')) before asking for its dataloader"
                )
            return []
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    @property
    def _setup_done(self) -> bool:
        """Whether any split has been built (then a missing split is intentional, not an error)."""
        return any(d is not None for d in (self.train_dataset, self.val_dataset, self.test_dataset))

    # ------------------------------------------------------------------ dataloaders
    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of the training split.

        Returns:
            DataLoader yielding ``(inputs [batch, seq_len, input_size] float32, targets [batch] int64)``.
        """
        return self._loader(self.train_dataset, "train", shuffle=True, required=True)

    def val_dataloader(self) -> Any:
        """Batches of the validation split, in order; ``[]`` when the subclass has no validation split.

        Returns:
            DataLoader (or ``[]``) yielding ``(inputs [batch, seq_len, input_size], targets [batch])``.
        """
        return self._loader(self.val_dataset, "val")

    def test_dataloader(self) -> Any:
        """Batches of the test split, in order; ``[]`` when the subclass has no test split.

        Returns:
            DataLoader (or ``[]``) yielding ``(inputs [batch, seq_len, input_size], targets [batch])``.
        """
        return self._loader(self.test_dataset, "test")

    def predict_dataloader(self) -> Any:
        """Batches of the test split, in order (the same as :meth:`test_dataloader`).

        Returns:
            DataLoader (or ``[]``) yielding ``(inputs [batch, seq_len, input_size], targets [batch])``.
        """
        return self._loader(self.test_dataset, "test")
