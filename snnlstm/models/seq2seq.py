"""Encoder-decoder LSTM with attention and input feeding (Ponghiran & Roy's IWSLT14 model, fairseq-style).

Encoder: ``embedding -> SpikingLSTM -> dropout``; its outputs are the attention memory and its state
after each sentence's last token (right padding, ``lengths``) starts the decoder.

Decoder, per target position ``t`` (input feeding: the previous attentional output joins the input)::

    x_t   = [E y_{t-1}; o_{t-1}]                      (o_0 = 0)
    h_t   = LSTM(x_t, state_{t-1})
    a_t   = softmax_s(enc_s . W_a h_t)                (padding masked)
    o_t   = dropout(tanh(W_o [sum_s a_ts enc_s; h_t]))
    p_t   = softmax(W_out o_t)

Both LSTMs are :class:`~snnlstm.nn.lstm.SpikingLSTM` layers, so every cell type and every mode (``ann``,
Ponghiran & Roy's ``hybrid``, Datta et al.'s spiking ``snn``) applies to them. In ``snn`` mode the LSTM
state carried from the encoder to the decoder and from token to token is the per-step state
(``h`` spikes and ``c`` at each of the T SNN steps, ``[L, T_snn, B, H]``): the decoder then runs exactly
as if the whole target were one pipelined sequence, one token per call; attention reads the encoder's
spike rates. Shapes use ``B`` batch, ``S`` source and ``T`` target length, ``E`` embedding, ``H``
hidden, ``V`` vocabulary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..nn.lstm import SpikingLSTM


class EncoderOutput(NamedTuple):
    """Attention memory ``out [B, S, H]``, its padding ``mask [B, S]`` (True on tokens) and the final
    state ``(h, c)``, each ``[L, B, H]`` (``[L, T_snn, B, H]`` in SNN mode)."""

    out: Tensor
    mask: Tensor
    h: Tensor
    c: Tensor


class DecoderState(NamedTuple):
    """LSTM state ``h, c [L, B, H]`` (``[L, T_snn, B, H]`` in SNN mode) and the input feed ``feed [B, H]``
    (the last attentional output)."""

    h: Tensor
    c: Tensor
    feed: Tensor


class Attention(nn.Module):
    """Global attention with a bilinear score and ``tanh`` output (the reference's ``AttentionLayer``).

    ``score_s = enc_s . (W_a h)``, ``out = tanh(W_o [context; h])``; both maps without bias, orthogonal init.
    """

    def __init__(self, hidden_size: int, memory_size: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden_size, memory_size, bias=False)
        self.out = nn.Linear(memory_size + hidden_size, hidden_size, bias=False)
        nn.init.orthogonal_(self.score.weight)
        nn.init.orthogonal_(self.out.weight)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``query [B, H]``, ``memory [B, S, M]``, ``mask [B, S]`` -> output ``[B, H]``, weights ``[B, S]``."""
        scores = torch.bmm(memory, self.score(query).unsqueeze(2)).squeeze(2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return torch.tanh(self.out(torch.cat([context, query], dim=1))), weights


class Seq2Seq(nn.Module):
    """The encoder-decoder network (see the module docstring).

    Args:
        src_vocab_size, tgt_vocab_size: vocabularies (specials included; id 0 is padding).
        embed_dim: embedding width ``E``.
        hidden_size: LSTM width ``H`` of encoder and decoder.
        num_layers: LSTM layers of encoder and decoder.
        dropout: on the encoder outputs, between LSTM layers and on the attentional outputs.
        tie_embeddings: the output projection reuses the target embedding (needs ``E == H``).
        **lstm_kwargs: further :class:`~snnlstm.nn.lstm.SpikingLSTM` arguments (``cell``, ``mode``,
            ``timesteps``, ``clamp_c``, ...), the same for both LSTMs.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.2,
        tie_embeddings: bool = False,
        **lstm_kwargs: Any,
    ) -> None:
        super().__init__()
        if tie_embeddings and embed_dim != hidden_size:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_size, got {embed_dim} and {hidden_size}")
        self.src_embed = nn.Embedding(src_vocab_size, embed_dim, padding_idx=0)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=0)
        self.encoder = SpikingLSTM(embed_dim, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True, **lstm_kwargs)
        self.decoder = SpikingLSTM(embed_dim + hidden_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True, **lstm_kwargs)
        self.attention = Attention(hidden_size, hidden_size)
        self.drop = nn.Dropout(dropout)
        self.project = nn.Linear(hidden_size, tgt_vocab_size)
        if tie_embeddings:
            self.project.weight = self.tgt_embed.weight
        self.hidden_size = hidden_size

    def encode(self, src: Tensor, mask: Tensor) -> EncoderOutput:
        """Encode right-padded ``src [B, S]`` with its ``mask [B, S]``."""
        lengths = mask.sum(dim=1)
        result = self.encoder(self.src_embed(src), lengths=lengths)
        return EncoderOutput(self.drop(result.output), mask, *result.carry)

    def initial_state(self, enc: EncoderOutput) -> DecoderState:
        """Decoder state before the first target token: the encoder's final state, zero input feed."""
        return DecoderState(enc.h, enc.c, enc.h.new_zeros(enc.h.shape[-2], self.hidden_size))

    def step(self, prev: Tensor, state: DecoderState, enc: EncoderOutput) -> tuple[Tensor, DecoderState]:
        """One target position: previous tokens ``[B]`` -> logits ``[B, V]`` and the new state."""
        state = self._advance(prev, state, enc)
        return self.project(state.feed), state

    def _advance(self, prev: Tensor, state: DecoderState, enc: EncoderOutput) -> DecoderState:
        """The decoder state after previous tokens ``[B]``; its ``feed`` is the attentional output."""
        x = torch.cat([self.tgt_embed(prev), state.feed], dim=1).unsqueeze(1)
        result = self.decoder(x, (state.h, state.c))
        out, _ = self.attention(result.output[:, 0], enc.out, enc.mask)
        return DecoderState(*result.carry, self.drop(out))

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``[B, T, V]`` for decoder inputs ``tgt_in [B, T]``."""
        enc = self.encode(src, src_mask)
        state = self.initial_state(enc)
        outs = []
        for prev in tgt_in.unbind(1):
            state = self._advance(prev, state, enc)
            outs.append(state.feed)
        return self.project(torch.stack(outs, dim=1))  # one [B*T, H] x [H, V] product


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """The decoder state of the batch rows ``index`` (beam search bookkeeping)."""
    return DecoderState(state.h.index_select(-2, index), state.c.index_select(-2, index), state.feed.index_select(0, index))


def repeat_encoder(enc: EncoderOutput, times: int) -> EncoderOutput:
    """Every sentence's encoding ``times`` times in a row (``[B*times, ...]``), for the beams."""
    return EncoderOutput(
        enc.out.repeat_interleave(times, dim=0),
        enc.mask.repeat_interleave(times, dim=0),
        enc.h.repeat_interleave(times, dim=-2),
        enc.c.repeat_interleave(times, dim=-2),
    )
