"""Tests of ``SpeechCommands`` on miniature releases written in the published layout (16 kHz 16-bit WAV)."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import stat
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.datamodules import SpeechCommands
from snnlstm.datamodules.audio import LogMel, fit_length, read_wav
from snnlstm.datamodules import speech_commands
from snnlstm.datamodules.speech_commands import KEYWORDS, SILENCE, UNKNOWN, WORDS_V1, AugmentedClips, ClipAudio

SR = 16_000
OTHERS = ("bed", "cat", "dog")
CLIPS_PER_WORD = 6  # 4 train, 1 val, 1 test
UNKNOWN_PER_WORD = 12  # the other words have more clips, so unknown sampling has something to choose from


def write_wav(path: Path, samples: np.ndarray, rate: int = SR, channels: int = 1) -> None:
    """Writes int16 PCM (``samples`` in [-1, 1]) with the standard library."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def tone(freq: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A sine at ``freq`` Hz with a little noise: each word gets its own spectrum."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return 0.5 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)


def make_release(root: Path, words: tuple[str, ...] = KEYWORDS + OTHERS, noise: bool = True) -> Path:
    """A miniature release: clip ``k`` of every word goes to validation if k == 4, to test if k == 5."""
    val, test = [], []
    for w, word in enumerate(words):
        n = UNKNOWN_PER_WORD if word in OTHERS else CLIPS_PER_WORD
        for k in range(n):
            name = f"{word}/{w:04x}{k:04x}_nohash_0.wav"
            write_wav(root / name, tone(200 + 250 * w, seed=100 * w + k))
            (val if k % 6 == 4 else test if k % 6 == 5 else []).append(name)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    if noise:
        write_wav(root / "_background_noise_" / "white_noise.wav", 0.3 * np.random.default_rng(9).standard_normal(3 * SR))
        write_wav(root / "_background_noise_" / "hum.wav", tone(50, seconds=2.0))
    return root


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return make_release(tmp_path / "speech_commands_v0.02")


def _dm(data_dir: Path, **kwargs) -> SpeechCommands:
    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("cache_dir", str(data_dir.parent / "cache"))
    return SpeechCommands(data_dir=str(data_dir), **kwargs)


# ---------------------------------------------------------------------- audio helpers
def test_read_wav_values(tmp_path: Path) -> None:
    pcm = np.array([0, 16384, -16384, 32767, -32768], dtype="<i2")
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR), w.writeframes(pcm.tobytes())
    y = read_wav(tmp_path / "a.wav")
    assert y.dtype == torch.float32 and y.shape == (5,)
    assert y.tolist() == [0.0, 0.5, -0.5, 32767 / 32768, -1.0]


@pytest.mark.parametrize("n", [8000, 16000, 24000], ids=["short", "exact", "long"])
def test_fit_length_pads_or_trims_the_end(n: int) -> None:
    x = torch.arange(1, n + 1, dtype=torch.float32)
    y = fit_length(x, 16000)
    assert y.shape == (16000,)
    k = min(n, 16000)
    torch.testing.assert_close(y[:k], x[:k])
    assert (y[k:] == 0).all()


@pytest.mark.parametrize(
    ("writer", "match"),
    [
        (lambda p: p.write_bytes(b"not a wav file at all" * 10), "not a readable WAV"),
        (lambda p: write_wav(p, tone(300), rate=8000), "sample rate 8000 Hz, expected 16000"),
        (lambda p: write_wav(p, np.zeros(200), channels=2), "expected mono 16-bit"),
    ],
    ids=["corrupt", "wrong-rate", "stereo"],
)
def test_read_wav_rejects_bad_files(tmp_path: Path, writer, match: str) -> None:
    path = tmp_path / "bad.wav"
    writer(path)
    with pytest.raises(ValueError, match=match) as err:
        read_wav(path)
    assert str(path) in str(err.value)


def test_read_wav_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, tone(300))
    path.write_bytes(path.read_bytes()[:-1000])  # the header still announces 16000 samples
    with pytest.raises(ValueError, match="truncated WAV"):
        read_wav(path)


def test_logmel_shape_and_frequency_resolution() -> None:
    feats = LogMel(n_mels=20, n_frames=81)(torch.tensor(np.stack([tone(300), tone(3000)]), dtype=torch.float32))
    assert feats.shape == (2, 81, 20)
    low, high = feats.mean(1).argmax(1).tolist()
    assert low < high  # the higher tone peaks in a higher mel band


