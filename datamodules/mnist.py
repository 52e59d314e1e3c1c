"""Sequential MNIST: MNIST digits read row by row or pixel by pixel.

Variants (``H = W = image_size``):

* ``"row"``: each image is ``H`` time steps of ``W`` features (one row per step), shape ``[H, W]``;
* ``"pixel"``: each image is ``H * W`` time steps of one feature, in raster order, shape ``[H*W, 1]``;
* ``"permuted"``: like ``"pixel"`` but with the pixels reordered by one fixed random permutation
  (seeded by ``permutation_seed``, shared by all images and splits).
"""

from __future__ import annotations

import gzip
import shutil
import struct
import zlib
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .base import SequenceDataModule, check_choice, check_float, check_int
from .files import atomic_output

__all__ = ["SequentialMNIST"]

MNIST_TRAIN_SIZE = 60_000
"""Images in the official MNIST training set (the upper bound checked for ``val_size`` in ``__init__``)."""

MNIST_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The raw IDX files torchvision expects under ``<data_dir>/MNIST/raw`` (``.gz`` versions are accepted)."""

IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
"""IDX magic numbers (big-endian ``uint32``): unsigned bytes, 3 dimensions for images, 1 for labels."""
IMAGE_SHAPE = (28, 28)
"""Rows and columns of every MNIST image."""
_REDOWNLOAD = (
    "delete it and download again (`download: true`), or copy an intact file from the MNIST release "
    "(train-*/t10k-*-idx?-ubyte[.gz])"
)

VARIANTS = ("row", "pixel", "permuted")
IMAGE_SIZES = (28, 32)


class SequentialMNIST(SequenceDataModule):
    """MNIST as sequences for recurrent (spiking) networks.

    Data are loaded with :class:`torchvision.datasets.MNIST` and converted once, with vectorised
    tensor ops, into :class:`~torch.utils.data.TensorDataset` s (no per-sample transforms):
    pixels are scaled to ``[0, 1]``, optionally zero-padded by 2 pixels on every side to
    ``32 x 32`` (as in Datta et al. 2022; the padding is black, i.e. 0 before normalisation),
    optionally standardised as ``(x - mean) / std``, then laid out per :attr:`variant`.

    Batches are ``(inputs, targets)``: ``inputs`` ``float32`` ``[batch, seq_len, input_size]``
    with ``[seq_len, input_size]`` = ``[image_size, image_size]`` for ``"row"`` and
    ``[image_size ** 2, 1]`` for ``"pixel"``/``"permuted"``; ``targets`` ``int64`` ``[batch]``
    in ``[0, 10)``.

    Splits: ``val_size`` images of the 60k training set, chosen at random with ``seed``, form
    the validation split and the rest the training split; the official 10k test set is the
    test (and predict) split. ``val_size=0`` means no validation split: ``val_dataloader``
    returns ``[]`` and Lightning skips validation.

    Files: with ``download=False`` the four raw IDX files must exist in ``<data_dir>/MNIST/raw``
    (uncompressed, or as ``.gz``, which is decompressed next to it on first use). With
    ``download=True`` :meth:`prepare_data` fetches them. Before a split is read, the header and
    size of its two files are checked (:func:`check_idx_file`): a truncated, over-long or
    foreign file raises one ``ValueError`` naming it and the fix, instead of a torchvision trace.

    Args:
        data_dir: Root folder holding ``MNIST/raw``.
        variant: ``"row"``, ``"pixel"`` or ``"permuted"`` (see the module docstring).
        image_size: ``28`` (original) or ``32`` (zero-padded).
        normalize: Standardise pixels with ``mean`` and ``std``; when ``False`` inputs stay in
            ``[0, 1]`` (what Poisson/rate encoding needs).
        mean: Mean subtracted when ``normalize`` (of the ``[0, 1]`` pixels).
        std: Standard deviation divided by when ``normalize``, ``> 0``.
        download: Download the raw files into ``data_dir`` if missing (needs internet).
        val_size: Training images held out for validation, in ``[0, 60000)``; ``0`` disables
            validation.
        permutation_seed: Seed of the fixed pixel permutation of the ``"permuted"`` variant.
        batch_size: Samples per batch, ``>= 1``.
        num_workers: DataLoader worker processes, ``>= 0``.
        seed: Seed of the train/validation split, ``>= 0``.

    Raises:
        ValueError: If an argument is out of range or not an allowed value.
    """

    def __init__(
        self,
        data_dir: str = "data",
        variant: Literal["row", "pixel", "permuted"] = "row",
        image_size: Literal[28, 32] = 28,
        normalize: bool = True,
        mean: float = 0.1307,
        std: float = 0.3081,
        download: bool = False,
        val_size: int = 5000,
        permutation_seed: int = 0,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        check_choice("variant", variant, VARIANTS)
        check_choice("image_size", image_size, IMAGE_SIZES)
        check_float("mean", mean)
        check_float("std", std, minimum=0.0, min_inclusive=False)
        check_int("val_size", val_size, minimum=0, maximum=MNIST_TRAIN_SIZE - 1)
        check_int("permutation_seed", permutation_seed, minimum=0)
        self.data_dir = str(data_dir)
        self.variant = variant
        self.image_size = image_size
        self.normalize = bool(normalize)
        self.mean = float(mean)
        self.std = float(std)
        self.download = bool(download)
        self.val_size = val_size
        self.permutation_seed = permutation_seed
        self.train_indices: torch.Tensor | None = None
        self.val_indices: torch.Tensor | None = None
        self.save_hyperparameters()

    # ------------------------------------------------------------------ properties
    @property
    def input_size(self) -> int:
        """Features per step: ``image_size`` for ``"row"``, ``1`` otherwise."""
        return self.image_size if self.variant == "row" else 1

    @property
    def num_classes(self) -> int:
        """Always ``10``."""
        return 10

    @property
    def seq_len(self) -> int:
        """Steps per image: ``image_size`` for ``"row"``, ``image_size ** 2`` otherwise."""
        return self.image_size if self.variant == "row" else self.image_size**2

    @property
    def permutation(self) -> torch.Tensor | None:
        """The fixed pixel order of the ``"permuted"`` variant (``int64`` ``[image_size ** 2]``), else ``None``.

        Step ``t`` of a permuted sequence is raster-order pixel ``permutation[t]``.
        """
        if self.variant != "permuted":
            return None
        gen = torch.Generator().manual_seed(self.permutation_seed)
        return torch.randperm(self.image_size**2, generator=gen)

    @property
    def raw_folder(self) -> Path:
        """``<data_dir>/MNIST/raw``, where the IDX files live."""
        return Path(self.data_dir) / "MNIST" / "raw"

    # ------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        """Downloads MNIST when ``download`` is set (called by Lightning on one process only)."""
        if self.download:
            from torchvision.datasets import MNIST

            MNIST(root=self.data_dir, train=True, download=True)

    def setup(self, stage: str | None = None) -> None:
        """Loads and converts the splits needed by ``stage`` (idempotent).

        Args:
            stage: ``"fit"`` or ``"validate"`` build the train/validation splits, ``"test"`` or
                ``"predict"`` the test split, ``None`` all of them.

        Raises:
            FileNotFoundError: If ``download`` is off and raw files are missing.
            ValueError: If ``val_size`` leaves no training images, or a raw file is truncated or corrupt.
        """
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            images, labels = self._load(train=True)
            n = images.shape[0]
            if self.val_size >= n:
                raise ValueError(
                    f"val_size must be in [0, {n - 1}] for a training set of {n} images, got {self.val_size}"
                )
            order = torch.randperm(n, generator=self.split_generator())
            self.val_indices = order[: self.val_size].sort().values
            self.train_indices = order[self.val_size :].sort().values
            inputs = self._to_sequences(images)
            self.train_dataset = TensorDataset(inputs[self.train_indices], labels[self.train_indices])
            if self.val_size > 0:
                self.val_dataset = TensorDataset(inputs[self.val_indices], labels[self.val_indices])
        if stage in (None, "test", "predict") and self.test_dataset is None:
            images, labels = self._load(train=False)
            self.test_dataset = TensorDataset(self._to_sequences(images), labels)

    def _to_sequences(self, images: torch.Tensor) -> torch.Tensor:
        """Converts raw images to sequences in one vectorised pass.

        Args:
            images: ``uint8`` ``[N, 28, 28]``.

        Returns:
            ``float32`` ``[N, seq_len, input_size]``.
        """
        x = images.to(torch.float32).div_(255.0)
        if self.image_size == 32:
            pad = (32 - x.shape[-1]) // 2
            x = F.pad(x, (pad, pad, pad, pad))
        if self.normalize:
            x = x.sub_(self.mean).div_(self.std)
        n = x.shape[0]
        if self.variant == "row":
            return x.contiguous()
        x = x.reshape(n, -1)
        perm = self.permutation
        if perm is not None:
            x = x[:, perm]
        return x.unsqueeze(-1).contiguous()

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Reads one official split through torchvision.

        Args:
            train: The 60k training set if ``True``, else the 10k test set.

        Returns:
            ``(images uint8 [N, 28, 28], labels int64 [N])``.
        """
        from torchvision.datasets import MNIST

        if not self.download:
            self._check_raw_files()
        if not self._has_legacy_cache():
            self._check_split_files(train)
        ds = MNIST(root=self.data_dir, train=train, download=self.download)
        return ds.data, ds.targets.to(torch.int64)

    def _has_legacy_cache(self) -> bool:
        """Whether torchvision's legacy ``MNIST/processed/{training,test}.pt`` exist (then it reads those)."""
        processed = Path(self.data_dir) / "MNIST" / "processed"
        return (processed / "training.pt").is_file() and (processed / "test.pt").is_file()

    def _check_split_files(self, train: bool) -> None:
        """Validates the split's two raw IDX files that exist (missing ones are left to the download).

        Raises:
            ValueError: If a file is truncated, too long, has a wrong magic number or image size, or the two
                files disagree on the number of images; the message names the file and the fix.
        """
        prefix = "train" if train else "t10k"
        images, labels = self.raw_folder / f"{prefix}-images-idx3-ubyte", self.raw_folder / f"{prefix}-labels-idx1-ubyte"
        counts = {}
        for path, kind in ((images, "images"), (labels, "labels")):
            if path.is_file():
                counts[kind] = check_idx_file(path, kind)[0]
        if len(counts) == 2 and counts["images"] != counts["labels"]:
            raise ValueError(
                f"{images} holds {counts['images']} images but {labels} holds {counts['labels']} labels; "
                f"the two files must come from the same MNIST split: {_REDOWNLOAD}"
            )

    def _check_raw_files(self) -> None:
        """Makes sure the raw files exist, decompressing ``.gz`` versions if needed.

        Raises:
            FileNotFoundError: If a file is missing in both forms.
            ValueError: If a ``.gz`` file is truncated or not gzip data.
        """
        if self._has_legacy_cache():
            return
        raw = self.raw_folder
        missing = []
        for name in MNIST_RAW_FILES:
            target = raw / name
            if target.is_file():
                continue
            packed = raw / f"{name}.gz"
            if packed.is_file():
                _gunzip(packed, target)
                continue
            missing.append(name)
        if missing:
            raise FileNotFoundError(
                f"MNIST raw files not found in {raw}: missing {', '.join(missing)}. "
                f"Expected the four files {', '.join(MNIST_RAW_FILES)} (each may also be gzipped, "
                f"with a .gz suffix) in that folder. Copy them there, point data_dir at the folder "
                f"that contains MNIST/raw, or pass `download: true` when online."
            )


