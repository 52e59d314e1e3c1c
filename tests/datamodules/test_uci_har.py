"""Tests of ``UCIHAR`` on a miniature UCI HAR written in the official release's layout and text format."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.datamodules import UCIHAR
from snnlstm.datamodules.uci_har import CHANNELS, CLASS_NAMES

TRAIN_SUBJECTS = (1, 3, 5, 6, 7, 8)
TEST_SUBJECTS = (2, 4)
PER_CLASS = 2  # windows per (subject, class)
N_TRAIN = len(TRAIN_SUBJECTS) * 6 * PER_CLASS  # 72
N_TEST = len(TEST_SUBJECTS) * 6 * PER_CLASS  # 24
OFFSETS = np.linspace(-1.0, 1.0, 9)  # per-channel offset
LABEL_STEP, SUBJECT_STEP = 0.5, 0.03  # a window's time-mean is OFFSET + LABEL_STEP * label + SUBJECT_STEP * subject


def _savetxt(path: Path, values: np.ndarray, fmt: str = "%15.7e") -> None:
    """Writes like the release: leading spaces, scientific notation with 3-digit exponents (``e-004``)."""
    np.savetxt(path, values, fmt=fmt)
    if "e" in fmt:
        path.write_text(re.sub(r"e([+-])(\d\d)\b", r"e\g<1>0\g<2>", path.read_text()))


def write_har(root: Path, per_class: int = PER_CLASS, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Writes a miniature release under ``root/UCI HAR Dataset`` and returns its arrays in file order.

    Window ``w`` of label ``l`` (1..6) and subject ``s``, channel ``c``, step ``t``:
    ``OFFSETS[c] + 0.5 l + 0.03 s + 0.3 sin(2 pi l t / 128 + phase) + 0.05 noise``; the sine has a
    whole number of cycles, so the time-mean of a window encodes its label and subject.

    Returns:
        ``{split: {"x": float64 [N, 128, 9], "y": int64 [N] in 0..5, "subjects": int64 [N]}}``.
    """
    rng = np.random.default_rng(seed)
    base = root / "UCI HAR Dataset"
    base.mkdir(parents=True)
    (base / "activity_labels.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(CLASS_NAMES, 1)))
    t = np.arange(128)
    data = {}
    for split, subjects in (("train", TRAIN_SUBJECTS), ("test", TEST_SUBJECTS)):
        subj = np.repeat(np.asarray(subjects), 6 * per_class)
        labels = np.tile(np.repeat(np.arange(1, 7), per_class), len(subjects))
        order = rng.permutation(subj.size)  # interleave subjects and classes like a real file
        subj, labels = subj[order], labels[order]
        n = subj.size
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 9))
        lab = labels[:, None, None]
        x = (
            OFFSETS
            + LABEL_STEP * lab
            + SUBJECT_STEP * subj[:, None, None]
            + 0.3 * np.sin(2 * np.pi * lab * t[None, :, None] / 128 + phase)
            + 0.05 * rng.standard_normal((n, 128, 9))
        )
        signals = base / split / "Inertial Signals"
        signals.mkdir(parents=True)
        for c, name in enumerate(CHANNELS):
            _savetxt(signals / f"{name}_{split}.txt", x[:, :, c])
        _savetxt(base / split / f"y_{split}.txt", labels, fmt="%d")
        _savetxt(base / split / f"subject_{split}.txt", subj, fmt="%d")
        data[split] = {"x": x, "y": labels - 1, "subjects": subj}
    return data


