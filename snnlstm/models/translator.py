"""``Translator``: the LightningModule of the spiking sequence-to-sequence experiments.

Trains :class:`~snnlstm.models.seq2seq.Seq2Seq` with token-level cross-entropy (teacher forcing),
validates with greedy search and tests with beam search, scoring detokenised, BPE-removed output with
sacreBLEU against the DataModule's references (:class:`~snnlstm.datamodules.ParallelText`). The test-time
switch ``eval_mode``/``eval_timesteps`` runs the same checkpoint with both LSTMs as Ponghiran & Roy's
hybrid cells (``hybrid``, T SNN steps per token, T*S for the source), converted to Datta et al.'s
spiking LSTMs (``snn``: IF gate neurons with the optimal bias shift and ternary tanh neurons, direct
input, no SNN training; the encoder pipelined over T+S-1 steps, the decoder T steps per token) or
non-spiking (``ann``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import torch
from lightning import LightningModule
from lightning.pytorch.utilities import move_data_to_device
from torch import Tensor, nn
from torchmetrics import MeanMetric

from ..conversion.data import eval_mode_switch
from ..nn.lstm import SpikingLSTM
from .seq2seq import Seq2Seq

__all__ = ["Translator"]

SEARCHES: tuple[str, ...] = ("greedy", "beam")
TRANSLATOR_EVAL_MODES: tuple[str, ...] = ("auto", "ann", "hybrid", "snn")
#: training batches a sigmoid/tanh (``cell="baseline"``) translator is calibrated on for ``eval_mode: snn``


class Translator(LightningModule):
    """Encoder-decoder LSTM with attention for translation.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (linked from the DataModule by the CLI).
        embed_dim, hidden_size, num_layers, dropout, tie_embeddings: see
            :class:`~snnlstm.models.seq2seq.Seq2Seq` (defaults: the reference's 256/256/1 layer/0.2, untied).
        cell: LSTM cell of encoder and decoder: ``"baseline"`` (sigmoid/tanh), ``"modified"`` (Ponghiran &
            Roy's ModifiedLSTMCell, needed for ``hybrid``) or ``"lstm"`` (Datta's hard cell).
        clamp_c: clamp the carried cell state to ``[-1, 1]`` (the reference's NMT model does not).
        optimizer: ``"adagrad"`` (the reference), ``"adam"`` or ``"sgd"``.
        lr: learning rate (reference: Adagrad 0.02).
        beam_size: test-time beam (1 = greedy).
        length_penalty: ``alpha`` of the beam's length normalisation.
        max_len_a, max_len_b: at most ``a * source_length + b`` target tokens.
        eval_mode: ``"auto"`` (as trained), ``"ann"``, ``"hybrid"`` (Ponghiran & Roy) or ``"snn"``
            (Datta et al.'s conversion; a ``baseline`` (sigmoid/tanh) cell is first calibrated on 8
            teacher-forced training batches of the DataModule) at test and predict time.
        eval_timesteps: SNN time steps per token of the hybrid or spiking cells (None keeps the layers' own).

    Raises:
        ValueError: an unknown option or an out-of-range value.
    """

    def __init__(
        self,
        src_vocab_size: int = 8000,
        tgt_vocab_size: int = 8000,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.2,
        tie_embeddings: bool = False,
        cell: Literal["baseline", "modified", "lstm"] = "baseline",
        clamp_c: bool = False,
        optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad",
        lr: float = 0.02,
        beam_size: int = 5,
        length_penalty: float = 1.0,
        max_len_a: float = 1.2,
        max_len_b: int = 10,
        eval_mode: Literal["auto", "ann", "hybrid", "snn"] = "auto",
        eval_timesteps: int | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in ("adagrad", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {optimizer!r}; allowed: adagrad, adam, sgd")
        if eval_mode not in TRANSLATOR_EVAL_MODES:
            raise ValueError(f"unknown eval_mode {eval_mode!r}; allowed: {', '.join(TRANSLATOR_EVAL_MODES)}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        if eval_timesteps is not None and eval_timesteps < 1:
            raise ValueError(f"eval_timesteps must be None or >= 1, got {eval_timesteps}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.save_hyperparameters()
        self.net = Seq2Seq(
            src_vocab_size, tgt_vocab_size, embed_dim, hidden_size, num_layers, dropout, tie_embeddings, cell=cell, clamp_c=clamp_c
        )
        self.criterion = nn.CrossEntropyLoss(ignore_index=0)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self._hyps: dict[int, str] = {}
        self._eval_switch: contextlib.ExitStack | None = None
        #: detokenised translations of the last test run, in test-set order (of the translated pairs)
        self.test_translations: list[str] = []

    # ------------------------------------------------------------------ helpers
    def lstm_layers(self) -> list[SpikingLSTM]:
        """The encoder and decoder LSTMs."""
        return [self.net.encoder, self.net.decoder]

    def translate(self, src: Tensor, src_mask: Tensor, beam_size: int | None = None) -> list[list[int]]:
        """Target ids per sentence (greedy for ``beam_size == 1``, else beam search)."""
        from .search import beam_search, greedy_search, max_target_length

        hp = self.hparams
        beam = hp.beam_size if beam_size is None else beam_size
        max_len = max_target_length(src_mask, hp.max_len_a, hp.max_len_b)
        if beam == 1:
            return greedy_search(self.net, src, src_mask, max_len)
        return beam_search(self.net, src, src_mask, beam, max_len, hp.length_penalty)

    def _data(self) -> Any:
        """The trainer's ParallelText DataModule (its codec decodes translations, its references score them)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "codec"):
            raise RuntimeError("Translator needs a ParallelText DataModule (its codec decodes translations for BLEU)")
        return datamodule

    # ------------------------------------------------------------------ steps
    def _loss(self, batch: Any) -> Tensor:
        logits = self.net(batch.src, batch.src_mask, batch.tgt_in)
        return self.criterion(logits.flatten(0, 1), batch.tgt_out.flatten())

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        return loss

    def _evaluate(self, batch: Any, stage: str, beam: int) -> None:
        loss = self._loss(batch)
        getattr(self, f"{stage}_loss")(loss)
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), on_step=False, on_epoch=True, prog_bar=True)
        codec = self._data().codec
        for k, ids in zip(batch.index.tolist(), self.translate(batch.src, batch.src_mask, beam)):
            self._hyps[k] = codec.decode(ids, "tgt")

    def _bleu(self, stage: str) -> tuple[float, list[str]]:
        """Corpus BLEU of the translated pairs of ``stage`` (all of them, or the DataModule's test subset)
        against their references, and the translations in split order."""
        import sacrebleu

        all_refs = self._data().references(stage)
        keys = sorted(self._hyps)  # the translated pairs (a test subset, or fewer batches, give fewer)
        hyps, refs = [self._hyps[k] for k in keys], [all_refs[k] for k in keys]
        self._hyps = {}
        return float(sacrebleu.corpus_bleu(hyps, [refs]).score), hyps

    def on_validation_epoch_start(self) -> None:
        self._hyps = {}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", beam=1)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._hyps = {}
            return
        bleu, _ = self._bleu("val")
        self.log("val/bleu", bleu, prog_bar=True)

    def _apply_eval_mode(self) -> None:
        """Switch both LSTMs to ``eval_mode``/``eval_timesteps`` (:func:`snnlstm.conversion.spiking`) until
        :meth:`_restore_modes`."""
        self._restore_modes()
        hp = self.hparams
        self._eval_switch = eval_mode_switch(self, hp.eval_mode, hp.eval_timesteps, forward=_teacher_forced)

    def _restore_modes(self) -> None:
        if self._eval_switch is not None:
            self._eval_switch.close()
            self._eval_switch = None

    def on_test_start(self) -> None:
        self._hyps = {}
        self._apply_eval_mode()

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", beam=self.hparams.beam_size)

    def on_test_epoch_end(self) -> None:
        bleu, hyps = self._bleu("test")
        self.test_translations = hyps
        self.log("test/bleu", bleu)

    def on_test_end(self) -> None:
        self._restore_modes()

    def on_predict_start(self) -> None:
        self._apply_eval_mode()

    def on_predict_end(self) -> None:
        self._restore_modes()

    def predict_step(self, batch: Any, batch_idx: int) -> list[str]:
        codec = self._data().codec
        return [codec.decode(ids, "tgt") for ids in self.translate(batch.src, batch.src_mask)]

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        if hp.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=hp.lr)
        if hp.optimizer == "adam":
            return torch.optim.Adam(params, lr=hp.lr)
        return torch.optim.SGD(params, lr=hp.lr, momentum=0.9)


def _teacher_forced(model: nn.Module, batch: Any) -> None:
    """One calibration forward of a :class:`Translator`: the teacher-forced loss of a training batch."""
    model._loss(move_data_to_device(batch, model.device))
