"""Parallel-corpus DataModules for translation: IWSLT14 de-en (fairseq's prepared layout) and raw text.

Files are ``{data_dir}/{split}.{lang}`` or ``{split}.{lang}.gz``, one sentence a line, line ``k`` of the
source file aligned with line ``k`` of the target file.

* ``tokenization="prepared"``: the output of fairseq's ``examples/translation/prepare-iwslt14.sh``
  (Moses-tokenised, lowercased, BPE-split text in ``train|valid|test.{de,en}``); vocabularies are counted
  on the training split (:class:`~snnlstm.datamodules.text.PreparedCodec`).
* ``tokenization="raw"``: plain sentences (e.g. Multi30k's ``train|val|test_2016_flickr.{de,en}.gz``);
  a joint BPE vocabulary is learned on the training split with Hugging Face ``tokenizers`` after Moses
  tokenisation (:class:`~snnlstm.datamodules.text.SubwordCodec`) and cached under ``cache_dir``, keyed by
  the training files and the settings.

Handling of bad input:

* a missing file raises ``FileNotFoundError`` naming it and the language suffixes that ``data_dir`` has;
* source and target files of different line counts raise ``ValueError`` with both counts;
* a file that is not UTF-8 raises ``ValueError`` naming it, the line and how to re-encode it (``iconv``); a
  truncated ``.gz`` raises ``ValueError`` naming it;
* training pairs with an empty side, or longer than ``max_len`` tokens on either side, are skipped (the
  counts are logged); in the validation and test splits every pair is kept, and an over-long source is
  cut to ``max_len`` tokens (logged), so BLEU is always computed on the whole reference set.

Batches (:class:`TranslationBatch`) hold padded id tensors and masks; sentences of similar length are
batched together (:class:`BucketBatchSampler`). The codec travels in the DataModule's ``state_dict`` (so
in every Lightning checkpoint): ``snnlstm test --ckpt_path`` and translation of new text use the
vocabulary the model was trained with.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import random
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from snnlstm.checkpoint import load_checkpoint

from .base import check_choice, check_int
from .files import atomic_write_text, default_cache_dir, utf8_error
from .text import BOS, EOS, PAD, SPECIALS, PreparedCodec, SubwordCodec, TextCodec, codec_from_json

__all__ = ["TranslationBatch", "BucketBatchSampler", "ParallelText", "IWSLT14", "Multi30k", "load_codec", "read_parallel"]

log = logging.getLogger(__name__)
TOKENIZATIONS: tuple[str, ...] = ("prepared", "raw")
STAGES: tuple[str, ...] = ("train", "val", "test")


class TranslationBatch(NamedTuple):
    """One batch of sentence pairs, padded with id 0.

    Attributes:
        src: source ids ``[B, S]`` ending in ``</s>``.
        src_mask: ``[B, S]`` bool, True on real tokens.
        tgt_in: decoder inputs ``[B, T]``: ``<s>`` then the target ids.
        tgt_out: decoder targets ``[B, T]``: the target ids then ``</s>``.
        tgt_mask: ``[B, T]`` bool, True on real tokens of ``tgt_out``.
        index: ``[B]`` positions of the pairs in their split (for references and ordering).
    """

    src: Tensor
    src_mask: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    tgt_mask: Tensor
    index: Tensor


def _open(path: Path) -> Any:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _read_bytes(path: Path) -> bytes:
    """The (decompressed) bytes of ``path``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def _reencode_fix(path: Path) -> str:
    """How to turn ``path`` into UTF-8, for error messages."""
    name = path.name.removesuffix(".gz")
    unpack = f"decompress it first (gunzip {path.name}), then " if path.suffix == ".gz" else ""
    return (
        f"the corpus files must be UTF-8: {unpack}re-encode it, e.g. `iconv -f latin1 -t utf-8 {name} > {name}.utf8` "
        f"(with the file's real encoding in place of latin1), and put the result in its place"
    )


