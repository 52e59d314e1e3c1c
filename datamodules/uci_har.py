"""UCI HAR: Human Activity Recognition Using Smartphones, as raw inertial sequences.

The data set (Anguita et al., ESANN 2013) records 30 volunteers aged 19-48 performing six
activities (WALKING, WALKING_UPSTAIRS, WALKING_DOWNSTAIRS, SITTING, STANDING, LAYING) with a
waist-mounted Samsung Galaxy S II. The accelerometer and gyroscope were sampled at 50 Hz; the
release has already noise-filtered the signals, separated body from gravity acceleration with a
0.3 Hz Butterworth low-pass filter, and cut them into fixed windows of 2.56 s = 128 readings
with 50 % overlap. The subjects are split by the release into 21 training (7352 windows) and
9 test subjects (2947 windows).

Each window has nine inertial channels, ``body_acc_{x,y,z}`` (total minus gravity, in g),
``body_gyro_{x,y,z}`` (rad/s) and ``total_acc_{x,y,z}`` (in g). Datta et al. 2022 classify
these 9 channels x 128 steps into the 6 activities; this module yields exactly that, per window
``[128, 9]`` (or a chosen subset of the channels). The release's 561 hand-made features
(``X_train.txt``/``X_test.txt``) are not used.

Layout of the official release (the folder inside ``UCI HAR Dataset.zip``, which is itself
inside the archive at :data:`UCI_HAR_URL`)::

    UCI HAR Dataset/
        activity_labels.txt                  "1 WALKING" ... "6 LAYING"
        train/
            y_train.txt                      one label 1..6 per window
            subject_train.txt                one subject id 1..30 per window
            Inertial Signals/
                body_acc_x_train.txt         one window per line: 128 floats, e.g. " 1.8e-004 ..."
                ... body_acc_{x,y,z}, body_gyro_{x,y,z}, total_acc_{x,y,z} ...
        test/
            y_test.txt, subject_test.txt, Inertial Signals/<channel>_test.txt (same format)

Line ``k`` of every file of a split describes window ``k``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import SequenceDataModule, check_choice, check_int
from .files import utf8_error

__all__ = ["UCIHAR"]

UCI_HAR_URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
"""The official archive; it contains ``UCI HAR Dataset.zip``, which holds the ``UCI HAR Dataset`` folder."""

UCI_HAR_FOLDER = "UCI HAR Dataset"
"""Name of the release's top folder."""

UCI_HAR_INNER_ARCHIVE = "UCI HAR Dataset.zip"
"""The nested archive inside :data:`UCI_HAR_URL`."""

UCI_HAR_TRAIN_SUBJECTS = 21
"""Subjects in the official training split (the upper bound checked for ``val_subjects`` in ``__init__``)."""

UCI_HAR_NUM_SUBJECTS = 30
"""Subject ids run from ``1`` to this."""

UCI_HAR_SEQ_LEN = 128
"""Readings per window (2.56 s at 50 Hz)."""

Channel = Literal[
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
]
"""A channel name (``Literal``, so a YAML config with a wrong name is rejected)."""

CHANNELS: tuple[str, ...] = get_args(Channel)
"""The nine inertial channels, in the default order (the order of the last input dimension)."""

CLASS_NAMES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
"""Activity names of labels ``1..6`` (targets ``0..5``), used when ``activity_labels.txt`` is absent."""

SPLITS = ("train", "test")

_LAYOUT = (
    f"<data_dir>/{UCI_HAR_FOLDER}/\n"
    "    activity_labels.txt (optional)\n"
    "    train/y_train.txt\n"
    "    train/subject_train.txt\n"
    "    train/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_train.txt\n"
    "    test/y_test.txt\n"
    "    test/subject_test.txt\n"
    "    test/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_test.txt\n"
    f"(data_dir may also be the '{UCI_HAR_FOLDER}' folder itself)"
)
_REEXTRACT = (
    f"the file is damaged or not from the official release: re-extract '{UCI_HAR_FOLDER}' from "
    f"{UCI_HAR_URL} (or delete the folder and pass `download: true`)"
)