# ---------------------------------------------------------------------- DataModule
@pytest.mark.parametrize(
    ("class_set", "version", "classes"),
    [("paper11", "v0.02", 11), ("kws12", "v0.02", 12), ("all", "v0.01", 30), ("all", "v0.02", 35)],
    ids=["paper11", "kws12", "all-v1", "all-v2"],
)
def test_shape_properties_before_setup(tmp_path: Path, class_set: str, version: str, classes: int) -> None:
    dm = SpeechCommands(data_dir=str(tmp_path), class_set=class_set, version=version, n_mels=16, n_frames=41)
    assert (dm.input_size, dm.seq_len, dm.num_classes) == (16, 41, classes)
    assert len(set(dm.class_names)) == classes


def test_splits_follow_list_files(release: Path) -> None:
    dm = _dm(release, unknown_fraction=None)
    clips = dm.clips()
    listed = {s: set((release / f).read_text().split()) for s, f in (("val", "validation_list.txt"), ("test", "testing_list.txt"))}
    assert {c.path for c in clips["val"]} == listed["val"]
    assert {c.path for c in clips["test"]} == listed["test"]
    train = {c.path for c in clips["train"]}
    assert not train & (listed["val"] | listed["test"])
    assert len(train) == 4 * len(KEYWORDS) + 8 * len(OTHERS)  # every other clip trains
    for clip in clips["train"]:  # labels follow the folder
        word = clip.path.split("/")[0]
        assert dm.class_names[clip.label] == (word if word in KEYWORDS else UNKNOWN)


def test_batches_shapes_and_training_normalisation(release: Path) -> None:
    dm = _dm(release)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 81, 20) and x.dtype == torch.float32 and y.dtype == torch.int64
    train = torch.stack([dm.train_dataset[i][0] for i in range(len(dm.train_dataset))])
    torch.testing.assert_close(train.mean((0, 1)), torch.zeros(20), atol=1e-4, rtol=0)
    torch.testing.assert_close(train.std((0, 1), unbiased=False), torch.ones(20), atol=1e-3, rtol=0)
    raw = np.load(dm.cache_files["val"])  # validation uses the training statistics
    torch.testing.assert_close(dm.val_dataset[0][0], (torch.from_numpy(raw[0]) - dm.feature_mean) / dm.feature_std)


def test_unknown_and_silence_sampling(release: Path) -> None:
    dm = _dm(release, class_set="kws12", unknown_fraction=0.1, silence_fraction=0.25)
    clips = dm.clips()
    known = 4 * len(KEYWORDS)
    labels = [dm.class_names[c.label] for c in clips["train"]]
    assert labels.count(UNKNOWN) == math.ceil(0.1 * known)
    assert labels.count(SILENCE) == math.ceil(0.25 * known)
    assert clips == _dm(release, class_set="kws12", unknown_fraction=0.1, silence_fraction=0.25).clips()  # seeded
    other = _dm(release, class_set="kws12", unknown_fraction=0.1, silence_fraction=0.25, seed=1).clips()
    assert [c for c in other["train"] if not c.path] != [c for c in clips["train"] if not c.path]
    dm.setup("fit")
    feats = np.load(dm.cache_files["train"])
    silent = [i for i, c in enumerate(clips["train"]) if not c.path]
    assert np.isfinite(feats[silent]).all() and feats[silent].std() > 0  # background crops, not zeros