def _read_text(path: Path) -> str:
    """The whole text of a UTF-8 file, gzip-compressed when its name ends in ``.gz`` (newlines read as ``\\n``).

    Raises:
        ValueError: If the text is not UTF-8 (naming the file, the line and the fix), or the file is a
            truncated or invalid gzip file.
    """
    try:
        with _open(path) as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise utf8_error(path, _read_bytes(path), _reencode_fix(path)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(
            f"{path} is truncated or not a gzip file ({err}): download or copy it again (or, if it is plain text, "
            "drop the .gz suffix)"
        ) from None


def _find(data_dir: Path, split: str, lang: str) -> Path:
    for name in (f"{split}.{lang}", f"{split}.{lang}.gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    langs = sorted({p.name.removesuffix(".gz").rsplit(".", 1)[-1] for p in data_dir.glob(f"{split}.*")}) if data_dir.is_dir() else []
    found = f"{split} files there have the language suffixes {langs}" if langs else f"there are no {split}.* files there"
    raise FileNotFoundError(
        f"no {split}.{lang} or {split}.{lang}.gz in {data_dir} ({found}). Check data_dir, the split names and "
        "src_lang/tgt_lang; IWSLT14 de-en is prepared with fairseq's examples/translation/prepare-iwslt14.sh"
    )


def read_parallel(data_dir: str | Path, split: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """The aligned source and target lines of one split (whitespace-stripped).

    Raises:
        FileNotFoundError: a file is missing (the message lists the language suffixes present).
        ValueError: the two files have different numbers of lines, a file is not UTF-8 (the message names
            the line and how to re-encode it) or is a damaged gzip file.
    """
    if src_lang == tgt_lang:
        raise ValueError(f"src_lang and tgt_lang must differ, both are {src_lang!r}")
    paths = [_find(Path(data_dir), split, lang) for lang in (src_lang, tgt_lang)]
    sides = []
    for path in paths:
        sides.append([line.strip() for line in _read_text(path).split("\n")])
        if sides[-1] and sides[-1][-1] == "":  # the final newline
            sides[-1].pop()
    if len(sides[0]) != len(sides[1]):
        raise ValueError(
            f"misaligned parallel files: {paths[0]} has {len(sides[0])} lines but {paths[1]} has {len(sides[1])}; "
            "line k of the source must translate line k of the target"
        )
    return sides[0], sides[1]


def load_codec(path: str | Path) -> TextCodec:
    """The codec saved in a Lightning checkpoint (its DataModule state) or in a codec JSON file.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the checkpoint is truncated, corrupt or holds pickled code.
        ValueError: the file holds no codec.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocab_from {str(path)!r} does not exist; give a checkpoint or a codec JSON file")
    if path.suffix == ".json":
        return codec_from_json(path.read_text(encoding="utf-8"))
    checkpoint = load_checkpoint(path, what="vocab_from checkpoint")
    for value in checkpoint.values() if isinstance(checkpoint, dict) else ():
        if isinstance(value, dict) and isinstance(value.get("codec"), str):
            return codec_from_json(value["codec"])
    raise ValueError(f"{str(path)!r} holds no translation vocabulary (was it trained with a ParallelText DataModule?)")


def _read_cached_codec(path: Path) -> TextCodec | None:
    """The codec cached at ``path``; ``None`` when there is none, or when it is damaged (logged, to be rebuilt)."""
    if not path.is_file():
        return None
    try:
        return codec_from_json(path.read_text(encoding="utf-8"))
    except Exception as err:  # noqa: BLE001 - any unreadable cache (JSON, UTF-8, tokenizers' own errors) is rebuilt
        log.warning("the vocabulary cache %s is damaged (%s); rebuilding it", path, err)
        return None


class EncodedPairs(Dataset):
    """Encoded sentence pairs of one split: item ``k`` is ``(src_ids + [</s>], tgt_ids, k_in_split)``."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]], index: list[int]) -> None:
        self.src, self.tgt, self.index = src, tgt, index

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, k: int) -> tuple[list[int], list[int], int]:
        return self.src[k], self.tgt[k], self.index[k]

    def lengths(self) -> list[int]:
        """Longer side of every pair (the bucketing key)."""
        return [max(len(s), len(t) + 1) for s, t in zip(self.src, self.tgt)]


def collate_pairs(items: Sequence[tuple[list[int], list[int], int]]) -> TranslationBatch:
    """Pads a list of encoded pairs into a :class:`TranslationBatch`."""
    batch = len(items)
    s_len = max(len(s) for s, _, _ in items)
    t_len = max(len(t) for _, t, _ in items) + 1
    src = torch.full((batch, s_len), PAD, dtype=torch.long)
    tgt_in = torch.full((batch, t_len), PAD, dtype=torch.long)
    tgt_out = torch.full((batch, t_len), PAD, dtype=torch.long)
    for b, (s, t, _) in enumerate(items):
        src[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[b, : len(t) + 1] = torch.tensor([BOS] + t, dtype=torch.long)
        tgt_out[b, : len(t) + 1] = torch.tensor(t + [EOS], dtype=torch.long)
    index = torch.tensor([k for _, _, k in items], dtype=torch.long)
    return TranslationBatch(src, src.ne(PAD), tgt_in, tgt_out, tgt_out.ne(PAD), index)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` items of similar length.

    Items are sorted by length (ties broken at random when shuffling), cut into batches, and the
    batch order is shuffled; the permutation depends on ``seed`` and the epoch (:meth:`set_epoch`).
    Without shuffling the batches follow the sorted order.

    Under data-parallel training (``num_replicas > 1``) every process draws the same permutation and
    takes every ``num_replicas``-th batch from its ``rank`` on; the first batches are repeated where
    needed so that every process gets the same number of batches (as ``DistributedSampler`` does).
    Lightning cannot shard a custom batch sampler (it stops with a TypeError), so under DDP set
    ``Trainer(use_distributed_sampler=False)`` (the translation config does): the training loader
    then passes the world size and rank of ``torch.distributed`` (1 and 0 when it is not initialised).

    Args:
        lengths: length of every item.
        batch_size: items per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch.
        seed: base seed of the shuffling.
        num_replicas: processes sharing the batches (1: all of them here).
        rank: this process's index in ``[0, num_replicas)``.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        check_int("num_replicas", num_replicas, minimum=1)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        self.lengths, self.batch_size, self.shuffle, self.seed = list(lengths), batch_size, shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        batches = (len(self.lengths) + self.batch_size - 1) // self.batch_size
        return (batches + self.num_replicas - 1) // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100003 + self.epoch)
        keys = [rng.random() for _ in self.lengths] if self.shuffle else [0.0] * len(self.lengths)
        order = sorted(range(len(self.lengths)), key=lambda k: (self.lengths[k], keys[k]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
            self.epoch += 1  # a fresh permutation next epoch even without set_epoch
        if self.num_replicas > 1:
            total = len(self) * self.num_replicas
            batches = (batches * (total // max(len(batches), 1) + 1))[:total]  # pad by repeating
            batches = batches[self.rank :: self.num_replicas]
        yield from batches


class ParallelText(LightningDataModule):
    """Sentence pairs of a parallel corpus as padded, length-bucketed id batches.

    Args:
        data_dir: folder with ``{split}.{lang}[.gz]`` files.
        src_lang: source language suffix (e.g. ``de``).
        tgt_lang: target language suffix (e.g. ``en``).
        train_split, val_split, test_split: file-name stems of the splits.
        tokenization: ``"prepared"`` (already tokenised and BPE-split) or ``"raw"`` (learn a BPE).
        vocab_size: target size of the learned joint BPE vocabulary (``raw``).
        min_count: tokens seen fewer times in training become ``<unk>`` (``prepared``).
        lowercase: lowercase raw sentences before tokenising (``raw``).
        max_len: longest sentence in tokens (see the module docstring for what happens to longer ones).
        batch_size: sentence pairs per batch.
        num_workers: DataLoader workers.
        seed: seed of the batch shuffling.
        cache_dir: where learned vocabularies are cached; default ``text/`` in the user cache:
            ``$SNNLSTM_CACHE_DIR``, else ``$XDG_CACHE_HOME/snnlstm``, else ``~/.cache/snnlstm``. A damaged
            cached vocabulary is rebuilt (with a logged warning).
        train_limit: use only the first ``train_limit`` training pairs (quick runs; None = all).
        predict_file: source sentences to translate with ``snnlstm predict`` (one a line, raw text as in
            the corpus; ``"-"`` reads standard input). None: predict translates the test split.
        test_subset: translate only a fixed, seeded random subset of this many test pairs (hybrid
            evaluation at large T is slow; BLEU is then computed on the subset). None: every pair.
        subset_seed: seed of ``test_subset``.
        vocab_from: take the vocabulary from a Lightning checkpoint of a model trained on this kind of
            DataModule, or from a codec JSON file (:meth:`TextCodec.to_json`), instead of building it. The
            ``snnlstm`` CLI sets it to ``--ckpt_path`` so that a checkpoint is tested with its own vocabulary.

    Raises:
        ValueError: an argument is out of range or an unknown option.
    """

    def __init__(
        self,
        data_dir: str = "data/iwslt14.tokenized.de-en",
        src_lang: str = "de",
        tgt_lang: str = "en",
        train_split: str = "train",
        val_split: str = "valid",
        test_split: str = "test",
        tokenization: Literal["prepared", "raw"] = "prepared",
        vocab_size: int = 8000,
        min_count: int = 1,
        lowercase: bool = False,
        max_len: int = 175,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        train_limit: int | None = None,
        predict_file: str | None = None,
        test_subset: int | None = None,
        subset_seed: int = 0,
        vocab_from: str | None = None,
    ) -> None:
        super().__init__()
        check_choice("tokenization", tokenization, TOKENIZATIONS)
        check_int("vocab_size", vocab_size, minimum=len(SPECIALS) + 1)
        check_int("min_count", min_count, minimum=1)
        check_int("max_len", max_len, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        check_int("num_workers", num_workers, minimum=0)
        check_int("seed", seed, minimum=0)
        if train_limit is not None:
            check_int("train_limit", train_limit, minimum=1)
        if test_subset is not None:
            check_int("test_subset", test_subset, minimum=1)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir("text")
        self._codec: TextCodec | None = None
        self._text: dict[str, tuple[list[str], list[str]]] = {}
        self._encoded: dict[str, EncodedPairs] = {}

    # ------------------------------------------------------------------ text and codec
    def text(self, stage: str) -> tuple[list[str], list[str]]:
        """Source and target lines of ``stage`` (``train``, ``val`` or ``test``) as in the files."""
        check_choice("stage", stage, STAGES)
        if stage not in self._text:
            src, tgt = read_parallel(self.data_dir, self.splits[stage], self.hparams.src_lang, self.hparams.tgt_lang)
            if stage == "train" and self.hparams.train_limit is not None:
                src, tgt = src[: self.hparams.train_limit], tgt[: self.hparams.train_limit]
            self._text[stage] = (src, tgt)
        return self._text[stage]

    @property
    def codec(self) -> TextCodec:
        """The text codec: restored from a checkpoint, loaded from the cache, or built from training text."""
        if self._codec is None:
            self._codec = self._load_or_build_codec()
        return self._codec

    def _cache_path(self) -> Path:
        hp = self.hparams
        key = [hp.tokenization, hp.src_lang, hp.tgt_lang, hp.vocab_size, hp.min_count, hp.lowercase, hp.train_limit]
        for lang in (hp.src_lang, hp.tgt_lang):
            path = _find(self.data_dir, self.splits["train"], lang).resolve()
            stat = path.stat()
            key += [str(path), stat.st_size, int(stat.st_mtime)]
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
        return self.cache_dir / f"codec-{hp.src_lang}-{hp.tgt_lang}-{digest}.json"

    def _load_or_build_codec(self) -> TextCodec:
        hp = self.hparams
        if hp.vocab_from is not None:
            return load_codec(hp.vocab_from)
        path = self._cache_path()
        cached = _read_cached_codec(path)
        if cached is not None:
            return cached
        src, tgt = self.text("train")
        if hp.tokenization == "prepared":
            codec: TextCodec = PreparedCodec.build(src, tgt, hp.src_lang, hp.tgt_lang, hp.min_count)
        else:
            log.info("learning a %d-token BPE vocabulary on %d sentence pairs", hp.vocab_size, len(src))
            codec = SubwordCodec.build(src, tgt, hp.src_lang, hp.tgt_lang, hp.vocab_size, hp.lowercase)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, codec.to_json())
        except OSError as err:  # a read-only cache only costs rebuilding next time
            log.warning("could not cache the vocabulary in %s: %s", path, err)
        return codec

    @property
    def src_vocab_size(self) -> int:
        """Source vocabulary size (specials included)."""
        return self.codec.vocab_size("src")

    @property
    def tgt_vocab_size(self) -> int:
        """Target vocabulary size (specials included)."""
        return self.codec.vocab_size("tgt")

    def references(self, stage: str) -> list[str]:
        """Detokenised target sentences of ``stage`` (what BLEU compares against), one per pair."""
        tgt = self.text(stage)[1]
        codec = self.codec
        if isinstance(codec, PreparedCodec):  # BPE removed and Moses-detokenised, whatever the vocabulary
            return [codec.postprocess(line.split(), "tgt") for line in tgt]
        return list(tgt)

    def sources(self, stage: str) -> list[str]:
        """Source sentences of ``stage`` as in the files."""
        return list(self.text(stage)[0])

    # ------------------------------------------------------------------ encoding
    def encoded(self, stage: str) -> EncodedPairs:
        """The encoded pairs of ``stage`` (see the module docstring for skipped and cut pairs)."""
        if stage not in self._encoded:
            self._encoded[stage] = self._encode(stage)
        return self._encoded[stage]

    def _encode(self, stage: str) -> EncodedPairs:
        codec, max_len = self.codec, self.hparams.max_len
        src_lines, tgt_lines = self.text(stage)
        src, tgt, index = [], [], []
        empty = long = cut = 0
        for k, (s_line, t_line) in enumerate(zip(src_lines, tgt_lines)):
            s_ids, t_ids = codec.encode(s_line, "src"), codec.encode(t_line, "tgt")
            if stage == "train":
                if not s_ids or not t_ids:
                    empty += 1
                    continue
                if len(s_ids) + 1 > max_len or len(t_ids) + 1 > max_len:
                    long += 1
                    continue
            elif len(s_ids) + 1 > max_len:
                s_ids, cut = s_ids[: max_len - 1], cut + 1
            src.append(s_ids + [EOS])
            tgt.append(t_ids[: max_len - 1])
            index.append(k)
        if empty or long:
            log.warning("%s: skipped %d pairs with an empty side and %d longer than max_len=%d", stage, empty, long, max_len)
        if cut:
            log.warning("%s: cut %d sources to max_len=%d tokens", stage, cut, max_len)
        if not src:
            raise ValueError(f"the {stage} split of {self.data_dir} has no usable sentence pair (all empty or too long)")
        subset = self.hparams.test_subset
        if stage == "test" and subset is not None and subset < len(src):
            keep = sorted(random.Random(self.hparams.subset_seed).sample(range(len(src)), subset))
            src, tgt, index = [src[i] for i in keep], [tgt[i] for i in keep], [index[i] for i in keep]
        return EncodedPairs(src, tgt, index)

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Reads the files of the splits ``stage`` needs and builds the codec (datasets are encoded lazily,
        after a checkpoint may have restored its codec)."""
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(stage or "", STAGES):
            if not (split == "test" and stage == "predict" and self.hparams.predict_file is not None):
                self.text(split)
        _ = self.codec

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        data = self.encoded(stage)
        replicas, rank = 1, 0
        if stage == "train" and torch.distributed.is_available() and torch.distributed.is_initialized():
            # training batches are sharded across processes; validation and test are decoded whole on
            # every process so that each computes the corpus BLEU of the full split
            replicas, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        sampler = BucketBatchSampler(data.lengths(), self.hparams.batch_size, shuffle, self.hparams.seed, replicas, rank)
        return DataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=collate_pairs,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, length-bucketed batches of the training pairs."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Length-bucketed batches of the validation pairs (fixed order)."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Length-bucketed batches of the test pairs (fixed order; ``batch.index`` gives the line)."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """``predict_file``'s sentences in file order (empty targets), else the test pairs as :meth:`test_dataloader`."""
        if self.hparams.predict_file is None:
            return self._loader("test", shuffle=False)
        if "predict" not in self._encoded:
            self._encoded["predict"] = self._encode_sources(self._read_predict_file())
        data = self._encoded["predict"]
        return DataLoader(data, batch_size=self.hparams.batch_size, shuffle=False, collate_fn=collate_pairs)

    def _read_predict_file(self) -> list[str]:
        path = self.hparams.predict_file
        if path == "-":
            import sys

            return [line.strip() for line in sys.stdin.read().splitlines()]
        if not Path(path).is_file():
            raise FileNotFoundError(f"predict_file {path!r} does not exist; give a text file with one source sentence a line, or '-' for stdin")
        return [line.strip() for line in _read_text(Path(path)).splitlines()]

    def _encode_sources(self, lines: list[str]) -> EncodedPairs:
        codec, max_len = self.codec, self.hparams.max_len
        src = [codec.encode(line, "src")[: max_len - 1] + [EOS] for line in lines]
        return EncodedPairs(src, [[] for _ in src], list(range(len(src))))

    def state_dict(self) -> dict[str, Any]:
        """The codec, so checkpoints carry the vocabulary."""
        return {"codec": self.codec.to_json()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the codec of a checkpoint (encoded datasets are rebuilt with it)."""
        if "codec" in state_dict:
            self._codec = codec_from_json(state_dict["codec"])
            self._encoded.clear()



class IWSLT14(ParallelText):
    """IWSLT14 de-en as prepared by fairseq's ``prepare-iwslt14.sh`` (tokenised, lowercased, BPE-split).

    Users obtain it with (needs internet; about 10 minutes)::

        git clone https://github.com/facebookresearch/fairseq
        cd fairseq/examples/translation && bash prepare-iwslt14.sh
        # -> iwslt14.tokenized.de-en/{train,valid,test}.{de,en}; pass that folder as data_dir

    Same arguments as :class:`ParallelText`, with IWSLT14's defaults.
    """

    def __init__(
        self,
        data_dir: str = "data/iwslt14.tokenized.de-en",
        tokenization: Literal["prepared", "raw"] = "prepared",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, tokenization=tokenization, **kwargs)


class Multi30k(ParallelText):
    """Multi30k (Flickr30k captions) de-en as raw gzip text: ``train``, ``val``, ``test_2016_flickr``.

    Same arguments as :class:`ParallelText`, with Multi30k's split names, raw text and an 8000-token joint
    BPE vocabulary by default.
    """

    def __init__(
        self,
        data_dir: str = "../shared/data/multi30k",
        val_split: str = "val",
        test_split: str = "test_2016_flickr",
        tokenization: Literal["prepared", "raw"] = "raw",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, val_split=val_split, test_split=test_split, tokenization=tokenization, **kwargs)