@pytest.fixture
def har(tmp_path: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """``(data_dir, arrays)`` of a miniature release: 6 train subjects (72 windows), 2 test subjects (24)."""
    return tmp_path, write_har(tmp_path)


def _make(data_dir: Path | str, **kwargs) -> UCIHAR:
    kwargs.setdefault("val_subjects", 2)
    kwargs.setdefault("batch_size", 8)
    return UCIHAR(data_dir=str(data_dir), **kwargs)


def _signal(root: Path, split: str, channel: str) -> Path:
    return root / "UCI HAR Dataset" / split / "Inertial Signals" / f"{channel}_{split}.txt"


def _expected(arrays: dict[str, np.ndarray], channels: tuple[str, ...] = CHANNELS) -> torch.Tensor:
    """The fixture's windows restricted to ``channels`` (in that order), ``float32`` ``[N, 128, C]``."""
    idx = [CHANNELS.index(c) for c in channels]
    return torch.from_numpy(arrays["x"][:, :, idx]).float()


# ---------------------------------------------------------------------- shapes and values
CHANNEL_CASES = [None, ["total_acc_z", "body_acc_x"], ["body_gyro_y"]]
CHANNEL_IDS = ["all", "two-reordered", "one"]


@pytest.mark.parametrize("channels", CHANNEL_CASES, ids=CHANNEL_IDS)
def test_properties_before_setup(channels: list[str] | None) -> None:
    dm = UCIHAR(data_dir="/nonexistent", channels=channels)
    size = 9 if channels is None else len(channels)
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (128, size, 6)
    assert dm.channels == (list(CHANNELS) if channels is None else channels)
    assert dm.class_names == list(CLASS_NAMES) and dm.val_subject_ids is None
    assert dm.hparams.channels == channels and dm.hparams.val_subjects == 4 and dm.hparams.batch_size == 64


@pytest.mark.parametrize("channels", CHANNEL_CASES, ids=CHANNEL_IDS)
def test_batch_shapes(har, channels: list[str] | None) -> None:
    dm = _make(har[0], channels=channels)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (48, 24, N_TEST)
    loaders = {
        "train": dm.train_dataloader(),
        "val": dm.val_dataloader(),
        "test": dm.test_dataloader(),
        "predict": dm.predict_dataloader(),
    }
    for name, loader in loaders.items():
        x, y = next(iter(loader))
        assert x.shape == (8, 128, dm.input_size) and x.dtype == torch.float32, name
        assert y.shape == (8,) and y.dtype == torch.int64 and ((y >= 0) & (y < 6)).all(), name


@pytest.mark.parametrize("channels", CHANNEL_CASES, ids=CHANNEL_IDS)
def test_values_are_the_file_columns(har, channels: list[str] | None) -> None:
    root, data = har
    dm = _make(root, channels=channels, normalize=False, val_subjects=0)
    dm.setup()
    chosen = CHANNELS if channels is None else tuple(channels)
    for split in ("train", "test"):
        ds = dm.train_dataset if split == "train" else dm.test_dataset
        x, y = ds.tensors
        torch.testing.assert_close(x, _expected(data[split], chosen))
        assert torch.equal(y, torch.from_numpy(data[split]["y"]))
        assert torch.equal(dm.split_subjects[split], torch.from_numpy(data[split]["subjects"]))
    # One channel checked directly against the numbers in its text file.
    column = np.array(_signal(root, "test", chosen[0]).read_text().split(), dtype=np.float32).reshape(N_TEST, 128)
    assert torch.equal(dm.test_dataset.tensors[0][:, :, 0], torch.from_numpy(column))


def test_labels_survive_in_the_signal(har) -> None:
    """The label encoded in each window's time-mean matches the target of that window, in every split."""
    dm = _make(har[0], normalize=False, val_subjects=2)
    dm.setup()
    for split, ds in (("train", dm.train_dataset), ("val", dm.val_dataset), ("test", dm.test_dataset)):
        x, y = ds.tensors
        subjects = dm.split_subjects[split].double()
        decoded = (x.double().mean(dim=1) - torch.from_numpy(OFFSETS) - SUBJECT_STEP * subjects[:, None]) / LABEL_STEP
        assert torch.equal(decoded.round().long(), (y + 1)[:, None].expand(-1, 9)), split


def test_class_names_from_file_or_default(har) -> None:
    root = har[0]
    labels = root / "UCI HAR Dataset" / "activity_labels.txt"
    labels.write_text("1 walk\n2 up\n3 down\n4 sit\n5 stand\n6 lie\n")
    assert _make(root).class_names == ["walk", "up", "down", "sit", "stand", "lie"]
    labels.unlink()
    assert _make(root).class_names == list(CLASS_NAMES)
    labels.write_text("1 WALKING\n2 WALKING_UPSTAIRS\n")
    with pytest.raises(ValueError, match=r"activity_labels\.txt must name the activity ids 1\.\.6"):
        _make(root).class_names
    labels.write_bytes("1 WALKING\n2 WALKING_UPSTAIRS\n3 GEHEN_TREPPAB_Ü\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"activity_labels\.txt is not UTF-8 text: line 3.*re-extract") as info:
        _make(root).class_names
    assert info.value.__cause__ is None


def test_windows_crlf_and_two_digit_exponents(har) -> None:
    """Windows line endings and ``e-04`` exponents (what a re-export might produce) parse the same."""
    root, data = har
    path = _signal(root, "test", "body_gyro_z")
    np.savetxt(path, data["test"]["x"][:, :, 5], fmt="%15.7e", newline="\r\n")
    dm = _make(root, normalize=False)
    dm.setup("test")
    torch.testing.assert_close(dm.test_dataset.tensors[0], _expected(data["test"]))


# ---------------------------------------------------------------------- splits
def test_subject_split_disjoint_and_complete(har) -> None:
    dm = _make(har[0], val_subjects=2, seed=3)
    dm.setup("fit")
    val, train = dm.val_subject_ids, dm.train_subject_ids
    assert len(val) == 2 and val == sorted(val)
    assert not set(val) & set(train) and sorted(val + train) == list(TRAIN_SUBJECTS)
    assert set(dm.split_subjects["val"].tolist()) == set(val)
    assert set(dm.split_subjects["train"].tolist()) == set(train)
    assert len(dm.train_dataset) + len(dm.val_dataset) == N_TRAIN
    assert len(dm.val_dataset) == 2 * 6 * PER_CLASS


def test_subject_split_keeps_windows_with_their_labels(har) -> None:
    root, data = har
    dm = _make(root, normalize=False, val_subjects=3, seed=1)
    dm.setup("fit")
    is_val = np.isin(data["train"]["subjects"], dm.val_subject_ids)
    for mask, ds in ((is_val, dm.val_dataset), (~is_val, dm.train_dataset)):
        part = {k: v[mask] for k, v in data["train"].items()}
        torch.testing.assert_close(ds.tensors[0], _expected(part))
        assert torch.equal(ds.tensors[1], torch.from_numpy(part["y"]))


def test_split_reproducible_and_seed_dependent(har) -> None:
    def split(seed: int) -> list[int]:
        dm = _make(har[0], val_subjects=2, seed=seed, normalize=False)
        dm.setup("fit")
        return dm.val_subject_ids

    first = split(7)
    assert split(7) == first
    # 15 possible pairs of 6 subjects: ten seeds cannot all draw the same pair unless the seed is ignored.
    assert len({tuple(split(s)) for s in range(10)}) > 1


def test_no_validation_split(har) -> None:
    dm = _make(har[0], val_subjects=0)
    dm.setup("fit")
    assert len(dm.train_dataset) == N_TRAIN and dm.val_dataset is None
    assert dm.val_dataloader() == [] and dm.val_subject_ids == []
    assert dm.train_subject_ids == list(TRAIN_SUBJECTS)


def test_val_subjects_too_large_for_data(har) -> None:
    dm = _make(har[0], val_subjects=6)
    pattern = r"val_subjects must be in \[0, 5\] for the 6 training subjects in .*subject_train\.txt, got 6"
    with pytest.raises(ValueError, match=pattern):
        dm.setup("fit")


def test_setup_idempotent_and_test_alone(har) -> None:
    dm = _make(har[0])
    dm.setup("fit")
    train, mean = dm.train_dataset, dm.channel_mean
    dm.setup("fit")
    dm.setup("test")
    assert dm.train_dataset is train and dm.channel_mean is mean
    # A fresh module asked for the test split alone normalises it with the same training statistics.
    alone = _make(har[0])
    alone.setup("test")
    torch.testing.assert_close(alone.channel_mean, mean)
    torch.testing.assert_close(alone.test_dataset.tensors[0], dm.test_dataset.tensors[0])


# ---------------------------------------------------------------------- normalisation
def test_normalisation_uses_training_split_only(har) -> None:
    dm, raw = _make(har[0], normalize=True, seed=2), _make(har[0], normalize=False, seed=2)
    dm.setup()
    raw.setup()
    assert dm.val_subject_ids == raw.val_subject_ids
    x = dm.train_dataset.tensors[0].reshape(-1, 9).double()
    torch.testing.assert_close(x.mean(0), torch.zeros(9, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, correction=0), torch.ones(9, dtype=torch.float64), atol=1e-5, rtol=0)
    raw_train = raw.train_dataset.tensors[0].reshape(-1, 9).double()
    assert dm.channel_mean.shape == dm.channel_std.shape == (9,) and dm.channel_mean.dtype == torch.float32
    torch.testing.assert_close(dm.channel_mean, raw_train.mean(0).float())
    torch.testing.assert_close(dm.channel_std, raw_train.std(0, correction=0).float())
    # The validation subjects differ (subject offsets), so statistics including them would differ.
    raw_all = torch.cat([raw_train, raw.val_dataset.tensors[0].reshape(-1, 9).double()])
    assert (raw_all.mean(0).float() - dm.channel_mean).abs().min() > 1e-3
    for split in ("val", "test"):
        ds, raw_ds = getattr(dm, f"{split}_dataset"), getattr(raw, f"{split}_dataset")
        torch.testing.assert_close(ds.tensors[0], (raw_ds.tensors[0] - dm.channel_mean) / dm.channel_std)
        assert torch.equal(ds.tensors[1], raw_ds.tensors[1])


def test_constant_channel_is_centred_not_divided_by_zero(har) -> None:
    root, data = har
    constant = np.full((N_TRAIN, 128), 0.25)
    _savetxt(_signal(root, "train", "body_acc_y"), constant)
    dm = _make(root, channels=["body_acc_y", "body_acc_x"])
    dm.setup()
    assert dm.channel_std[0] == 1.0 and dm.channel_mean[0] == 0.25
    assert (dm.train_dataset.tensors[0][:, :, 0] == 0).all()
    assert torch.isfinite(dm.test_dataset.tensors[0]).all()


# ---------------------------------------------------------------------- files and layout
def test_both_data_dir_forms(har) -> None:
    root = har[0]
    parent, folder = _make(root, seed=4), _make(root / "UCI HAR Dataset", seed=4)
    assert parent.dataset_dir == folder.dataset_dir == root / "UCI HAR Dataset"
    renamed = root / "har-copy"
    shutil.copytree(root / "UCI HAR Dataset", renamed)
    other = _make(renamed, seed=4)
    assert other.dataset_dir == renamed
    for dm in (parent, folder, other):
        dm.setup()
    for dm in (folder, other):
        assert dm.val_subject_ids == parent.val_subject_ids
        for split in ("train", "val", "test"):
            a, b = getattr(parent, f"{split}_dataset").tensors, getattr(dm, f"{split}_dataset").tensors
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("case", ["empty-dir", "one-missing", "no-labels"])
def test_missing_files_error(tmp_path: Path, case: str) -> None:
    if case != "empty-dir":
        write_har(tmp_path)
    if case == "one-missing":
        _signal(tmp_path, "train", "body_gyro_x").unlink()
    if case == "no-labels":
        (tmp_path / "UCI HAR Dataset" / "train" / "y_train.txt").unlink()
    dm = _make(tmp_path)
    dm.prepare_data()  # download is off: nothing happens
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    expected_missing = {
        "empty-dir": _signal(tmp_path, "train", "body_acc_x"),
        "one-missing": _signal(tmp_path, "train", "body_gyro_x"),
        "no-labels": tmp_path / "UCI HAR Dataset" / "train" / "y_train.txt",
    }[case]
    assert str(expected_missing) in message
    assert "Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_train.txt" in message  # the layout
    assert "train/subject_train.txt" in message and "activity_labels.txt" in message
    assert "download: true" in message and "https://archive.ics.uci.edu/static/public/240/" in message
    if case == "one-missing":
        assert str(_signal(tmp_path, "train", "body_acc_x")) not in message  # only what is missing


def test_prepare_data_does_not_download_when_files_exist(har, monkeypatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def fail(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fail)
    _make(har[0], download=True).prepare_data()


def _rewrite_line(path: Path, line: int, text: str | None) -> None:
    """Replaces 1-based ``line`` of ``path`` with ``text`` (or deletes it for ``None``)."""
    lines = path.read_text().splitlines(keepends=True)
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text + "\n"
    path.write_text("".join(lines))


def _ragged(root: Path) -> None:
    path = _signal(root, "train", "body_gyro_y")
    values = path.read_text().splitlines()[2].split()
    _rewrite_line(path, 3, "  " + "  ".join(values[:127]))


def _narrow(root: Path) -> None:
    _savetxt(_signal(root, "test", "total_acc_x"), np.zeros((N_TEST, 64)))


def _short_channel(root: Path) -> None:
    _rewrite_line(_signal(root, "train", "total_acc_z"), N_TRAIN, None)


def _short_labels(root: Path) -> None:
    _rewrite_line(root / "UCI HAR Dataset" / "train" / "y_train.txt", 10, None)


def _long_subjects(root: Path) -> None:
    path = root / "UCI HAR Dataset" / "test" / "subject_test.txt"
    path.write_text(path.read_text() + "2\n")


def _label(value: str):
    return lambda root: _rewrite_line(root / "UCI HAR Dataset" / "train" / "y_train.txt", 5, value)


def _bad_value(value: str):
    def corrupt(root: Path) -> None:
        path = _signal(root, "test", "body_acc_x")
        values = path.read_text().splitlines()[3].split()
        values[9] = value
        _rewrite_line(path, 4, "  " + "  ".join(values))

    return corrupt


def _subject_zero(root: Path) -> None:
    _rewrite_line(root / "UCI HAR Dataset" / "train" / "subject_train.txt", 2, "0")


def _empty(root: Path) -> None:
    _signal(root, "train", "body_acc_z").write_text("")


def _cut_mid_line(root: Path) -> None:
    path = _signal(root, "train", "body_gyro_z")
    blob = path.read_bytes()
    path.write_bytes(blob[: blob.index(b"\n") * 5 // 2])  # half of line 3 is left


def _latin1_byte(root: Path) -> None:
    path = _signal(root, "test", "body_acc_x")
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"e", b"\xe9", 1)
    path.write_bytes(b"\n".join(lines))


def _binary_labels(root: Path) -> None:
    (root / "UCI HAR Dataset" / "train" / "y_train.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")


BAD_FILES = [
    (_ragged, r"body_gyro_y_train\.txt line 3 has 127 values, expected 128"),
    (_narrow, r"total_acc_x_test\.txt line 1 has 64 values, expected 128"),
    (_short_channel, r"disagree on the number of windows: .*body_acc_x_train\.txt has 72 lines but "
     r".*total_acc_z_train\.txt has 71"),
    (_short_labels, r"labels file .*y_train\.txt has 71 lines but the signal files .* have 72 windows"),
    (_long_subjects, r"subject ids file .*subject_test\.txt has 25 lines but the signal files .* have 24 windows"),
    (_label("7"), r"labels file .*y_train\.txt line 5 has 7, expected an integer in 1\.\.6"),
    (_label("0"), r"labels file .*y_train\.txt line 5 has 0, expected an integer in 1\.\.6"),
    (_label("2.5"), r"could not parse file .*y_train\.txt"),
    (_subject_zero, r"subject ids file .*subject_train\.txt line 2 has 0, expected an integer in 1\.\.30"),
    (_bad_value("NaN"), r"body_acc_x_test\.txt line 4 value 10 is nan, expected finite numbers"),
    (_bad_value("-Inf"), r"body_acc_x_test\.txt line 4 value 10 is -inf, expected finite numbers"),
    (_bad_value("1.0e-0x3"), r"could not parse file .*body_acc_x_test\.txt"),
    (_empty, r"body_acc_z_train\.txt is empty"),
    (_cut_mid_line, r"body_gyro_z_train\.txt line 3 has \d+ values, expected 128"),
    (_latin1_byte, r"body_acc_x_test\.txt is not UTF-8 text: line 4"),
    (_binary_labels, r"y_train\.txt is not UTF-8 text: line 1"),
]
BAD_IDS = [
    "ragged-row",
    "64-columns",
    "channel-rows-differ",
    "labels-short",
    "subjects-long",
    "label-7",
    "label-0",
    "label-float",
    "subject-0",
    "nan",
    "inf",
    "garbage-token",
    "empty-file",
    "cut-mid-line",
    "latin1-byte",
    "binary-labels",
]


@pytest.mark.parametrize(("corrupt", "pattern"), BAD_FILES, ids=BAD_IDS)
def test_bad_files_raise_naming_the_file(har, corrupt, pattern: str) -> None:
    corrupt(har[0])
    dm = _make(har[0])
    with pytest.raises(ValueError, match=pattern) as info:
        dm.setup()
    assert "re-extract 'UCI HAR Dataset'" in str(info.value)  # the fix


# ---------------------------------------------------------------------- arguments
ALLOWED = r"\['body_acc_x', 'body_acc_y', 'body_acc_z', 'body_gyro_x', 'body_gyro_y', 'body_gyro_z', " \
    r"'total_acc_x', 'total_acc_y', 'total_acc_z'\]"


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"channels": ["body_acc_x", "gyro_x"]}, rf"channels\[1\] must be one of {ALLOWED}, got 'gyro_x'"),
        ({"channels": []}, rf"channels must be None or a non-empty list of distinct names from {ALLOWED}, got \[\]"),
        ({"channels": "body_acc_x"}, rf"channels must be None or a non-empty list .* from {ALLOWED}, got 'body_acc_x'"),
        (
            {"channels": ["body_acc_x", "total_acc_y", "body_acc_x"]},
            rf"channels must not repeat a channel, .* duplicates \['body_acc_x'\]; allowed names: {ALLOWED}",
        ),
        ({"val_subjects": -1}, r"val_subjects must be an integer in \[0, 20\], got -1"),
        ({"val_subjects": 21}, r"val_subjects must be an integer in \[0, 20\], got 21"),
        ({"val_subjects": 2.0}, r"val_subjects must be an integer in \[0, 20\], got 2.0"),
        ({"batch_size": 0}, r"batch_size must be an integer in \[1, inf\], got 0"),
        ({"num_workers": -1}, r"num_workers must be an integer in \[0, inf\], got -1"),
        ({"seed": -1}, r"seed must be an integer in \[0, inf\], got -1"),
    ],
    ids=[
        "unknown-channel",
        "no-channels",
        "channels-str",
        "duplicate-channel",
        "val_subjects-neg",
        "val_subjects-big",
        "val_subjects-float",
        "batch_size",
        "num_workers",
        "seed",
    ],
)
def test_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        UCIHAR(**kwargs)


def test_dataloader_before_setup_raises(har) -> None:
    with pytest.raises(RuntimeError, match="setup"):
        _make(har[0]).train_dataloader()


# ---------------------------------------------------------------------- learning
@pytest.mark.slow
def test_classifier_learns_miniature_har(tmp_path: Path) -> None:
    import lightning as L

    from snnlstm.models import SequenceClassifier
    from tests.conftest import make_trainer

    write_har(tmp_path, per_class=4)
    L.seed_everything(0, verbose=False)
    dm = UCIHAR(data_dir=str(tmp_path), val_subjects=2, batch_size=16)
    model = SequenceClassifier(input_size=dm.input_size, num_classes=dm.num_classes, seq_len=dm.seq_len, lr=1e-2, layer=LSTMSettings(hidden_size=16, mode="ann"))
    trainer = make_trainer(tmp_path, max_epochs=12)
    trainer.fit(model, dm)
    val_acc = float(trainer.callback_metrics["val/acc"])
    test_acc = float(trainer.test(model, dm, verbose=False)[0]["test/acc"])
    assert val_acc > 0.5 and test_acc > 0.5, (val_acc, test_acc)  # chance is 1/6