def test_cache_is_reused_and_invalidated(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = _dm(release)
    first = dm.build_cache("val")
    # the same settings in a new DataModule find the cache without featurising anything
    monkeypatch.setattr(LogMel, "forward", lambda self, x: pytest.fail("features recomputed"))
    assert _dm(release).build_cache("val") == first
    monkeypatch.undo()
    assert _dm(release, n_mels=16).build_cache("val") != first  # other settings
    clip = release / _dm(release).clips()["val"][0].path
    write_wav(clip, tone(300, seconds=0.9))  # a changed clip
    changed = _dm(release).build_cache("val")
    assert changed != first and np.load(changed).shape == np.load(first).shape
    assert not list(first.parent.glob("*.tmp.npy"))


def test_cache_sees_a_changed_clip_of_the_same_size(release: Path) -> None:
    """Nearly every clip is 1 s, so a changed clip usually keeps its size (and here even its mtime)."""
    dm = _dm(release)
    first = dm.build_cache("val")
    before = np.load(first)
    clip = release / dm.clips()["val"][0].path
    old = clip.stat()
    write_wav(clip, tone(3000, seed=1))
    os.utime(clip, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert clip.stat().st_size == old.st_size and clip.stat().st_mtime_ns == old.st_mtime_ns
    changed = _dm(release).build_cache("val")
    assert changed != first
    after = np.load(changed)
    assert not np.allclose(after[0], before[0])  # recomputed, not served stale
    np.testing.assert_allclose(after[1:], before[1:], rtol=1e-5, atol=1e-5)


def _damage_npy(kind: str):
    def damage(path: Path) -> None:
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif kind == "garbage":
            path.write_bytes(b"this is not an npy file" * 40)
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "shape":
            np.save(path, np.zeros((2, 81, 20), dtype=np.float32))
        elif kind == "dtype":
            np.save(path, np.load(path).astype(np.float64))
        elif kind == "missing":
            path.unlink()

    return damage


def _damage_json(kind: str):
    def damage(path: Path) -> None:
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        if kind == "garbage":
            meta_path.write_text('{"labels": [1, 2')
        elif kind == "not-utf8":
            meta_path.write_bytes(b"\xff\xfe\x00{")
        elif kind == "not-a-dict":
            meta_path.write_text("[1, 2, 3]")
        elif kind == "labels":
            meta_path.write_text(json.dumps({**meta, "labels": meta["labels"][:-1]}))
        elif kind == "sums":
            meta_path.write_text(json.dumps({**meta, "sum": meta["sum"][:3]}))
        elif kind == "no-count":
            meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "count"}))
        elif kind == "classes":
            meta_path.write_text(json.dumps({**meta, "class_names": meta["class_names"][::-1]}))
        elif kind == "missing":
            meta_path.unlink()

    return damage


DAMAGES = [_damage_npy(k) for k in ("truncated", "garbage", "empty", "shape", "dtype", "missing")] + [
    _damage_json(k) for k in ("garbage", "not-utf8", "not-a-dict", "labels", "sums", "no-count", "classes", "missing")
]
DAMAGE_IDS = [f"npy-{k}" for k in ("truncated", "garbage", "empty", "shape", "dtype", "missing")] + [
    f"json-{k}" for k in ("garbage", "not-utf8", "not-a-dict", "labels", "sums", "no-count", "classes", "missing")
]


@pytest.mark.parametrize("damage", DAMAGES, ids=DAMAGE_IDS)
def test_damaged_cache_is_rebuilt_with_one_warning(release: Path, damage, caplog: pytest.LogCaptureFixture) -> None:
    path = _dm(release).build_cache("val")
    features, meta = np.load(path), json.loads(path.with_suffix(".json").read_text())
    damage(path)
    with caplog.at_level(logging.WARNING):
        again = _dm(release).build_cache("val")
    assert again == path
    np.testing.assert_array_equal(np.load(again), features)
    assert json.loads(again.with_suffix(".json").read_text()) == meta
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 1 and "damaged" in messages[0] and "rebuil" in messages[0] and path.stem in messages[0]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in (path, path.with_suffix(".json")))
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        _dm(release).build_cache("val")
    assert not caplog.records  # an intact cache is served silently


def test_setup_rebuilds_a_damaged_training_cache(release: Path) -> None:
    dm = _dm(release)
    dm.setup("fit")
    x = dm.val_dataset[0][0]
    dm.cache_files["train"].with_suffix(".json").write_text("{")
    dm.cache_files["train"].write_bytes(b"\x93NUMPY")
    fresh = _dm(release)
    fresh.setup("fit")
    torch.testing.assert_close(fresh.val_dataset[0][0], x)
    assert len(fresh.train_dataset) == len(dm.train_dataset)


def _interrupt_second_chunk(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    monkeypatch.setattr(speech_commands, "CACHE_CHUNK", 4)
    forward, calls = LogMel.forward, []

    def interrupted(self, x):
        calls.append(len(x))
        if len(calls) == 2:
            raise error
        return forward(self, x)

    monkeypatch.setattr(LogMel, "forward", interrupted)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("out of memory")], ids=["ctrl-c", "error"])
