"""Tests of ``SequentialMNIST`` on a miniature MNIST written in torchvision's IDX format."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from snnlstm.datamodules import SequentialMNIST

N_TRAIN, N_TEST = 40, 20
RAW_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx_images(images: torch.Tensor) -> bytes:
    """IDX3 bytes: magic 2051, count, rows, cols (big-endian int32), then uint8 pixels."""
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.numpy().tobytes()


def _idx_labels(labels: torch.Tensor) -> bytes:
    """IDX1 bytes: magic 2049, count (big-endian int32), then uint8 labels."""
    return struct.pack(">II", 2049, labels.numel()) + labels.to(torch.uint8).numpy().tobytes()


def _write_mnist(root: Path, gz: bool = False) -> dict[str, torch.Tensor]:
    """Writes a miniature MNIST under ``root/MNIST/raw`` and returns its tensors."""
    gen = torch.Generator().manual_seed(1234)
    data = {
        "train_x": torch.randint(0, 256, (N_TRAIN, 28, 28), dtype=torch.uint8, generator=gen),
        "train_y": torch.arange(N_TRAIN) % 10,
        "test_x": torch.randint(0, 256, (N_TEST, 28, 28), dtype=torch.uint8, generator=gen),
        "test_y": (torch.arange(N_TEST) * 3) % 10,
    }
    blobs = {
        RAW_NAMES[0]: _idx_images(data["train_x"]),
        RAW_NAMES[1]: _idx_labels(data["train_y"]),
        RAW_NAMES[2]: _idx_images(data["test_x"]),
        RAW_NAMES[3]: _idx_labels(data["test_y"]),
    }
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (raw / name).write_bytes(blob)
    return data


@pytest.fixture
def mini(tmp_path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """``(data_dir, tensors)`` of a miniature MNIST (40 train, 20 test images)."""
    return str(tmp_path), _write_mnist(tmp_path)


def _make(data_dir: str, **kwargs) -> SequentialMNIST:
    kwargs.setdefault("val_size", 10)
    kwargs.setdefault("batch_size", 8)
    return SequentialMNIST(data_dir=data_dir, **kwargs)


SHAPES = [
    ("row", 28, 28, 28),
    ("row", 32, 32, 32),
    ("pixel", 28, 784, 1),
    ("pixel", 32, 1024, 1),
    ("permuted", 28, 784, 1),
    ("permuted", 32, 1024, 1),
]
SHAPE_IDS = [f"{v}-{s}" for v, s, _, _ in SHAPES]


@pytest.mark.parametrize(("variant", "size", "seq_len", "input_size"), SHAPES, ids=SHAPE_IDS)
def test_properties_before_setup(variant: str, size: int, seq_len: int, input_size: int) -> None:
    dm = SequentialMNIST(data_dir="/nonexistent", variant=variant, image_size=size)
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (seq_len, input_size, 10)


@pytest.mark.parametrize(("variant", "size", "seq_len", "input_size"), SHAPES, ids=SHAPE_IDS)
def test_batch_shapes(mini, variant: str, size: int, seq_len: int, input_size: int) -> None:
    dm = _make(mini[0], variant=variant, image_size=size)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (30, 10, 20)
    loaders = {
        "train": dm.train_dataloader(),
        "val": dm.val_dataloader(),
        "test": dm.test_dataloader(),
        "predict": dm.predict_dataloader(),
    }
    for name, loader in loaders.items():
        x, y = next(iter(loader))
        assert x.shape == (8, seq_len, input_size), name
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and y.shape == (8,), name
        assert ((y >= 0) & (y < 10)).all()


def test_predict_is_test_set(mini) -> None:
    dm = _make(mini[0])
    dm.setup("predict")
    test_x = torch.cat([b[0] for b in dm.test_dataloader()])
    pred_x = torch.cat([b[0] for b in dm.predict_dataloader()])
    assert torch.equal(test_x, pred_x) and len(test_x) == N_TEST
    assert torch.equal(torch.cat([b[1] for b in dm.predict_dataloader()]), mini[1]["test_y"])


@pytest.mark.parametrize("normalize", [False, True], ids=["raw01", "normalized"])
def test_values_and_normalisation(mini, normalize: bool) -> None:
    dm = _make(mini[0], normalize=normalize, mean=0.5, std=0.25)
    dm.setup("test")
    x = dm.test_dataset.tensors[0]
    expected = mini[1]["test_x"].float() / 255
    if normalize:
        expected = (expected - 0.5) / 0.25
    else:
        assert x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x, expected)


def test_padding_to_32(mini) -> None:
    dm = _make(mini[0], image_size=32, normalize=False)
    dm.setup("test")
    x = dm.test_dataset.tensors[0]
    assert x.shape == (N_TEST, 32, 32)
    torch.testing.assert_close(x[:, 2:30, 2:30], mini[1]["test_x"].float() / 255)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, border] == 0).all()


def test_pixel_is_flattened_rows(mini) -> None:
    rows, pixels = _make(mini[0], variant="row"), _make(mini[0], variant="pixel")
    rows.setup("test")
    pixels.setup("test")
    torch.testing.assert_close(pixels.test_dataset.tensors[0], rows.test_dataset.tensors[0].reshape(N_TEST, 784, 1))


@pytest.mark.parametrize("size", [28, 32], ids=["28", "32"])
def test_permutation_fixed_and_true(mini, size: int) -> None:
    a = _make(mini[0], variant="permuted", image_size=size, permutation_seed=3)
    b = _make(mini[0], variant="permuted", image_size=size, permutation_seed=3)
    c = _make(mini[0], variant="permuted", image_size=size, permutation_seed=4)
    perm = a.permutation
    assert perm is not None and perm.dtype == torch.int64
    assert torch.equal(perm.sort().values, torch.arange(size * size))
    assert not torch.equal(perm, torch.arange(size * size))
    assert torch.equal(perm, b.permutation) and not torch.equal(perm, c.permutation)
    assert _make(mini[0], variant="pixel").permutation is None

    pixels = _make(mini[0], variant="pixel", image_size=size)
    for dm in (a, pixels):
        dm.setup()
    # Same permutation applied to every split.
    torch.testing.assert_close(a.test_dataset.tensors[0], pixels.test_dataset.tensors[0][:, perm])
    torch.testing.assert_close(a.train_dataset.tensors[0], pixels.train_dataset.tensors[0][:, perm])


def test_split_reproducible_and_disjoint(mini) -> None:
    first, second, other = (_make(mini[0], seed=s) for s in (7, 7, 8))
    for dm in (first, second, other):
        dm.setup("fit")
    assert torch.equal(first.train_indices, second.train_indices)
    assert torch.equal(first.val_indices, second.val_indices)
    assert not torch.equal(first.val_indices, other.val_indices)
    train, val = set(first.train_indices.tolist()), set(first.val_indices.tolist())
    assert not train & val and train | val == set(range(N_TRAIN))
    # The datasets hold exactly the indexed images and labels.
    expected = mini[1]["train_x"][first.val_indices].float().div(255).sub(0.1307).div(0.3081)
    torch.testing.assert_close(first.val_dataset.tensors[0], expected)
    assert torch.equal(first.val_dataset.tensors[1], mini[1]["train_y"][first.val_indices])


def test_no_validation_split(mini) -> None:
    dm = _make(mini[0], val_size=0)
    dm.setup("fit")
    assert len(dm.train_dataset) == N_TRAIN
    assert dm.val_dataloader() == []


def test_val_size_too_large_for_data(mini) -> None:
    dm = _make(mini[0], val_size=N_TRAIN)
    with pytest.raises(ValueError, match=r"val_size must be in \[0, 39\].*got 40"):
        dm.setup("fit")


def test_gzipped_files_accepted(tmp_path: Path) -> None:
    data = _write_mnist(tmp_path, gz=True)
    dm = _make(str(tmp_path))
    dm.setup("test")
    assert torch.equal(dm.test_dataset.tensors[1], data["test_y"])


@pytest.mark.parametrize("present", [0, 3], ids=["none", "one-missing"])
def test_missing_files_error(tmp_path: Path, present: int) -> None:
    _write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    for name in RAW_NAMES[present:]:
        (raw / name).unlink()
    dm = _make(str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(raw) in message and "download: true" in message and ".gz" in message
    for name in RAW_NAMES:
        assert name in message


def test_dataloader_before_setup_raises(mini) -> None:
    with pytest.raises(RuntimeError, match="setup"):
        _make(mini[0]).train_dataloader()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"variant": "column"}, r"variant must be one of \['row', 'pixel', 'permuted'\], got 'column'"),
        ({"image_size": 30}, r"image_size must be one of \[28, 32\], got 30"),
        ({"val_size": 60_000}, r"val_size must be an integer in \[0, 59999\], got 60000"),
        ({"val_size": -1}, r"val_size must be an integer in \[0, 59999\], got -1"),
        ({"std": 0.0}, r"std must be a finite number in \(0, inf\], got 0.0"),
        ({"batch_size": 0}, r"batch_size must be an integer in \[1, inf\], got 0"),
        ({"num_workers": -1}, r"num_workers must be an integer in \[0, inf\], got -1"),
        ({"permutation_seed": -2}, r"permutation_seed must be an integer in \[0, inf\], got -2"),
    ],
    ids=["variant", "image_size", "val_size-big", "val_size-neg", "std", "batch_size", "num_workers", "perm_seed"],
)
def test_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        SequentialMNIST(**kwargs)


# ---------------------------------------------------------------------- damaged files
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _extend(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x00" * 7)


def _header_only(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:6])


def _bad_magic(path: Path) -> None:
    path.write_bytes(struct.pack(">I", 0x1F8B0800) + path.read_bytes()[4:])  # e.g. a gzip file renamed


def _swapped_magic(path: Path) -> None:
    blob = path.read_bytes()
    magic = struct.unpack(">I", blob[:4])[0]
    path.write_bytes(struct.pack(">I", 2049 if magic == 2051 else 2051) + blob[4:])


DAMAGED = [
    (RAW_NAMES[0], _truncate, r"is truncated or corrupt \(expected 31376 bytes, found 31366\)"),
    (RAW_NAMES[1], _truncate, r"is truncated or corrupt \(expected 48 bytes, found 38\)"),
    (RAW_NAMES[2], _extend, r"is truncated or corrupt \(expected 15696 bytes, found 15703\)"),
    (RAW_NAMES[3], _header_only, r"is truncated or corrupt \(expected at least 8 bytes, found 6\)"),
    (RAW_NAMES[0], _bad_magic, r"magic number 0x1f8b0800, expected 0x00000803 \(2051\)"),
    (RAW_NAMES[3], _swapped_magic, r"magic number 0x00000803, expected 0x00000801 \(2049\)"),
]


@pytest.mark.parametrize(("name", "damage", "pattern"), DAMAGED, ids=["cut-images", "cut-labels", "long", "header", "magic", "swapped"])
def test_damaged_idx_file_is_one_clear_error(mini, name: str, damage, pattern: str) -> None:
    path = Path(mini[0]) / "MNIST" / "raw" / name
    damage(path)
    with pytest.raises(ValueError, match=pattern) as info:
        _make(mini[0]).setup()
    message = str(info.value)
    assert str(path) in message and "download: true" in message and "delete it" in message
    assert info.value.__cause__ is None  # no torchvision/numpy trace underneath


def test_damaged_idx_file_is_reported_with_download_on(mini) -> None:
    path = Path(mini[0]) / "MNIST" / "raw" / RAW_NAMES[0]
    _truncate(path)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        _make(mini[0], download=True).setup("fit")  # torchvision sees the file and would not download


def test_wrong_image_size_and_count_mismatch(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    (raw / RAW_NAMES[2]).write_bytes(_idx_images(torch.zeros(N_TEST, 20, 20, dtype=torch.uint8)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte holds 20x20 images, expected 28x28"):
        _make(str(tmp_path)).setup("test")
    (raw / RAW_NAMES[2]).write_bytes(_idx_images(torch.zeros(N_TEST + 1, 28, 28, dtype=torch.uint8)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte holds 21 images but .*t10k-labels-idx1-ubyte holds 20 labels"):
        _make(str(tmp_path)).setup("test")


def test_truncated_gz_is_one_clear_error(tmp_path: Path) -> None:
    _write_mnist(tmp_path, gz=True)
    packed = tmp_path / "MNIST" / "raw" / f"{RAW_NAMES[0]}.gz"
    packed.write_bytes(packed.read_bytes()[:-50])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is truncated or not a gzip file") as info:
        _make(str(tmp_path)).setup("fit")
    assert "delete it" in str(info.value) and "download: true" in str(info.value)
    assert sorted(p.name for p in packed.parent.iterdir()) == sorted(f"{n}.gz" for n in RAW_NAMES)  # no half-written file
