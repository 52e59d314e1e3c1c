"""Text codecs of the translation data: sentence <-> token ids, for either kind of parallel corpus.

* :class:`PreparedCodec`: text already tokenised and split into subwords (fairseq's
  ``prepare-iwslt14.sh`` output: Moses tokens, BPE pieces ending in ``@@``). One word-level vocabulary
  per language is counted from the training split, like ``fairseq-preprocess``; decoding joins the
  pieces (``--remove-bpe``) and Moses-detokenises.
* :class:`SubwordCodec`: raw text (one sentence a line). Sentences are Moses-tokenised
  (``sacremoses``) and a joint byte-pair-encoding vocabulary for both languages is learned on the training
  split with Hugging Face ``tokenizers``; decoding merges the pieces and Moses-detokenises.

Both share the special tokens :data:`SPECIALS` (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3) and
serialise to a JSON string (:meth:`TextCodec.to_json` / :func:`codec_from_json`) that checkpoints carry.
"""

from __future__ import annotations

import abc
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["SPECIALS", "PAD", "BOS", "EOS", "UNK", "TextCodec", "PreparedCodec", "SubwordCodec", "codec_from_json"]

SPECIALS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
BPE_MARK = "@@"  # fairseq/subword-nmt continuation marker
_SUFFIX = "</w>"  # end-of-word suffix of the learned BPE


class TextCodec(abc.ABC):
    """Encodes sentences of either language to token ids and decodes ids to detokenised text.

    Ids ``0..3`` are :data:`SPECIALS`; :meth:`encode` adds neither ``<s>`` nor ``</s>`` and
    :meth:`decode` drops every special token.
    """

    def __init__(self, src_lang: str, tgt_lang: str) -> None:
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self._moses: dict[tuple[str, str], Any] = {}

    @abc.abstractmethod
    def vocab_size(self, side: str) -> int:
        """Vocabulary size of ``side`` (``"src"`` or ``"tgt"``), specials included."""

    @abc.abstractmethod
    def encode(self, text: str, side: str) -> list[int]:
        """Token ids of one sentence of ``side``."""

    @abc.abstractmethod
    def tokens(self, ids: Sequence[int], side: str) -> list[str]:
        """Subword strings of ``ids`` (specials dropped)."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int], side: str) -> str:
        """Detokenised sentence of ``ids`` (specials dropped, subwords merged)."""

    @abc.abstractmethod
    def to_json(self) -> str:
        """The codec as a JSON string (see :func:`codec_from_json`)."""

    def lang(self, side: str) -> str:
        """Language code of ``side``."""
        if side not in ("src", "tgt"):
            raise ValueError(f"side must be 'src' or 'tgt', got {side!r}")
        return self.src_lang if side == "src" else self.tgt_lang

    def _moses_tool(self, kind: str, side: str) -> Any:
        key = (kind, side)
        if key not in self._moses:
            from sacremoses import MosesDetokenizer, MosesTokenizer

            cls = MosesTokenizer if kind == "tok" else MosesDetokenizer
            self._moses[key] = cls(lang=self.lang(side))
        return self._moses[key]

    def moses_tokenize(self, text: str, side: str) -> str:
        """Moses-tokenised ``text`` (no XML escaping), tokens separated by single spaces."""
        return self._moses_tool("tok", side).tokenize(text, escape=False, return_str=True)

    def moses_detokenize(self, tokens: Sequence[str], side: str) -> str:
        """Moses-detokenised sentence of ``tokens``."""
        return self._moses_tool("detok", side).detokenize(list(tokens))


def _count_tokens(lines: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


class PreparedCodec(TextCodec):
    """Codec of pre-tokenised, BPE-split text: one vocabulary per language, counted on training text.

    Args:
        src_vocab: source tokens in id order after the specials.
        tgt_vocab: target tokens likewise.
        src_lang, tgt_lang: language codes (Moses detokenisation rules).
    """

    kind = "prepared"

    def __init__(self, src_vocab: Sequence[str], tgt_vocab: Sequence[str], src_lang: str, tgt_lang: str) -> None:
        super().__init__(src_lang, tgt_lang)
        self.itos = {"src": list(SPECIALS) + list(src_vocab), "tgt": list(SPECIALS) + list(tgt_vocab)}
        self.stoi = {side: {t: i for i, t in enumerate(itos)} for side, itos in self.itos.items()}

    @classmethod
    def build(
        cls, src_lines: Iterable[str], tgt_lines: Iterable[str], src_lang: str, tgt_lang: str, min_count: int = 1
    ) -> PreparedCodec:
        """Counts the training text's tokens; keeps those seen ``min_count`` times, most frequent first."""

        def vocab(lines: Iterable[str]) -> list[str]:
            counts = _count_tokens(lines)
            keep = [t for t, n in counts.items() if n >= min_count and t not in SPECIALS]
            return sorted(keep, key=lambda t: (-counts[t], t))

        return cls(vocab(src_lines), vocab(tgt_lines), src_lang, tgt_lang)

    def vocab_size(self, side: str) -> int:
        return len(self.itos[self._side(side)])

    def _side(self, side: str) -> str:
        self.lang(side)
        return side

    def encode(self, text: str, side: str) -> list[int]:
        stoi = self.stoi[self._side(side)]
        return [stoi.get(t, UNK) for t in text.split()]

    def tokens(self, ids: Sequence[int], side: str) -> list[str]:
        itos = self.itos[self._side(side)]
        return [itos[i] for i in ids if i >= len(SPECIALS)]

    def decode(self, ids: Sequence[int], side: str) -> str:
        return self.postprocess(self.tokens(ids, side), side)

    def postprocess(self, pieces: Sequence[str], side: str) -> str:
        """BPE pieces to a detokenised sentence: fairseq's ``--remove-bpe``, then Moses detokenisation."""
        words = (" ".join(pieces) + " ").replace(BPE_MARK + " ", "").split()
        return self.moses_detokenize(words, side)

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang, "src": self.itos["src"][4:], "tgt": self.itos["tgt"][4:]}
        )


