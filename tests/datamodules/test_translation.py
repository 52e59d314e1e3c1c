"""Parallel-corpus DataModules and text codecs on tiny generated corpora (raw gzip and fairseq-prepared)."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
import torch

from snnlstm.datamodules.text import BOS, EOS, PAD, UNK, PreparedCodec, SubwordCodec, codec_from_json
from snnlstm.datamodules.translation import BucketBatchSampler, Multi30k, ParallelText, read_parallel

DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest ein Buch.",
    "Ein Kind isst einen Apfel.",
    "Der Mann trinkt Kaffee.",
    "Die Hunde laufen schnell.",
]
EN = [
    "A man rides a bike.",
    "Two dogs play in the snow.",
    "A woman reads a book.",
    "A child eats an apple.",
    "The man drinks coffee.",
    "The dogs run fast.",
]


def _write(path: Path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data, encoding="utf-8")


@pytest.fixture
def raw_corpus(tmp_path: Path) -> Path:
    """Multi30k-like layout: train/val/test_2016_flickr.{de,en}.gz."""
    root = tmp_path / "m30k"
    root.mkdir()
    for split, k in (("train", slice(0, 6)), ("val", slice(0, 2)), ("test_2016_flickr", slice(2, 5))):
        _write(root / f"{split}.de.gz", DE[k])
        _write(root / f"{split}.en.gz", EN[k])
    return root


@pytest.fixture
def prepared_corpus(tmp_path: Path) -> Path:
    """fairseq prepare-iwslt14 layout: tokenised, BPE-split plain text."""
    root = tmp_path / "iwslt"
    root.mkdir()
    de = ["ein mann fähr@@ t fahr@@ rad .", "zwei hunde spielen .", "ein hund ."]
    en = ["a man ri@@ des a bi@@ ke .", "two dogs play .", "a dog ."]
    for split in ("train", "valid", "test"):
        _write(root / f"{split}.de", de)
        _write(root / f"{split}.en", en)
    return root


def _module(root: Path, tmp_path: Path, **kwargs: object) -> Multi30k:
    kwargs.setdefault("vocab_size", 120)
    return Multi30k(data_dir=str(root), cache_dir=str(tmp_path / "cache"), batch_size=2, **kwargs)


def test_subword_codec_round_trips_and_serialises() -> None:
    codec = SubwordCodec.build(DE, EN, "de", "en", vocab_size=150, min_frequency=1)
    assert codec.vocab_size("src") == codec.vocab_size("tgt") <= 150
    for de, en in zip(DE, EN):
        assert codec.decode(codec.encode(de, "src"), "src") == de
        assert codec.decode(codec.encode(en, "tgt"), "tgt") == en
    ids = codec.encode(EN[0], "tgt")
    assert min(ids) > UNK  # no specials inside a sentence
    assert codec.decode([BOS] + ids + [EOS, PAD], "tgt") == EN[0]  # specials are dropped
    again = codec_from_json(codec.to_json())
    assert again.encode(DE[1], "src") == codec.encode(DE[1], "src")


def test_prepared_codec_counts_vocabularies_and_removes_bpe() -> None:
    codec = PreparedCodec.build(["a b@@ c a", "a"], ["x y@@ z"], "de", "en", min_count=1)
    assert codec.vocab_size("src") == 4 + 3 and codec.vocab_size("tgt") == 4 + 3
    assert codec.encode("a b@@ c unseen", "src") == [4, 5, 6, UNK]  # most frequent first, then alphabetical
    assert codec.decode(codec.encode("x y@@ z .", "tgt"), "tgt") == "x yz"  # '.' is unknown -> dropped
    assert codec.postprocess(["x", "y@@", "z", "."], "tgt") == "x yz."
    assert codec_from_json(codec.to_json()).encode("a c", "src") == [4, 6]
    with pytest.raises(ValueError, match="side must be"):
        codec.encode("a", "target")


@pytest.mark.parametrize("text", ["{}", "not json", '{"kind": "wordpiece"}'], ids=["no-kind", "not-json", "unknown-kind"])
def test_codec_from_json_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="codec"):
        codec_from_json(text)


def test_raw_corpus_batches(raw_corpus: Path, tmp_path: Path) -> None:
    dm = _module(raw_corpus, tmp_path)
    dm.setup("fit")
    assert dm.src_vocab_size == dm.tgt_vocab_size <= 120
    batches = list(dm.train_dataloader())
    assert sum(len(b.index) for b in batches) == 6 and sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(6))
    for b in batches:
        assert b.src.shape == b.src_mask.shape and b.tgt_in.shape == b.tgt_out.shape == b.tgt_mask.shape
        assert (b.tgt_in[:, 0] == BOS).all()
        lengths = b.src_mask.sum(1)
        assert (b.src[torch.arange(len(lengths)), lengths - 1] == EOS).all()  # every source ends in </s>
        assert (b.src[~b.src_mask] == PAD).all() and (b.tgt_out[~b.tgt_mask] == PAD).all()
        # decoder input is the target shifted right by one
        assert torch.equal(b.tgt_in[:, 1:][b.tgt_mask[:, 1:]], b.tgt_out[:, :-1][b.tgt_mask[:, 1:]])
    codec = dm.codec
    first = batches[0]
    k = int(first.index[0])
    assert codec.decode(first.tgt_out[0].tolist(), "tgt") == EN[k]
    assert dm.references("test") == EN[2:5] and dm.sources("test") == DE[2:5]


def test_vocabulary_is_cached_and_travels_in_the_state_dict(raw_corpus: Path, tmp_path: Path) -> None:
    dm = _module(raw_corpus, tmp_path)
    dm.setup("fit")
    assert len(list((tmp_path / "cache").glob("codec-de-en-*.json"))) == 1
    state = dm.state_dict()
    other = _module(raw_corpus, tmp_path, vocab_size=60)  # a different vocabulary ...
    other.load_state_dict(state)  # ... replaced by the checkpoint's
    assert other.codec.to_json() == dm.codec.to_json()
    assert other.encoded("test").src == dm.encoded("test").src


def test_misaligned_files_are_rejected(raw_corpus: Path, tmp_path: Path) -> None:
    _write(raw_corpus / "train.en.gz", EN[:5])
    with pytest.raises(ValueError, match=r"misaligned parallel files: .*train.de.gz has 6 lines but .*train.en.gz has 5"):
        read_parallel(raw_corpus, "train", "de", "en")
    with pytest.raises(ValueError, match="misaligned"):
        _module(raw_corpus, tmp_path).setup("fit")


def test_unknown_language_suffix_names_what_is_there(raw_corpus: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no train.fr or train.fr.gz .*language suffixes \['de', 'en'\]"):
        read_parallel(raw_corpus, "train", "fr", "en")
    with pytest.raises(ValueError, match="must differ"):
        read_parallel(raw_corpus, "train", "en", "en")


def test_empty_and_long_training_pairs_are_skipped_eval_pairs_kept(raw_corpus: Path, tmp_path: Path) -> None:
    _write(raw_corpus / "train.de.gz", DE[:5] + [""])
    _write(raw_corpus / "train.en.gz", EN[:4] + ["A very long sentence " * 10, "Some text."])
    _write(raw_corpus / "test_2016_flickr.de.gz", ["Ein sehr langer Satz " * 10, ""])
    _write(raw_corpus / "test_2016_flickr.en.gz", ["A long one.", ""])
    dm = _module(raw_corpus, tmp_path, max_len=30)
    assert dm.encoded("train").index == [0, 1, 2, 3]  # pair 4 too long, pair 5 has an empty source
    test = dm.encoded("test")
    assert test.index == [0, 1] and len(test.src[0]) == 30 and test.src[0][-1] == EOS and test.src[1] == [EOS]


def test_prepared_layout_references_are_detokenised(prepared_corpus: Path, tmp_path: Path) -> None:
    dm = ParallelText(data_dir=str(prepared_corpus), cache_dir=str(tmp_path / "c"), batch_size=2)
    dm.setup("test")
    assert dm.references("test") == ["a man rides a bike.", "two dogs play.", "a dog."]
    assert dm.src_vocab_size == 4 + 11  # ein mann fähr@@ t fahr@@ rad . zwei hunde spielen hund
    batch = next(iter(dm.test_dataloader()))
    assert batch.src.dtype == torch.long and batch.src.shape[0] == 2


@pytest.mark.parametrize("shuffle", [False, True], ids=["fixed", "shuffled"])
def test_bucket_sampler_groups_similar_lengths(shuffle: bool) -> None:
    lengths = [5, 1, 9, 2, 8, 3, 7, 4, 6]
    sampler = BucketBatchSampler(lengths, 3, shuffle=shuffle, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 and sorted(i for b in batches for i in b) == list(range(9))
    groups = sorted(sorted(lengths[i] for i in b) for b in batches)
    assert groups == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    if shuffle:  # the batch order changes between epochs, deterministically per seed
        orders = {tuple(map(tuple, BucketBatchSampler(lengths, 3, True, seed=1).__iter__())) for _ in range(2)}
        assert len(orders) == 1
        epochs = [list(map(tuple, sampler)) for _ in range(4)]
        assert len({tuple(e) for e in epochs}) > 1


@pytest.mark.parametrize("n_items", [10, 9, 3], ids=["even", "padded", "fewer-batches-than-ranks"])
def test_bucket_sampler_shards_batches_across_processes(n_items: int) -> None:
    """Data-parallel ranks see disjoint batches of one shared permutation, equally many each."""
    lengths = [(7 * i) % 11 for i in range(n_items)]
    whole = list(BucketBatchSampler(lengths, 3, shuffle=True, seed=2))
    shards = [list(BucketBatchSampler(lengths, 3, True, seed=2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(BucketBatchSampler(lengths, 3, True, num_replicas=2, rank=1))
    seen = [tuple(b) for shard in shards for b in shard]
    assert {tuple(b) for b in whole} == set(seen)  # every batch is somewhere
    if len(whole) % 2 == 0:
        assert sorted(seen) == sorted(tuple(b) for b in whole)  # and only once when it divides evenly
    with pytest.raises(ValueError, match="rank must be in"):
        BucketBatchSampler(lengths, 3, True, num_replicas=2, rank=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tokenization="bpe"), "tokenization must be one of"),
        (dict(vocab_size=3), "vocab_size"),
        (dict(max_len=0), "max_len"),
        (dict(batch_size=0), "batch_size"),
    ],
    ids=["tokenization", "vocab", "max_len", "batch"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ParallelText(**kwargs)


def test_presets_expose_their_defaults_to_a_config_parser() -> None:
    """LightningCLI (jsonargparse) sees each preset's own defaults, not the base class's."""
    from jsonargparse import ArgumentParser

    from snnlstm.datamodules import IWSLT14

    for cls, want in ((Multi30k, ("val", "test_2016_flickr", "raw")), (IWSLT14, ("valid", "test", "prepared"))):
        parser = ArgumentParser()
        parser.add_class_arguments(cls, "data")
        data = parser.parse_args(["--data.batch_size", "8"]).data
        assert (data.val_split, data.test_split, data.tokenization, data.batch_size) == (*want, 8)
        module = cls(**vars(data))
        assert (module.splits["val"], module.splits["test"], module.hparams.tokenization) == want


def test_vocab_from_a_codec_file_or_checkpoint_and_its_errors(raw_corpus: Path, tmp_path: Path) -> None:
    from snnlstm.datamodules.translation import load_codec

    dm = _module(raw_corpus, tmp_path)
    (tmp_path / "codec.json").write_text(dm.codec.to_json(), encoding="utf-8")
    torch.save({"state_dict": {}, "Multi30k": dm.state_dict()}, tmp_path / "model.ckpt")
    for source in ("codec.json", "model.ckpt"):
        other = _module(raw_corpus, tmp_path, vocab_size=60, vocab_from=str(tmp_path / source))
        assert other.codec.to_json() == dm.codec.to_json()
    with pytest.raises(FileNotFoundError, match="vocab_from"):
        load_codec(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="holds no translation vocabulary"):
        load_codec(tmp_path / "plain.ckpt")


def test_predict_file_in_order_and_missing(raw_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("Ein Hund.\nZwei Männer laufen schnell.\n", encoding="utf-8")
    dm = _module(raw_corpus, tmp_path, predict_file=str(tmp_path / "in.txt"))
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch.index.tolist() == [0, 1] and dm.codec.decode(batch.src[1].tolist(), "src") == "Zwei Männer laufen schnell."
    with pytest.raises(FileNotFoundError, match="predict_file"):
        _module(raw_corpus, tmp_path, predict_file=str(tmp_path / "nope.txt")).predict_dataloader()


def test_predict_file_from_stdin(raw_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Ein Hund.\n"))
    dm = _module(raw_corpus, tmp_path, predict_file="-")
    assert len(next(iter(dm.predict_dataloader())).index) == 1


def test_test_subset_is_seeded(raw_corpus: Path, tmp_path: Path) -> None:
    subsets = [_module(raw_corpus, tmp_path, test_subset=2, subset_seed=s).encoded("test").index for s in (0, 0, 1)]
    assert subsets[0] == subsets[1] and len(subsets[0]) == 2 and set(subsets[0]) <= {0, 1, 2}
    assert _module(raw_corpus, tmp_path, test_subset=5).encoded("test").index == [0, 1, 2]  # larger than the split
    with pytest.raises(ValueError, match="test_subset"):
        _module(raw_corpus, tmp_path, test_subset=0)


# ---------------------------------------------------------------------- damaged text files and caches
def _latin1_on_line_3(path: Path) -> None:
    """DE with "fährt" moved to line 3 and that line encoded as Latin-1 (byte 0xe4), the others as UTF-8."""
    lines = DE[1:3] + DE[:1] + DE[3:]
    blob = b"".join(line.encode("latin-1" if k == 2 else "utf-8") + b"\n" for k, line in enumerate(lines))
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)


@pytest.mark.parametrize("suffix", [".gz", ""], ids=["gzip", "plain"])
def test_non_utf8_corpus_names_the_file_the_line_and_the_fix(tmp_path: Path, suffix: str) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        _write(root / f"{split}.de{suffix}", DE)
        _write(root / f"{split}.en{suffix}", EN)
    bad = root / f"train.de{suffix}"
    _latin1_on_line_3(bad)
    with pytest.raises(ValueError, match=r"is not UTF-8 text: line 3") as info:
        read_parallel(root, "train", "de", "en")
    message = str(info.value)
    assert str(bad) in message and "iconv -f latin1 -t utf-8" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one error, no decoder trace
    with pytest.raises(ValueError, match=r"train\.de.* is not UTF-8 text: line 3"):
        _module(root, tmp_path).setup("fit")


def test_non_utf8_predict_file_is_named(raw_corpus: Path, tmp_path: Path) -> None:
    _latin1_on_line_3(tmp_path / "in.txt")
    dm = _module(raw_corpus, tmp_path, predict_file=str(tmp_path / "in.txt"))
    with pytest.raises(ValueError, match=r"in\.txt is not UTF-8 text: line 3.*iconv -f latin1 -t utf-8"):
        dm.predict_dataloader()


def test_truncated_gzip_corpus_is_named(raw_corpus: Path) -> None:
    bad = raw_corpus / "train.en.gz"
    bad.write_bytes(bad.read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"train\.en\.gz is truncated or not a gzip file") as info:
        read_parallel(raw_corpus, "train", "de", "en")
    assert info.value.__cause__ is None


def test_damaged_vocabulary_cache_is_rebuilt(raw_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    codec = _module(raw_corpus, tmp_path).codec
    (cached,) = (tmp_path / "cache").glob("codec-de-en-*.json")
    cached.write_text('{"kind": "subword", "tokeni', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        again = _module(raw_corpus, tmp_path).codec
    assert again.vocab_size("src") == codec.vocab_size("src") and again.decode(again.encode(DE[0], "src"), "src") == DE[0]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 1 and str(cached) in messages[0] and "damaged" in messages[0]
    assert codec_from_json(cached.read_text(encoding="utf-8")).to_json() == again.to_json()  # rewritten whole
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary file left


def test_default_vocabulary_cache_is_the_user_cache(raw_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNLSTM_CACHE_DIR", str(tmp_path / "own"))
    assert Multi30k(data_dir=str(raw_corpus)).cache_dir == tmp_path / "own" / "text"
    monkeypatch.delenv("SNNLSTM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Multi30k(data_dir=str(raw_corpus)).cache_dir == tmp_path / "xdg" / "snnlstm" / "text"
