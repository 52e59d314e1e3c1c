"""Write the translations of ``snnlstm predict`` to a file or standard output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter


class TranslationWriter(BasePredictionWriter):
    """Collects the :class:`~snnlstm.models.Translator`'s predicted sentences and writes them, one a line,
    in the order of the input (``batch.index``), when prediction ends.

    Args:
        output: a file path, or ``"-"`` for standard output.
    """

    def __init__(self, output: str = "-") -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self._lines: dict[int, str] = {}

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._lines = {}

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Sequence[str],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        for k, text in zip(batch.index.tolist(), prediction):
            self._lines[k] = text

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        text = "".join(self._lines[k] + "\n" for k in sorted(self._lines))
        if self.output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            path = Path(self.output)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