class SubwordCodec(TextCodec):
    """Codec of raw text: Moses tokenisation, then a joint BPE vocabulary (Hugging Face ``tokenizers``).

    Args:
        tokenizer_json: a serialised ``tokenizers.Tokenizer`` (BPE model with :data:`SPECIALS` first).
        src_lang, tgt_lang: language codes (Moses rules).
        lowercase: lowercase sentences before tokenising.
    """

    kind = "subword"

    def __init__(self, tokenizer_json: str, src_lang: str, tgt_lang: str, lowercase: bool = False) -> None:
        super().__init__(src_lang, tgt_lang)
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.lowercase = lowercase
        for i, special in enumerate(SPECIALS):
            if self.tokenizer.token_to_id(special) != i:
                raise ValueError(f"tokenizer must map {special!r} to id {i}; rebuild it with SubwordCodec.build")

    @classmethod
    def build(
        cls,
        src_lines: Sequence[str],
        tgt_lines: Sequence[str],
        src_lang: str,
        tgt_lang: str,
        vocab_size: int = 8000,
        lowercase: bool = False,
        min_frequency: int = 2,
    ) -> SubwordCodec:
        """Learns the joint BPE vocabulary on the Moses-tokenised training sentences of both languages."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        probe = cls.__new__(cls)
        TextCodec.__init__(probe, src_lang, tgt_lang)
        probe.lowercase = lowercase

        def corpus() -> Iterable[str]:
            for side, lines in (("src", src_lines), ("tgt", tgt_lines)):
                for line in lines:
                    yield probe._pretokenize(line, side)

        tokenizer = Tokenizer(models.BPE(unk_token=SPECIALS[UNK], end_of_word_suffix=_SUFFIX))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tokenizer.decoder = decoders.BPEDecoder(suffix=_SUFFIX)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIALS),
            end_of_word_suffix=_SUFFIX,
            show_progress=False,
        )
        tokenizer.train_from_iterator(corpus(), trainer=trainer, length=len(src_lines) + len(tgt_lines))
        return cls(tokenizer.to_str(), src_lang, tgt_lang, lowercase)

    def _pretokenize(self, text: str, side: str) -> str:
        return self.moses_tokenize(text.lower() if self.lowercase else text, side)

    def vocab_size(self, side: str) -> int:
        self.lang(side)
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, side: str) -> list[int]:
        return self.tokenizer.encode(self._pretokenize(text, side), add_special_tokens=False).ids

    def tokens(self, ids: Sequence[int], side: str) -> list[str]:
        self.lang(side)
        return [self.tokenizer.id_to_token(i) for i in ids if i >= len(SPECIALS)]

    def decode(self, ids: Sequence[int], side: str) -> str:
        words = self.tokenizer.decode([i for i in ids if i >= len(SPECIALS)], skip_special_tokens=True).split()
        return self.moses_detokenize(words, side)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "src_lang": self.src_lang,
                "tgt_lang": self.tgt_lang,
                "lowercase": self.lowercase,
                "tokenizer": self.tokenizer.to_str(),
            }
        )


def codec_from_json(text: str) -> TextCodec:
    """The codec serialised by :meth:`TextCodec.to_json`.

    Raises:
        ValueError: not a codec serialisation.
    """
    try:
        data = json.loads(text)
        kind = data["kind"]
        if kind == PreparedCodec.kind:
            return PreparedCodec(data["src"], data["tgt"], data["src_lang"], data["tgt_lang"])
        if kind == SubwordCodec.kind:
            return SubwordCodec(data["tokenizer"], data["src_lang"], data["tgt_lang"], data["lowercase"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"not a snnlstm text codec (JSON with kind 'prepared' or 'subword'): {err}") from err
    raise ValueError(f"unknown codec kind {kind!r}; allowed: {PreparedCodec.kind}, {SubwordCodec.kind}")
