"""Google Speech Commands (Warden 2018) as log-mel sequences: the GSC task of Datta et al. 2022.

The official release (``speech_commands_v0.01`` or ``v0.02``, the folder inside the published
``.tar.gz``) holds one folder per word of 1 s, 16 kHz, mono 16-bit WAV clips (``yes/0a7c2a8d_nohash_0.wav``),
the split lists ``validation_list.txt`` and ``testing_list.txt`` (one ``word/file.wav`` per line; every
other clip is training data) and ``_background_noise_/`` (a few minutes of noise recordings)::

    <release>/yes/*.wav  <release>/no/*.wav  ...  <release>/_background_noise_/*.wav
    <release>/validation_list.txt  <release>/testing_list.txt

Class sets (``class_set``):

* ``"paper11"``: the 11 classes of Datta et al. 2022 / Jeffares et al. 2022 as we read them: the ten
  command words ``yes no up down left right on off stop go`` plus ``_unknown_`` (clips of the other words);
* ``"kws12"``: the common keyword-spotting setting (Warden 2018): the ten words, ``_unknown_`` and
  ``_silence_`` (1 s crops of ``_background_noise_/`` scaled by a random volume in ``[0, 1]``);
* ``"all"``: every word folder as its own class: 30 classes in v0.01, 35 in v0.02; no unknown, no silence.

As in TensorFlow's reference pipeline, each split gets ``ceil(unknown_fraction * K)`` unknown and
``ceil(silence_fraction * K)`` silence clips, ``K`` being its number of command-word clips; the unknown
clips are drawn at random (seeded) from the split's other words, ``unknown_fraction=None`` keeps them all.
Clips shorter than 1 s are zero-padded at the end, longer ones trimmed (the release has both kinds).

Features: :class:`~snnlstm.datamodules.audio.LogMel` (20 mel bands x 81 frames by default: 30 ms windows,
12.5 ms hop), computed once per split in chunks and cached as ``.npy`` arrays that are memory-mapped
afterwards, so the ~100k clips of v0.02 never need to fit in memory. The cache lives in the user cache
(``cache_dir``, default ``$SNNLSTM_CACHE_DIR/gsc``, else ``$XDG_CACHE_HOME/snnlstm/gsc``, else
``~/.cache/snnlstm/gsc``), never in the release folder, which may be read-only. Its key covers the feature
settings, the class set and split rules and the list of clips with a BLAKE2b digest of each clip's bytes:
change any of them, even a clip whose size stays the same, and the features are recomputed. Cache files
are written to temporary files and renamed into place, an interrupted build leaves nothing behind, and a
damaged cache (truncated or unreadable array, wrong shape or dtype, unreadable or inconsistent metadata,
one file of the pair missing) is rebuilt with a logged warning. Each feature (mel band) is standardised
with the mean and standard deviation of the training split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .audio import LogMel, fit_length, read_wav
from .base import SequenceDataModule, check_choice, check_float, check_int
from .files import atomic_output, atomic_write_text, default_cache_dir, file_digest

__all__ = ["SpeechCommands", "KEYWORDS", "SILENCE", "UNKNOWN"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Sample rate of every clip of the corpus, in Hz."""
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
"""The ten command words of the 11- and 12-class settings."""
SILENCE, UNKNOWN = "_silence_", "_unknown_"
WORDS_V1 = KEYWORDS + (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
)  # fmt: skip
"""The 30 word folders of the v0.01 release."""
WORDS_V2 = WORDS_V1 + ("backward", "forward", "follow", "learn", "visual")
"""The 35 word folders of the v0.02 release."""
VERSIONS = {"v0.01": WORDS_V1, "v0.02": WORDS_V2}
CLASS_SETS = ("paper11", "kws12", "all")
SPLITS = ("train", "val", "test")
LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
NOISE_DIR = "_background_noise_"
CACHE_FORMAT = 2
CACHE_CHUNK = 256
"""Clips read and featurised at a time while a cache is built (the memory bound of :meth:`SpeechCommands.build_cache`)."""
URL = "http://download.tensorflow.org/data/speech_commands_{}.tar.gz"


