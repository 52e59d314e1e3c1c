"""Batched greedy and beam search for :class:`~snnlstm.models.seq2seq.Seq2Seq`.

Beam search keeps ``K`` hypotheses per sentence, all sentences and beams in one ``[B*K]`` batch. Each
step scores ``K*V`` continuations per sentence and looks at the best ``2K``: an end-of-sentence
candidate among the first ``K`` finishes a hypothesis with the length-normalised score
``log p(y) / |y|^alpha`` (``|y|`` counts ``</s>``), the best ``K`` other candidates go on. A sentence is
done after ``K`` finished hypotheses (fairseq's rule); at the length limit the live beams are finished.
The result is each sentence's best finished hypothesis. With ``K = 1`` this is exactly greedy search.
"""

from __future__ import annotations

import torch
from torch import Tensor

from snnlstm.datamodules.text import BOS, EOS

from .seq2seq import Seq2Seq, reorder_state, repeat_encoder


def max_target_length(src_mask: Tensor, max_len_a: float, max_len_b: int) -> int:
    """``a * S + b`` for the longest source ``S`` of the batch (at least 1)."""
    return max(1, int(max_len_a * int(src_mask.sum(dim=1).max()) + max_len_b))


def _strip(rows: Tensor) -> list[list[int]]:
    """Token lists up to (not including) the first ``</s>``."""
    out = []
    for row in rows.tolist():
        out.append(row[: row.index(EOS)] if EOS in row else row)
    return out


@torch.no_grad()
def greedy_search(model: Seq2Seq, src: Tensor, src_mask: Tensor, max_len: int) -> list[list[int]]:
    """The most probable token at every step until ``</s>`` (or ``max_len`` tokens), per sentence."""
    enc = model.encode(src, src_mask)
    state = model.initial_state(enc)
    batch = src.shape[0]
    prev = src.new_full((batch,), BOS)
    tokens = src.new_full((batch, max_len + 1), EOS)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for t in range(max_len):
        logits, state = model.step(prev, state, enc)
        prev = logits.argmax(dim=1).masked_fill(done, EOS)
        tokens[:, t] = prev
        done |= prev == EOS
        if bool(done.all()):
            break
    return _strip(tokens)


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: Tensor, src_mask: Tensor, beam_size: int, max_len: int, length_penalty: float = 1.0
) -> list[list[int]]:
    """Best length-normalised hypothesis per sentence (see the module docstring).

    Args:
        model: the network (in eval mode).
        src, src_mask: ``[B, S]`` right-padded sources and their mask.
        beam_size: hypotheses kept per sentence, ``K >= 1``.
        max_len: most target tokens before ``</s>``.
        length_penalty: ``alpha`` of the normalisation (0: raw log-probability).

    Returns:
        Token ids per sentence, without ``<s>`` and ``</s>``.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    batch, k = src.shape[0], beam_size
    enc = repeat_encoder(model.encode(src, src_mask), k)
    state = model.initial_state(enc)
    device = src.device
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # every beam starts as the same hypothesis: keep one
    hyps = src.new_full((batch * k, max_len + 1), EOS)
    prev = src.new_full((batch * k,), BOS)
    best_score = torch.full((batch,), float("-inf"), device=device)
    best = src.new_full((batch, max_len + 1), EOS)
    finished = torch.zeros(batch, dtype=torch.long, device=device)
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)
    for t in range(max_len + 1):
        logits, state = model.step(prev, state, enc)
        logp = torch.log_softmax(logits.float(), dim=1)
        vocab = logp.shape[1]
        if t == max_len:  # the limit: every live hypothesis ends here
            forced = torch.full_like(logp, float("-inf"))
            forced[:, EOS] = logp[:, EOS]
            logp = forced
        cand = (scores.view(-1, 1) + logp).view(batch, k * vocab)
        top_scores, top_index = cand.topk(min(2 * k, k * vocab), dim=1)  # [B, 2K]
        beam, token = top_index // vocab, top_index % vocab
        is_eos = token == EOS
        # finished hypotheses: end-of-sentence candidates among the best K, for unfinished sentences
        rank = torch.arange(top_scores.shape[1], device=device).unsqueeze(0)
        live = (finished < k).unsqueeze(1)
        ends = is_eos & (rank < k) & live & torch.isfinite(top_scores)
        normed = top_scores / float(t + 1) ** length_penalty
        normed = normed.masked_fill(~ends, float("-inf"))
        cand_best, cand_pos = normed.max(dim=1)
        improve = cand_best > best_score
        if bool(improve.any()):
            rows = (offsets.squeeze(1) + beam.gather(1, cand_pos.unsqueeze(1)).squeeze(1))[improve]
            best[improve] = hyps[rows]
            best[improve, t] = EOS
            best_score = torch.where(improve, cand_best, best_score)
        finished += ends.sum(dim=1)
        if bool((finished >= k).all()) or t == max_len:
            break
        # the best K non-EOS candidates go on
        go_scores = top_scores.masked_fill(is_eos, float("-inf"))
        keep_scores, keep_pos = go_scores.topk(k, dim=1)
        keep_beam = beam.gather(1, keep_pos)
        keep_token = token.gather(1, keep_pos)
        rows = (offsets + keep_beam).view(-1)
        hyps = hyps.index_select(0, rows)
        hyps[:, t] = keep_token.view(-1)
        scores = keep_scores
        state = reorder_state(state, rows)
        prev = keep_token.view(-1)
    return _strip(best)