def test_interrupted_build_leaves_no_files(release: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    dm = _dm(release)
    _interrupt_second_chunk(monkeypatch, error)
    with pytest.raises(type(error)):
        dm.build_cache("train")
    assert list(dm.cache_folder().iterdir()) == []  # neither the half-written temporary nor a final file
    monkeypatch.undo()
    assert np.isfinite(np.load(_dm(release).build_cache("train"))).all()


def test_failed_clip_read_leaves_no_files(release: Path) -> None:
    dm = _dm(release)
    (release / dm.clips()["test"][2].path).write_bytes(b"RIFF....garbage")
    with pytest.raises(ValueError, match="not a readable WAV"):
        dm.build_cache("test")
    assert list(dm.cache_folder().iterdir()) == []


def test_cache_files_are_published_by_renames_metadata_last(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replaced: list[tuple[Path, Path]] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append((Path(src), Path(dst))) or real(src, dst))
    path = _dm(release).build_cache("val")
    assert [dst for _, dst in replaced] == [path, path.with_suffix(".json")]  # the metadata marks a complete pair
    assert all(src.parent == dst.parent and src != dst for src, dst in replaced)


def test_failed_metadata_write_leaves_no_files(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def disk_full_for_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_for_json)
    dm = _dm(release)
    with pytest.raises(OSError, match="No space left"):
        dm.build_cache("val")
    assert list(dm.cache_folder().iterdir()) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SNNLSTM_CACHE_DIR": "own", "XDG_CACHE_HOME": "xdg"}, "own/gsc"),
        ({"XDG_CACHE_HOME": "xdg"}, "xdg/snnlstm/gsc"),
        ({}, "home/.cache/snnlstm/gsc"),
    ],
    ids=["SNNLSTM_CACHE_DIR", "XDG_CACHE_HOME", "home"],
)
def test_default_cache_folder_is_a_user_cache(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict, expected: str
) -> None:
    for name in ("SNNLSTM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert SpeechCommands(data_dir=str(release)).cache_folder() == tmp_path / expected
    assert SpeechCommands(data_dir=str(release), cache_dir=str(tmp_path / "mine")).cache_folder() == tmp_path / "mine"


def _set_read_only(root: Path, read_only: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = (0o555 if path.is_dir() else 0o444) if read_only else (0o755 if path.is_dir() else 0o644)
        path.chmod(mode)


def test_read_only_release_works(release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNLSTM_CACHE_DIR", str(tmp_path / "user-cache"))
    before = sorted(release.rglob("*"))
    _set_read_only(release, True)
    try:
        dm = SpeechCommands(data_dir=str(release), batch_size=8)
        dm.setup("fit")
        assert dm.cache_files["train"].parent == tmp_path / "user-cache" / "gsc"
        assert sorted(release.rglob("*")) == before  # nothing written into the data set (also when run as root)
        assert not (release.stat().st_mode & stat.S_IWUSR)
    finally:
        _set_read_only(release, False)


def test_cache_is_built_in_bounded_chunks(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Features are computed and written a chunk at a time, and equal a one-shot computation."""
    from snnlstm.datamodules import speech_commands

    monkeypatch.setattr(speech_commands, "CACHE_CHUNK", 4)
    sizes: list[int] = []
    forward = LogMel.forward
    monkeypatch.setattr(LogMel, "forward", lambda self, x: sizes.append(len(x)) or forward(self, x))
    dm = _dm(release)
    path = dm.build_cache("train")
    assert max(sizes) == 4 and sum(sizes) == len(dm.clips()["train"])
    audio = torch.stack([ClipAudio(release, dm.clips()["train"], [])[i] for i in range(sum(sizes))])
    torch.testing.assert_close(torch.from_numpy(np.load(path)), forward(dm.logmel(), audio), atol=1e-4, rtol=1e-5)


def test_clip_lengths_are_padded_or_trimmed(release: Path) -> None:
    clips = _dm(release).clips()["val"]
    write_wav(release / clips[0].path, tone(300, seconds=0.4))
    write_wav(release / clips[1].path, tone(300, seconds=1.7))
    dm = _dm(release)
    dm.setup("fit")
    assert np.load(dm.cache_files["val"]).shape[1:] == (81, 20)


@pytest.mark.parametrize("layout", ["release", "torchaudio", "parent"], ids=["release", "torchaudio", "parent"])
def test_release_folder_layouts(tmp_path: Path, layout: str) -> None:
    folder = {
        "release": tmp_path / "gsc",
        "torchaudio": tmp_path / "SpeechCommands" / "speech_commands_v0.02",
        "parent": tmp_path / "speech_commands_v0.02",
    }[layout]
    make_release(folder)
    data_dir = folder if layout == "release" else tmp_path
    assert SpeechCommands(data_dir=str(data_dir)).release == folder


def test_missing_release_names_layout_and_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=True") as err:
        _dm(tmp_path / "nowhere").setup("fit")
    assert "validation_list.txt" in str(err.value) and "speech_commands_v0.02" in str(err.value)


@pytest.mark.parametrize("name", ["validation_list.txt", "testing_list.txt"], ids=["val-list", "test-list"])
def test_missing_list_file(release: Path, name: str) -> None:
    (release / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        _dm(release).clips()


def test_list_naming_absent_clip(release: Path) -> None:
    with (release / "testing_list.txt").open("a") as f:
        f.write("yes/ffffffff_nohash_9.wav\n")
    with pytest.raises(ValueError, match="ffffffff_nohash_9.wav"):
        _dm(release).clips()


def test_missing_word_folder(tmp_path: Path) -> None:
    release = make_release(tmp_path / "r", words=tuple(w for w in KEYWORDS if w != "stop") + OTHERS)
    with pytest.raises(ValueError, match="'stop'"):
        _dm(release).clips()
    with pytest.raises(ValueError, match="'zero'"):
        _dm(release, class_set="all", version="v0.01").clips()


def test_silence_needs_background_noise(tmp_path: Path) -> None:
    release = make_release(tmp_path / "r", noise=False)
    _dm(release).clips()  # paper11 has no silence class
    with pytest.raises(FileNotFoundError, match="_background_noise_"):
        _dm(release, class_set="kws12").clips()


def test_corrupt_clip_is_named(release: Path) -> None:
    bad = release / _dm(release).clips()["test"][0].path
    bad.write_bytes(b"RIFF....garbage")
    with pytest.raises(ValueError, match=bad.name):
        _dm(release).setup("test")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_set": "gsc11"}, "class_set must be one of"),
        ({"version": "v3"}, "version must be one of"),
        ({"n_frames": 1}, "n_frames"),
        ({"f_max": 9000.0}, "f_max"),
        ({"noise_prob": 1.5}, "noise_prob"),
        ({"unknown_fraction": -0.1}, "unknown_fraction"),
    ],
    ids=["class-set", "version", "frames", "f-max", "noise-prob", "unknown"],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpeechCommands(data_dir=str(tmp_path), **kwargs)


def test_all_classes_v1(tmp_path: Path) -> None:
    release = make_release(tmp_path / "r", words=WORDS_V1)
    dm = _dm(release, class_set="all", version="v0.01")
    dm.setup("test")
    labels = torch.stack([dm.test_dataset[i][1] for i in range(len(dm.test_dataset))])
    assert set(labels.tolist()) == set(range(30))  # one class per word folder


def test_augmentation_shifts_with_zero_fill(release: Path) -> None:
    dm = _dm(release)
    clips = dm.clips()["train"][:3]
    aug = AugmentedClips(ClipAudio(release, clips, []), dm.logmel(), torch.zeros(20), torch.ones(20), 800, 0.0, 0.1)
    clean = ClipAudio(release, clips, [])[0]
    torch.manual_seed(0)
    shifts = set()
    for _ in range(6):
        x = aug.waveform(0)
        matches = [s for s in range(-800, 801) if torch.equal(x, fit_length(torch.nn.functional.pad(clean, (max(s, 0), 0))[max(-s, 0) :], SR))]
        assert len(matches) == 1  # a pure shift with zeros filled in
        shifts.add(matches[0])
    assert len(shifts) > 1
    x, y = aug[0]
    assert x.shape == (81, 20) and int(y) == clips[0].label


def test_augmented_training_set(release: Path) -> None:
    dm = _dm(release, class_set="kws12", time_shift_ms=50.0, noise_prob=1.0)
    dm.setup("fit")
    assert isinstance(dm.train_dataset, AugmentedClips)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 81, 20) and torch.isfinite(x).all()


def test_state_dict_restores_statistics(release: Path) -> None:
    dm = _dm(release)
    dm.setup("test")
    state = {k: v.clone() * 2 for k, v in dm.state_dict().items()}
    dm.load_state_dict(state)
    torch.testing.assert_close(dm.test_dataset.mean, state["feature_mean"])  # the dataset sees the restored stats


def test_cached_dataset_pickles_without_the_array(release: Path) -> None:
    dm = _dm(release)
    dm.setup("test")
    dm.test_dataset[0]  # opens the memory map
    blob = pickle.dumps(dm.test_dataset)
    assert len(blob) < 20_000
    torch.testing.assert_close(pickle.loads(blob)[1][0], dm.test_dataset[1][0])


@pytest.mark.slow
def test_short_fit_learns_above_chance(release: Path, tmp_path: Path) -> None:
    from snnlstm.models import SequenceClassifier
    from tests.conftest import make_trainer

    dm = _dm(release, batch_size=16)
    model = SequenceClassifier(input_size=20, num_classes=11, head_sizes=[32], lr=0.01, layer=LSTMSettings(hidden_size=32))
    trainer = make_trainer(tmp_path, max_epochs=25)
    trainer.fit(model, datamodule=dm)
    acc = trainer.validate(model, datamodule=dm, verbose=False)[0]["val/acc"]
    assert acc > 0.5  # chance is 1/11
