"""Run by test_conversion_ddp.py: 2-process CPU DDP (gloo) fit with ANN-to-SNN conversion.

Each rank writes the thresholds it fitted at conversion, its final thresholds and a fingerprint of the
data it saw to ``<out>/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from snnlstm.callbacks import ANNToSNNConversion  # noqa: E402
from snnlstm.nn.lstm import SpikingLSTM  # noqa: E402
from tests.callbacks.helpers import ForeignLSTMModule  # noqa: E402
from tests.conftest import TinySequences  # noqa: E402


class Record(Callback):
    def __init__(self, out: str, conv: ANNToSNNConversion) -> None:
        self.out, self.conv, self.data_sum = out, conv, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.data_sum += float(batch[0].sum())

    def on_train_end(self, trainer, pl_module):
        layer = next(m for m in pl_module.modules() if isinstance(m, SpikingLSTM))
        torch.save(
            {
                "at_conversion": self.conv.thresholds,
                "final": {k: v.detach().clone() for k, v in layer.neurons.state_dict().items()},
                "data_sum": self.data_sum,
            },
            os.path.join(self.out, f"rank{trainer.global_rank}.pt"),
        )


def main(out: str) -> None:
    L.seed_everything(0)
    model = ForeignLSTMModule()
    conv = ANNToSNNConversion(epoch=1, calibration_batches=2, timesteps=2)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[conv, Record(out, conv)],
    )
    trainer.fit(model, TinySequences(n=128, batch_size=16))


if __name__ == "__main__":
    main(sys.argv[1])