def _gunzip(packed: Path, target: Path) -> None:
    """Decompresses ``packed`` into ``target`` (atomically: nothing is left behind on failure).

    Raises:
        ValueError: If ``packed`` is truncated or not gzip data, naming it and the fix.
    """
    try:
        with atomic_output(target) as tmp, gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{packed} is truncated or not a gzip file ({err}): {_REDOWNLOAD}") from None


def check_idx_file(path: Path, kind: Literal["images", "labels"]) -> tuple[int, ...]:
    """Checks the header and size of a raw MNIST IDX file without reading its data.

    An IDX file is a big-endian ``uint32`` magic number (:data:`IDX_MAGIC`), one big-endian ``uint32`` per
    dimension (count, then rows and columns for images), then one byte per value.

    Args:
        path: The file.
        kind: ``"images"`` (``idx3``) or ``"labels"`` (``idx1``).

    Returns:
        The dimensions, ``(count, 28, 28)`` or ``(count,)``.

    Raises:
        ValueError: If the file is shorter or longer than its header says, has another magic number, or holds
            images that are not 28 x 28; the message names the file, what was expected and the fix.
    """
    ndim = 3 if kind == "images" else 1
    header_size = 4 * (1 + ndim)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(header_size)
    if len(header) < header_size:
        raise ValueError(
            f"{path} is truncated or corrupt (expected at least {header_size} bytes, found {size}): {_REDOWNLOAD}"
        )
    magic, *dims = struct.unpack(f">{1 + ndim}I", header)
    expected_magic = IDX_MAGIC[kind]
    if magic != expected_magic:
        raise ValueError(
            f"{path} is not an MNIST {kind} file: magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"({expected_magic}); it is corrupt, still compressed or another file: {_REDOWNLOAD}"
        )
    if kind == "images" and tuple(dims[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{path} holds {dims[1]}x{dims[2]} images, expected 28x28 (MNIST): {_REDOWNLOAD}")
    expected = header_size + dims[0] * (IMAGE_SHAPE[0] * IMAGE_SHAPE[1] if kind == "images" else 1)
    if size != expected:
        raise ValueError(f"{path} is truncated or corrupt (expected {expected} bytes, found {size}): {_REDOWNLOAD}")
    return tuple(dims)