class UCIHAR(SequenceDataModule):
    """UCI HAR inertial windows as ``[128 steps, channels]`` sequences, 6 activity classes.

    The text files of a split are parsed with :func:`numpy.loadtxt` (about 0.25 s per channel
    file of the real training split, so no cache) and stacked, with vectorised ops, into one
    :class:`~torch.utils.data.TensorDataset` per split. Every file is validated: UTF-8 (ASCII)
    text, 128 values on every line, finite values, the same number of lines in all files of a
    split (signals, labels, subjects), labels in ``1..6`` and subject ids in ``1..30``; a
    violation raises a ``ValueError`` naming the file (and line) instead of misaligning windows
    and labels.

    Batches are ``(inputs, targets)``: ``inputs`` ``float32`` ``[batch, 128, len(channels)]``
    with the channels in the order of ``channels``; ``targets`` ``int64`` ``[batch]`` in
    ``[0, 6)`` (the release's label minus one, see :attr:`class_names`).

    Splits: ``val_subjects`` of the official training subjects, drawn at random with ``seed``,
    form the validation split (all their windows) and the remaining subjects the training split,
    so no subject is in both; the official test subjects are the test (and predict) split.
    ``val_subjects=0`` means no validation split: ``val_dataloader`` returns ``[]``.

    Normalisation (``normalize=True``): every channel is standardised as ``(x - mean) / std``
    with the mean and (population) standard deviation of the training split only (validation
    subjects removed), over all its windows and time steps; validation and test use the same
    statistics (:attr:`channel_mean`, :attr:`channel_std`). A channel that is constant on the
    training split gets ``std = 1``, i.e. it is only centred (to zeros), never divided by zero.
    ``setup("test")`` therefore also reads the training split when normalising.

    Files: ``data_dir`` is the folder holding ``UCI HAR Dataset/`` or that folder itself
    (recognised by its ``train/`` and ``test/`` subfolders). With ``download=False`` missing
    files raise a ``FileNotFoundError``; with ``download=True`` :meth:`prepare_data` fetches and
    unpacks the official archive (both zip levels) into ``data_dir``.

    Attributes (``None`` or empty until :meth:`setup` builds the training split):
        val_subject_ids: Sorted subject ids of the validation split (``[]`` for ``val_subjects=0``).
        train_subject_ids: Sorted subject ids of the training split.
        split_subjects: ``{"train"|"val"|"test": int64 [N]}``, the subject of every window of a
            built split, aligned with its dataset.
        channel_mean: ``float32`` ``[len(channels)]`` training-split means (``normalize`` only).
        channel_std: ``float32`` ``[len(channels)]`` training-split standard deviations, ``1``
            for a constant channel (``normalize`` only).

    Args:
        data_dir: Folder holding ``UCI HAR Dataset/``, or the ``UCI HAR Dataset`` folder itself.
        channels: Channels to use, in this order; a non-empty list of distinct names from
            :data:`CHANNELS`. ``None`` uses all nine in the default order.
        normalize: Standardise every channel with training-split statistics.
        val_subjects: Training subjects held out for validation, in ``[0, 20]`` and below the
            number of training subjects in the files; ``0`` disables validation.
        download: Download and unpack the official release into ``data_dir`` if files are
            missing (needs internet).
        batch_size: Samples per batch, ``>= 1``.
        num_workers: DataLoader worker processes, ``>= 0``.
        seed: Seed of the validation-subject draw, ``>= 0``.

    Raises:
        ValueError: If an argument is out of range or not an allowed value.
    """

    def __init__(
        self,
        data_dir: str = "data",
        channels: list[Channel] | None = None,
        normalize: bool = True,
        val_subjects: int = 4,
        download: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.channels: list[str] = _check_channels(channels)
        check_int("val_subjects", val_subjects, minimum=0, maximum=UCI_HAR_TRAIN_SUBJECTS - 1)
        self.data_dir = str(data_dir)
        self.normalize = bool(normalize)
        self.val_subjects = val_subjects
        self.download = bool(download)
        self.val_subject_ids: list[int] | None = None
        self.train_subject_ids: list[int] | None = None
        self.split_subjects: dict[str, torch.Tensor] = {}
        self.channel_mean: torch.Tensor | None = None
        self.channel_std: torch.Tensor | None = None
        self.save_hyperparameters()

    # ------------------------------------------------------------------ properties
    @property
    def input_size(self) -> int:
        """Features per step: the number of selected channels (``9`` by default)."""
        return len(self.channels)

    @property
    def num_classes(self) -> int:
        """Always ``6``."""
        return len(CLASS_NAMES)

    @property
    def seq_len(self) -> int:
        """Always ``128`` (readings per 2.56 s window)."""
        return UCI_HAR_SEQ_LEN

    @property
    def dataset_dir(self) -> Path:
        """The ``UCI HAR Dataset`` folder.

        ``data_dir`` itself if it has ``train/`` and ``test/`` subfolders, else ``data_dir/UCI HAR Dataset``.
        """
        root = Path(self.data_dir)
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
        return root / UCI_HAR_FOLDER

    @property
    def class_names(self) -> list[str]:
        """Activity name of every target ``0..5``: from ``activity_labels.txt`` if present, else :data:`CLASS_NAMES`.

        Raises:
            ValueError: If ``activity_labels.txt`` exists but is not UTF-8 text or does not map ids ``1..6`` to names.
        """
        path = self.dataset_dir / "activity_labels.txt"
        if not path.is_file():
            return list(CLASS_NAMES)
        names: dict[int, str] = {}
        for number, line in enumerate(_read_text(path).splitlines(), start=1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{path} line {number} must read '<id> <NAME>' (e.g. '1 WALKING'), got {line!r}")
            names[int(parts[0])] = parts[1].strip()
        if sorted(names) != list(range(1, len(CLASS_NAMES) + 1)):
            raise ValueError(
                f"{path} must name the activity ids 1..{len(CLASS_NAMES)} once each, got ids {sorted(names)}; "
                f"{_REEXTRACT}"
            )
        return [names[i] for i in range(1, len(CLASS_NAMES) + 1)]

    # ------------------------------------------------------------------ files
    def signal_file(self, split: str, channel: str) -> Path:
        """Path of one channel's file, e.g. ``.../train/Inertial Signals/body_acc_x_train.txt``."""
        return self.dataset_dir / split / "Inertial Signals" / f"{channel}_{split}.txt"

    def label_file(self, split: str) -> Path:
        """Path of a split's labels, ``.../<split>/y_<split>.txt``."""
        return self.dataset_dir / split / f"y_{split}.txt"

    def subject_file(self, split: str) -> Path:
        """Path of a split's subject ids, ``.../<split>/subject_<split>.txt``."""
        return self.dataset_dir / split / f"subject_{split}.txt"

    def _required_files(self, splits: tuple[str, ...]) -> list[Path]:
        """The files ``splits`` need: the selected channels' signals, labels and subjects."""
        files = []
        for split in splits:
            files += [self.signal_file(split, c) for c in self.channels]
            files += [self.label_file(split), self.subject_file(split)]
        return files

    def _missing_files(self, splits: tuple[str, ...]) -> list[Path]:
        return [p for p in self._required_files(splits) if not p.is_file()]

    def _check_files(self, splits: tuple[str, ...]) -> None:
        """Raises a ``FileNotFoundError`` naming every missing file, the expected layout and the fix."""
        missing = self._missing_files(splits)
        if not missing:
            return
        shown = "\n".join(f"    {p}" for p in missing[:6])
        more = f"\n    ... and {len(missing) - 6} more" if len(missing) > 6 else ""
        raise FileNotFoundError(
            f"UCI HAR files not found (data_dir={self.data_dir!r}, dataset folder {self.dataset_dir}); missing:\n"
            f"{shown}{more}\n"
            f"Expected the official release layout:\n{_LAYOUT}\n"
            f"Fix: pass `download: true` (UCIHAR(download=True)) when online, or download {UCI_HAR_URL}, "
            f"unzip it and the '{UCI_HAR_INNER_ARCHIVE}' inside it into data_dir."
        )

    # ------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        """Downloads and unpacks the official archive when ``download`` is set and files are missing.

        The archive at :data:`UCI_HAR_URL` holds ``UCI HAR Dataset.zip``, which is extracted too
        (and then deleted) so that ``UCI HAR Dataset/`` lands in ``data_dir``. Called by Lightning
        on one process only.
        """
        if not self.download or not self._missing_files(SPLITS):
            return
        from torchvision.datasets.utils import download_and_extract_archive, extract_archive

        root = self.dataset_dir.parent
        download_and_extract_archive(UCI_HAR_URL, download_root=str(root))
        inner = root / UCI_HAR_INNER_ARCHIVE
        if inner.is_file():
            extract_archive(str(inner), str(root), remove_finished=True)

    def setup(self, stage: str | None = None) -> None:
        """Loads, splits and normalises the splits needed by ``stage`` (idempotent).

        Args:
            stage: ``"fit"`` or ``"validate"`` build the train/validation splits, ``"test"`` or
                ``"predict"`` the test split (and, when normalising, the training split for its
                statistics), ``None`` all of them.

        Raises:
            FileNotFoundError: If files are missing and ``download`` is off (or did not provide them).
            ValueError: If a file is malformed or ``val_subjects`` leaves no training subject.
        """
        need_test = stage in (None, "test", "predict") and self.test_dataset is None
        need_train = stage in (None, "fit", "validate") or (need_test and self.normalize)
        if need_train and self.train_dataset is None:
            self._setup_train()
        if need_test:
            x, y, subjects = self._load_split("test")
            self.split_subjects["test"] = subjects
            self.test_dataset = TensorDataset(self._normalise(x), y)

    def _setup_train(self) -> None:
        """Builds the train/validation splits by subject and the normalisation statistics."""
        x, y, subjects = self._load_split("train")
        ids = torch.unique(subjects)  # sorted
        if self.val_subjects >= ids.numel():
            raise ValueError(
                f"val_subjects must be in [0, {ids.numel() - 1}] for the {ids.numel()} training subjects "
                f"in {self.subject_file('train')}, got {self.val_subjects}"
            )
        order = torch.randperm(ids.numel(), generator=self.split_generator())
        val_ids = ids[order[: self.val_subjects]].sort().values
        is_val = torch.isin(subjects, val_ids)
        self.val_subject_ids = val_ids.tolist()
        self.train_subject_ids = ids[~torch.isin(ids, val_ids)].tolist()

        train_x = x[~is_val]
        if self.normalize:
            flat = train_x.reshape(-1, train_x.shape[-1]).to(torch.float64)
            mean = flat.mean(dim=0)
            std = flat.std(dim=0, correction=0)
            constant = flat.amax(dim=0) == flat.amin(dim=0)
            std = torch.where(constant, torch.ones_like(std), std)
            self.channel_mean = mean.to(torch.float32)
            self.channel_std = std.to(torch.float32)
        self.split_subjects["train"] = subjects[~is_val]
        self.train_dataset = TensorDataset(self._normalise(train_x), y[~is_val])
        if self.val_subjects > 0:
            self.split_subjects["val"] = subjects[is_val]
            self.val_dataset = TensorDataset(self._normalise(x[is_val]), y[is_val])

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Standardises ``x`` ``[N, 128, C]`` with the training statistics (identity when ``normalize`` is off)."""
        if not self.normalize:
            return x.contiguous()
        return ((x - self.channel_mean) / self.channel_std).contiguous()

    def _load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reads and validates one official split.

        Args:
            split: ``"train"`` or ``"test"``.

        Returns:
            ``(inputs float32 [N, 128, len(channels)], targets int64 [N] in [0, 6), subjects int64 [N])``.

        Raises:
            FileNotFoundError: If a file is missing (after downloading, when ``download`` is set).
            ValueError: If the files are malformed or disagree on the number of windows.
        """
        if self.download and self._missing_files((split,)):
            self.prepare_data()
        self._check_files((split,))
        signals = [_read_table(self.signal_file(split, c), UCI_HAR_SEQ_LEN, np.float32) for c in self.channels]
        first = self.signal_file(split, self.channels[0])
        n = signals[0].shape[0]
        for channel, values in zip(self.channels[1:], signals[1:]):
            if values.shape[0] != n:
                raise ValueError(
                    f"the signal files of split {split!r} disagree on the number of windows: {first} has {n} lines "
                    f"but {self.signal_file(split, channel)} has {values.shape[0]}; {_REEXTRACT}"
                )
        labels = _read_ids(self.label_file(split), "labels", n, first, 1, len(CLASS_NAMES))
        subjects = _read_ids(self.subject_file(split), "subject ids", n, first, 1, UCI_HAR_NUM_SUBJECTS)
        x = torch.from_numpy(np.stack(signals, axis=-1))
        return x, torch.from_numpy(labels - 1), torch.from_numpy(subjects)


# ---------------------------------------------------------------------- helpers
def _check_channels(channels: object) -> list[str]:
    """Validates ``channels`` and returns it as a list (all of :data:`CHANNELS` for ``None``).

    Raises:
        ValueError: If ``channels`` is not a non-empty list of distinct names from :data:`CHANNELS`.
    """
    if channels is None:
        return list(CHANNELS)
    if isinstance(channels, str) or not isinstance(channels, (list, tuple)) or len(channels) == 0:
        raise ValueError(
            f"channels must be None or a non-empty list of distinct names from {list(CHANNELS)!r}, got {channels!r}"
        )
    for i, name in enumerate(channels):
        check_choice(f"channels[{i}]", name, CHANNELS)
    duplicates = sorted({c for c in channels if list(channels).count(c) > 1})
    if duplicates:
        raise ValueError(
            f"channels must not repeat a channel, got {list(channels)!r} with duplicates {duplicates!r}; "
            f"allowed names: {list(CHANNELS)!r}"
        )
    return list(channels)


def _read_text(path: Path) -> str:
    """The text of ``path`` as UTF-8 (the release is ASCII).

    Raises:
        ValueError: If it is not UTF-8, naming the file, the line and the fix.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise utf8_error(path, path.read_bytes(), _REEXTRACT) from None


def _line_number(path: Path, row: int) -> int:
    """1-based line of ``path`` holding data row ``row`` (0-based; blank lines skipped, as numpy does)."""
    seen = -1
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return number
    return row + 1


def _first_ragged_line(path: Path, width: int) -> tuple[int, int] | None:
    """``(line number, values on it)`` of the first non-blank line without ``width`` values, or ``None``.

    Only run to explain a parse error, so the per-line loop never runs on good data.
    """
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            count = len(line.split())
            if count and count != width:
                return number, count
    return None


def _read_table(path: Path, width: int, dtype: type) -> np.ndarray:
    """Parses a whitespace-separated text table with ``width`` columns and finite values.

    Args:
        path: The text file.
        width: Values expected on every line.
        dtype: NumPy dtype of the result.

    Returns:
        Array ``[lines, width]``.

    Raises:
        ValueError: Naming the file (and line) if it is not UTF-8 text, empty, ragged, has another
            width, holds an unparsable token or a non-finite value.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy's "Empty input file"
            values = np.loadtxt(path, dtype=dtype, ndmin=2, encoding="utf-8")
    except UnicodeDecodeError:
        raise utf8_error(path, path.read_bytes(), _REEXTRACT) from None
    except ValueError as err:
        ragged = _first_ragged_line(path, width)
        if ragged is not None:
            line, count = ragged
            raise ValueError(f"file {path} line {line} has {count} values, expected {width}; {_REEXTRACT}") from err
        raise ValueError(f"could not parse file {path}: {err}; {_REEXTRACT}") from err
    if values.size == 0:
        raise ValueError(f"file {path} is empty, expected one line of {width} values per window; {_REEXTRACT}")
    if values.shape[1] != width:
        raise ValueError(
            f"file {path} line {_line_number(path, 0)} has {values.shape[1]} values, expected {width}; {_REEXTRACT}"
        )
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"file {path} line {_line_number(path, int(row))} value {int(col) + 1} is {values[row, col]}, "
                f"expected finite numbers; {_REEXTRACT}"
            )
    return values


def _read_ids(path: Path, what: str, expected: int, reference: Path, low: int, high: int) -> np.ndarray:
    """Reads a one-integer-per-line file (labels or subject ids) aligned with the signal files.

    Args:
        path: The text file.
        what: What it holds, for error messages (``"labels"``, ``"subject ids"``).
        expected: Windows in the split's signal files (the required number of lines).
        reference: A signal file of the split, named in the count-mismatch error.
        low: Smallest allowed id.
        high: Largest allowed id.

    Returns:
        ``int64`` ``[expected]``.

    Raises:
        ValueError: If the file is malformed, has another number of lines than the signal files,
            or holds an id outside ``[low, high]``.
    """
    values = _read_table(path, 1, np.int64)[:, 0]
    if values.shape[0] != expected:
        raise ValueError(
            f"{what} file {path} has {values.shape[0]} lines but the signal files (e.g. {reference}) have "
            f"{expected} windows; line k of every file must describe window k, so they cannot be aligned; {_REEXTRACT}"
        )
    bad = (values < low) | (values > high)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} file {path} line {_line_number(path, row)} has {values[row]}, expected an integer in "
            f"{low}..{high}; {_REEXTRACT}"
        )
    return values