class Clip(NamedTuple):
    """One example: a word clip (``path`` relative to the release) or a silence crop (``path`` is ``""``).

    Silence crops take ``SAMPLE_RATE`` samples of background recording ``noise`` from ``offset`` on,
    times ``volume``.
    """

    path: str
    label: int
    noise: int = -1
    offset: int = 0
    volume: float = 0.0


# ---------------------------------------------------------------------- release layout
def find_release(data_dir: str | Path, version: str) -> Path | None:
    """The release folder under ``data_dir``, or ``None`` when none is there.

    Looked for, in order: ``data_dir`` itself, ``data_dir/SpeechCommands/speech_commands_<version>``
    (torchaudio's download layout) and ``data_dir/speech_commands_<version>``. A folder counts as a
    release when it has a split list, ``_background_noise_/`` or a ``yes/`` folder.
    """
    root, name = Path(data_dir), f"speech_commands_{version}"
    for folder in (root, root / "SpeechCommands" / name, root / name):
        marks = (*LIST_FILES.values(), NOISE_DIR, "yes")
        if any((folder / mark).exists() for mark in marks):
            return folder
    return None


def _read_list(release: Path, split: str) -> list[str]:
    path = release / LIST_FILES[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the Speech Commands release ships {LIST_FILES['val']} and "
            f"{LIST_FILES['test']} next to its word folders; re-extract the release archive into {release}"
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def list_release(release: Path) -> dict[str, list[str]]:
    """The clips of each split, as ``word/file.wav`` paths relative to the release.

    Validation and test clips are the ones named in the list files; every other clip of a word folder is
    a training clip (the official split, which keeps a speaker's clips in one split).

    Args:
        release: The release folder.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.

    Raises:
        FileNotFoundError: If a list file is missing.
        ValueError: If a list file names clips that are not in the release.
    """
    listed = {split: _read_list(release, split) for split in LIST_FILES}
    clips: set[str] = set()
    for entry in sorted(os.scandir(release), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            clips.update(f"{entry.name}/{f.name}" for f in os.scandir(entry.path) if f.name.endswith(".wav"))
    for split, names in listed.items():
        missing = [n for n in names if n not in clips]
        if missing:
            raise ValueError(
                f"{release / LIST_FILES[split]} names {len(missing)} clip(s) that are not in the release, e.g. "
                f"{missing[0]!r}; the release is incomplete: re-extract the archive"
            )
    held_out = set(listed["val"]) | set(listed["test"])
    return {"train": sorted(clips - held_out), "val": sorted(listed["val"]), "test": sorted(listed["test"])}


def load_background(release: Path) -> list[torch.Tensor]:
    """The recordings of ``_background_noise_/`` (sorted by name), each ``float32`` ``[samples]``.

    Raises:
        FileNotFoundError: If the folder is missing or holds no recording of at least 1 s.
    """
    folder = release / NOISE_DIR
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    noises = [read_wav(f, SAMPLE_RATE) for f in files]
    noises = [n for n in noises if n.numel() >= SAMPLE_RATE]
    if not noises:
        raise FileNotFoundError(
            f"{folder} is missing or holds no WAV recording of at least 1 s; the _silence_ class (class_set "
            "'kws12') and noise augmentation need the release's _background_noise_ folder"
        )
    return noises


# ---------------------------------------------------------------------- cache files
class DamagedCache(Exception):
    """A cache pair that must not be served; the message says what is wrong with it."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_meta(path: Path) -> dict[str, Any]:
    """The JSON object of a cache's metadata file.

    Raises:
        DamagedCache: If it is missing, unreadable, not UTF-8 JSON or not an object.
    """
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedCache("the .json is missing") from None
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DamagedCache(f"the .json is unreadable: {err}") from None
    if not isinstance(meta, dict):
        raise DamagedCache(f"the .json holds a JSON {type(meta).__name__}, not an object")
    return meta


def _check_features(path: Path, shape: tuple[int, int, int]) -> None:
    """Raises :class:`DamagedCache` unless ``path`` is a complete ``float32`` ``.npy`` array of ``shape``.

    Only the header is read and the size checked (memory-mapping needs the whole data), not the values.
    """
    try:
        array = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise DamagedCache("the .npy is missing") from None
    except (OSError, ValueError, EOFError) as err:
        raise DamagedCache(f"the .npy is unreadable: {err}") from None
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.shape != shape:
        found = f"{array.dtype} {list(array.shape)}" if isinstance(array, np.ndarray) else type(array).__name__
        raise DamagedCache(f"the .npy holds {found}, expected float32 {list(shape)}")


# ---------------------------------------------------------------------- datasets
class ClipAudio(Dataset):
    """Waveforms of a list of clips: ``[SAMPLE_RATE]`` ``float32`` each (padded/trimmed, silence synthesised).

    Args:
        release: The release folder.
        clips: The examples.
        noises: Background recordings, needed for silence clips.
    """

    def __init__(self, release: Path, clips: list[Clip], noises: list[torch.Tensor]) -> None:
        self.release, self.clips, self.noises = release, clips, noises

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> torch.Tensor:
        clip = self.clips[index]
        if not clip.path:
            return self.noises[clip.noise][clip.offset : clip.offset + SAMPLE_RATE] * clip.volume
        return fit_length(read_wav(self.release / clip.path, SAMPLE_RATE), SAMPLE_RATE)


class CachedFeatures(Dataset):
    """Standardised features of one split, read from the memory-mapped cache.

    Items are ``((features - mean) / std`` ``float32`` ``[n_frames, n_mels]``, label ``int64``). The array is
    opened lazily in each process (DataLoader workers share the file, not a pickled copy).

    Args:
        path: The ``.npy`` file of the split, ``[N, n_frames, n_mels]``.
        labels: ``int64`` ``[N]``.
        mean: ``[n_mels]``.
        std: ``[n_mels]``.
    """

    def __init__(self, path: Path, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.path, self.labels, self.mean, self.std = path, labels, mean, std
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        x = torch.from_numpy(np.array(self._array[index]))
        return (x - self.mean) / self.std, self.labels[index]


class AugmentedClips(Dataset):
    """Training clips with on-the-fly augmentation, featurised per item.

    Each item: the clip (a fresh random background crop with volume ``U(0, 1)`` for silence), shifted in
    time by a uniform ``[-shift, shift]`` samples (zero-filled), mixed with probability ``noise_prob`` with
    a random background crop scaled by ``U(0, noise_volume)``, clipped to ``[-1, 1]``, then featurised and
    standardised like the cached splits. Randomness comes from torch's RNG (seeded per DataLoader worker).

    Args:
        audio: The clips' waveforms.
        logmel: The feature extractor.
        mean: ``[n_mels]``.
        std: ``[n_mels]``.
        shift: Maximum time shift in samples.
        noise_prob: Probability of mixing background noise into a word clip.
        noise_volume: Maximum background volume of the mix.
    """

    def __init__(
        self,
        audio: ClipAudio,
        logmel: LogMel,
        mean: torch.Tensor,
        std: torch.Tensor,
        shift: int,
        noise_prob: float,
        noise_volume: float,
    ) -> None:
        self.audio, self.logmel, self.mean, self.std = audio, logmel, mean, std
        self.shift, self.noise_prob, self.noise_volume = shift, noise_prob, noise_volume
        self.labels = torch.tensor([c.label for c in audio.clips], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.audio)

    def _noise(self, volume: float) -> torch.Tensor:
        noise = self.audio.noises[int(torch.randint(len(self.audio.noises), ()))]
        offset = int(torch.randint(noise.numel() - SAMPLE_RATE + 1, ()))
        return noise[offset : offset + SAMPLE_RATE] * volume

    def waveform(self, index: int) -> torch.Tensor:
        """The augmented waveform of one item, ``float32`` ``[SAMPLE_RATE]``."""
        clip = self.audio.clips[index]
        if not clip.path:
            return self._noise(float(torch.rand(())))
        x = self.audio[index]
        if self.shift > 0:
            s = int(torch.randint(-self.shift, self.shift + 1, ()))  # > 0 delays the clip
            x = torch.nn.functional.pad(x, (self.shift, self.shift))[self.shift - s : self.shift - s + SAMPLE_RATE]
        if self.audio.noises and float(torch.rand(())) < self.noise_prob:
            x = (x + self._noise(float(torch.rand(())) * self.noise_volume)).clamp(-1.0, 1.0)
        return x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            features = self.logmel(self.waveform(index))
        return (features - self.mean) / self.std, self.labels[index]


# ---------------------------------------------------------------------- DataModule
class SpeechCommands(SequenceDataModule):
    """Google Speech Commands keyword spotting as ``[n_frames, n_mels]`` log-mel sequences.

    Batches are ``(inputs, targets)``: ``inputs`` ``float32`` ``[batch, n_frames, n_mels]`` (81 x 20 by
    default, standardised per mel band with training-split statistics), ``targets`` ``int64`` ``[batch]`` in
    ``[0, num_classes)``, ordered as :attr:`class_names`. Splits follow the release's list files; see the
    module docstring for the class sets, unknown/silence sampling and the feature cache.

    Args:
        data_dir: The release folder, or a folder holding ``SpeechCommands/speech_commands_<version>``
            (torchaudio's layout, where ``download`` puts it) or ``speech_commands_<version>``.
        version: ``"v0.01"`` (30 words) or ``"v0.02"`` (35 words).
        class_set: ``"paper11"``, ``"kws12"`` or ``"all"``.
        unknown_fraction: Unknown clips per split as a fraction of its command-word clips, ``>= 0``;
            ``None`` keeps every clip of the other words.
        silence_fraction: Silence clips per split as a fraction of its command-word clips (``"kws12"``).
        n_mels: Mel bands = features per time step.
        n_frames: Frames per clip = time steps, ``>= 2``.
        n_fft: Analysis window and FFT size in samples (480 = 30 ms).
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz, ``<= 8000``.
        normalize: Standardise each mel band with the training split's mean and standard deviation.
        cache_dir: Folder of the feature cache (``data.init_args.cache_dir`` in a YAML config). ``None``: ``gsc/``
            in the user cache, ``$SNNLSTM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/snnlstm``, else
            ``~/.cache/snnlstm``. Never the release folder, so a read-only release works.
        download: Download and extract the release into ``data_dir/SpeechCommands`` when it is missing
            (torchaudio's :class:`~torchaudio.datasets.SPEECHCOMMANDS`; needs internet).
        time_shift_ms: Training augmentation: random time shift of up to this many ms (``0`` = off;
            TensorFlow's reference uses 100).
        noise_prob: Training augmentation: probability of mixing background noise into a clip (``0`` = off;
            the reference uses 0.8).
        noise_volume: Maximum volume of the mixed background noise (the reference uses 0.1).
        batch_size: Samples per batch.
        num_workers: DataLoader workers, also used to read the clips when the cache is built.
        seed: Seed of the unknown/silence sampling.

    Raises:
        ValueError: If an argument is out of range or not an allowed value.
    """

    def __init__(
        self,
        data_dir: str = "data",
        version: Literal["v0.01", "v0.02"] = "v0.02",
        class_set: Literal["paper11", "kws12", "all"] = "paper11",
        unknown_fraction: float | None = 0.1,
        silence_fraction: float = 0.1,
        n_mels: int = 20,
        n_frames: int = 81,
        n_fft: int = 480,
        f_min: float = 20.0,
        f_max: float = 8000.0,
        normalize: bool = True,
        cache_dir: str | None = None,
        download: bool = False,
        time_shift_ms: float = 0.0,
        noise_prob: float = 0.0,
        noise_volume: float = 0.1,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        check_choice("version", version, tuple(VERSIONS))
        check_choice("class_set", class_set, CLASS_SETS)
        if unknown_fraction is not None:
            check_float("unknown_fraction", unknown_fraction, minimum=0.0)
        check_float("silence_fraction", silence_fraction, minimum=0.0)
        check_int("n_mels", n_mels, minimum=1)
        check_int("n_frames", n_frames, minimum=2, maximum=SAMPLE_RATE // 2)
        check_int("n_fft", n_fft, minimum=16, maximum=SAMPLE_RATE)
        check_float("f_min", f_min, minimum=0.0)
        check_float("f_max", f_max, minimum=f_min, maximum=SAMPLE_RATE / 2, min_inclusive=False)
        check_float("time_shift_ms", time_shift_ms, minimum=0.0, maximum=500.0)
        check_float("noise_prob", noise_prob, minimum=0.0, maximum=1.0)
        check_float("noise_volume", noise_volume, minimum=0.0, maximum=1.0)
        self.data_dir = str(data_dir)
        self.version = version
        self.class_set = class_set
        self.unknown_fraction = None if unknown_fraction is None else float(unknown_fraction)
        self.silence_fraction = float(silence_fraction)
        self.n_mels, self.n_frames, self.n_fft = n_mels, n_frames, n_fft
        self.f_min, self.f_max = float(f_min), float(f_max)
        self.normalize = bool(normalize)
        self.cache_dir = cache_dir
        self.download = bool(download)
        self.time_shift_ms = float(time_shift_ms)
        self.noise_prob, self.noise_volume = float(noise_prob), float(noise_volume)
        self.feature_mean: torch.Tensor | None = None
        self.feature_std: torch.Tensor | None = None
        self.cache_files: dict[str, Path] = {}
        self._clips: dict[str, list[Clip]] | None = None
        self._cache_keys: dict[str, str] = {}
        self.save_hyperparameters()

    # ------------------------------------------------------------------ properties
    @property
    def class_names(self) -> tuple[str, ...]:
        """Class of each target index: the ten words then ``_unknown_`` (and ``_silence_``), or every word."""
        if self.class_set == "all":
            return VERSIONS[self.version]
        return KEYWORDS + ((UNKNOWN, SILENCE) if self.class_set == "kws12" else (UNKNOWN,))

    @property
    def input_size(self) -> int:
        """``n_mels``."""
        return self.n_mels

    @property
    def num_classes(self) -> int:
        """11 (``"paper11"``), 12 (``"kws12"``), 30 or 35 (``"all"`` in v0.01 / v0.02)."""
        return len(self.class_names)

    @property
    def seq_len(self) -> int:
        """``n_frames``."""
        return self.n_frames

    @property
    def release(self) -> Path:
        """The release folder.

        Raises:
            FileNotFoundError: If no release is found under :attr:`data_dir`, with the layout and the fix.
        """
        found = find_release(self.data_dir, self.version)
        if found is None:
            root, name = Path(self.data_dir), f"speech_commands_{self.version}"
            raise FileNotFoundError(
                f"Speech Commands {self.version} not found under {root}: looked for a release folder at {root}, "
                f"{root / 'SpeechCommands' / name} and {root / name}. A release folder holds one folder per word "
                "of 1 s 16 kHz WAV clips (yes/, no/, ...), validation_list.txt, testing_list.txt and "
                f"_background_noise_/. Set download=True (needs internet) or extract {URL.format(self.version)} "
                "into one of those folders."
            )
        return found

    def logmel(self) -> LogMel:
        """The feature extractor of this configuration."""
        return LogMel(SAMPLE_RATE, SAMPLE_RATE, self.n_mels, self.n_frames, self.n_fft, self.f_min, self.f_max)

    # ------------------------------------------------------------------ splits
    def clips(self) -> dict[str, list[Clip]]:
        """The examples of each split under the class set and sampling rules (computed once).

        Raises:
            FileNotFoundError: If the release, a list file or ``_background_noise_/`` (when needed) is missing.
            ValueError: If word folders of the class set are missing from the release.
        """
        if self._clips is not None:
            return self._clips
        release = self.release
        files = list_release(release)
        words = {p.split("/", 1)[0] for split in files.values() for p in split}
        needed = VERSIONS[self.version] if self.class_set == "all" else KEYWORDS
        missing = [w for w in needed if w not in words]
        if missing:
            raise ValueError(
                f"{release} has no clips for the word(s) {missing} of class_set={self.class_set!r} "
                f"({self.version}); check version= and that the release is completely extracted"
            )
        index = {name: i for i, name in enumerate(self.class_names)}
        noises = load_background(release) if self.class_set == "kws12" else []
        self._clips = {}
        for k, split in enumerate(SPLITS):
            gen = torch.Generator().manual_seed(self.seed * 1000 + k)
            known = [Clip(p, index[p.split("/", 1)[0]]) for p in files[split] if p.split("/", 1)[0] in index]
            clips = list(known)
            if self.class_set != "all":
                others = [p for p in files[split] if p.split("/", 1)[0] not in index]
                if self.unknown_fraction is not None:
                    count = min(len(others), math.ceil(self.unknown_fraction * len(known)))
                    others = sorted(others[i] for i in torch.randperm(len(others), generator=gen)[:count].tolist())
                clips += [Clip(p, index[UNKNOWN]) for p in others]
            if self.class_set == "kws12":
                for _ in range(math.ceil(self.silence_fraction * len(known))):
                    n = int(torch.randint(len(noises), (), generator=gen))
                    offset = int(torch.randint(noises[n].numel() - SAMPLE_RATE + 1, (), generator=gen))
                    clips.append(Clip("", index[SILENCE], n, offset, float(torch.rand((), generator=gen))))
            self._clips[split] = clips
        return self._clips

    # ------------------------------------------------------------------ cache
    def _cache_key(self, split: str, clips: list[Clip]) -> str:
        """Key of the cache of one split, computed once per split.

        It covers the cache format, the split, the version, the feature settings and, for every clip, its path,
        label, silence crop and a digest of its bytes (plus the background recordings' digests when the split
        has silence clips): any change of content is seen, even one that keeps the size and modification time.
        Hashing reads every clip once (about 17k clips/s from the page cache, so ~6 s for v0.02).
        """
        if split in self._cache_keys:
            return self._cache_keys[split]
        release = self.release
        digest = hashlib.blake2b(digest_size=16)
        for clip in clips:
            content = file_digest(release / clip.path) if clip.path else ""
            digest.update(f"{clip.path}|{clip.label}|{clip.noise}|{clip.offset}|{clip.volume:.6f}|{content}\n".encode())
        if any(not c.path for c in clips):
            for noise in sorted((release / NOISE_DIR).glob("*.wav")):
                digest.update(f"{noise.name}|{file_digest(noise)}\n".encode())
        settings = {
            "format": CACHE_FORMAT,
            "split": split,
            "version": self.version,
            "features": [self.n_mels, self.n_frames, self.n_fft, self.f_min, self.f_max],
            "clips": digest.hexdigest(),
        }
        key = hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=8).hexdigest()
        self._cache_keys[split] = key
        return key

    def cache_folder(self) -> Path:
        """Where the features are cached: :attr:`cache_dir`, else ``gsc/`` in the user cache.

        The user cache is ``$SNNLSTM_CACHE_DIR``, else ``$XDG_CACHE_HOME/snnlstm``, else ``~/.cache/snnlstm``
        (:func:`~snnlstm.datamodules.files.cache_root`), read when called; never the data set's folder.
        """
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir("gsc")

    def build_cache(self, split: str) -> Path:
        """Computes (or finds) the cached features of one split and returns the ``.npy`` path.

        Clips are read by a DataLoader (``num_workers`` processes) in chunks of :data:`CACHE_CHUNK` and featurised
        as a batch; each chunk is written into a memory-mapped ``.npy`` under a temporary name. A JSON file beside
        it keeps the labels and per-band sums (for the training statistics). Both are published by
        :func:`os.replace` from temporary files in the same folder, the JSON last, so a pair is complete or absent;
        on any error, ``KeyboardInterrupt`` included, the temporary files are removed. An existing pair is
        checked before it is served (readable JSON that matches the split, a ``float32``
        ``[N, n_frames, n_mels]`` array of the right size); a damaged or incomplete one is rebuilt, with a warning.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.

        Returns:
            The ``.npy`` file, ``float32`` ``[N, n_frames, n_mels]`` (not standardised).

        Raises:
            ValueError: If the split has no clips, or a clip is not a readable WAV file.
        """
        return self._cached_split(split)[0]

    def _cached_split(self, split: str) -> tuple[Path, dict[str, Any]]:
        """``(features .npy, metadata)`` of one split, from an intact cache or freshly built (see :meth:`build_cache`)."""
        clips = self.clips()[split]
        if not clips:
            raise ValueError(f"the {split} split of {self.release} has no clips for class_set={self.class_set!r}")
        stem = self.cache_folder() / f"gsc-{split}-{self._cache_key(split, clips)}"
        path, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
        meta = self._read_cache(path, meta_path, clips)
        if meta is None:
            meta = self._write_cache(split, clips, path, meta_path)
        return path, meta

    def _read_cache(self, path: Path, meta_path: Path, clips: list[Clip]) -> dict[str, Any] | None:
        """The metadata of an intact cache pair; ``None`` when there is none, or when it is damaged (logged)."""
        if not path.exists() and not meta_path.exists():
            return None
        try:
            meta = _load_meta(meta_path)
            self._check_meta(meta, clips)
            _check_features(path, (len(clips), self.n_frames, self.n_mels))
        except DamagedCache as err:
            stem = path.with_suffix("")
            log.warning("the Speech Commands feature cache %s.{npy,json} is damaged (%s); rebuilding it", stem, err)
            return None
        return meta

    def _check_meta(self, meta: dict[str, Any], clips: list[Clip]) -> None:
        """Raises :class:`DamagedCache` unless ``meta`` describes ``clips`` under this configuration."""
        expected = {
            "labels": [c.label for c in clips],
            "count": len(clips) * self.n_frames,
            "class_names": list(self.class_names),
        }
        for name, value in expected.items():
            if meta.get(name) != value:
                raise DamagedCache(f"the .json's {name!r} does not match the split")
        for name in ("sum", "sum_sq"):
            values = meta.get(name)
            if not isinstance(values, list) or len(values) != self.n_mels or not all(_is_number(v) for v in values):
                raise DamagedCache(f"the .json's {name!r} is not a list of {self.n_mels} numbers")

    def _write_cache(self, split: str, clips: list[Clip], path: Path, meta_path: Path) -> dict[str, Any]:
        """Builds the features into ``path`` and then the metadata into ``meta_path``; returns the metadata.

        Nothing is left behind on any error: temporary files are removed, and features whose metadata could not
        be written are removed too.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, ".tmp.npy") as tmp:
            total, total_sq = self._featurise(split, clips, tmp)
        meta = {
            "labels": [c.label for c in clips],
            "sum": total.tolist(),
            "sum_sq": total_sq.tolist(),
            "count": len(clips) * self.n_frames,
            "class_names": list(self.class_names),
        }
        try:
            atomic_write_text(meta_path, json.dumps(meta))
        except BaseException:
            path.unlink(missing_ok=True)  # features without their metadata are no cache
            raise
        return meta

    def _featurise(self, split: str, clips: list[Clip], out_path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Writes the log-mel features of ``clips`` into a new ``.npy`` at ``out_path``, one chunk at a time.

        Returns:
            Per-band sum and sum of squares over clips and frames, ``float64`` ``[n_mels]`` each.
        """
        from tqdm.auto import tqdm

        noises = load_background(self.release) if any(not c.path for c in clips) else []
        loader = DataLoader(ClipAudio(self.release, clips, noises), batch_size=CACHE_CHUNK, num_workers=self.num_workers)
        out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(len(clips), self.n_frames, self.n_mels))
        total, total_sq, start, logmel = np.zeros(self.n_mels), np.zeros(self.n_mels), 0, self.logmel()
        with torch.no_grad():
            for audio in tqdm(loader, desc=f"GSC {split} log-mel features", unit="chunk", leave=False):
                feats = logmel(audio).numpy()
                out[start : start + len(feats)] = feats
                total += feats.sum((0, 1), dtype=np.float64)
                total_sq += np.square(feats, dtype=np.float64).sum((0, 1))
                start += len(feats)
        out.flush()
        return total, total_sq

    def _load_split(self, split: str) -> tuple[Path, torch.Tensor, dict[str, Any]]:
        path, meta = self._cached_split(split)
        self.cache_files[split] = path
        return path, torch.tensor(meta["labels"], dtype=torch.int64), meta

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` ``[n_mels]`` of the training features (``(0, 1)`` when ``normalize`` is off)."""
        if not self.normalize:
            return torch.zeros(self.n_mels), torch.ones(self.n_mels)
        if self.feature_mean is None or self.feature_std is None:
            _, _, meta = self._load_split("train")
            total, total_sq = np.asarray(meta["sum"]), np.asarray(meta["sum_sq"])
            mean = total / meta["count"]
            std = np.sqrt(np.maximum(total_sq / meta["count"] - mean**2, 0.0))
            self.feature_mean = torch.tensor(mean, dtype=torch.float32)
            self.feature_std = torch.tensor(np.where(std > 1e-8, std, 1.0), dtype=torch.float32)
        return self.feature_mean, self.feature_std

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Downloads the release when ``download`` is set and it is missing (one process only)."""
        if self.download and find_release(self.data_dir, self.version) is None:
            from torchaudio.datasets import SPEECHCOMMANDS

            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
            SPEECHCOMMANDS(self.data_dir, url=f"speech_commands_{self.version}", download=True)

    def setup(self, stage: str | None = None) -> None:
        """Builds (or loads from the cache) the splits needed by ``stage``; idempotent.

        The training statistics are needed by every split, so ``"test"`` also builds the training cache the
        first time.

        Args:
            stage: ``"fit"``/``"validate"`` (train and validation), ``"test"``/``"predict"`` (test) or ``None``.
        """
        mean, std = self._statistics()
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            path, labels, _ = self._load_split("train")
            if self.time_shift_ms > 0 or self.noise_prob > 0:
                clips = self.clips()["train"]
                needs_noise = self.noise_prob > 0 or any(not c.path for c in clips)
                audio = ClipAudio(self.release, clips, load_background(self.release) if needs_noise else [])
                shift = int(round(self.time_shift_ms * SAMPLE_RATE / 1000))
                self.train_dataset = AugmentedClips(audio, self.logmel(), mean, std, shift, self.noise_prob, self.noise_volume)
            else:
                self.train_dataset = CachedFeatures(path, labels, mean, std)
            path, labels, _ = self._load_split("val")
            self.val_dataset = CachedFeatures(path, labels, mean, std)
        if stage in (None, "test", "predict") and self.test_dataset is None:
            path, labels, _ = self._load_split("test")
            self.test_dataset = CachedFeatures(path, labels, mean, std)

    def state_dict(self) -> dict[str, Any]:
        """The standardisation statistics, saved in checkpoints."""
        if self.feature_mean is None or self.feature_std is None:
            return {}
        return {"feature_mean": self.feature_mean, "feature_std": self.feature_std}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the statistics of :meth:`state_dict` (e.g. from a checkpoint)."""
        if "feature_mean" not in state_dict:
            return
        mean, std = state_dict["feature_mean"].float(), state_dict["feature_std"].float()
        if self.feature_mean is not None and self.feature_std is not None:  # datasets share these tensors
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(std)
        else:
            self.feature_mean, self.feature_std = mean, std
