"""Run by test_spike_monitor_ddp.py: 2-process CPU DDP (gloo) fit + test with a SpikeMonitor.

Each rank records every warning it raised and the numbers the monitor logged, and writes them to
``<out>/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from snnlstm.callbacks import SpikeMonitor  # noqa: E402
from tests.callbacks.test_spike_monitor import _Classifier  # noqa: E402
from tests.conftest import TinySequences  # noqa: E402


class Record(Callback):
    """Writes what this rank's monitor logged and Lightning's ``callback_metrics``."""

    def __init__(self, out: str, monitor: SpikeMonitor, caught: list) -> None:
        self.out, self.monitor, self.caught = out, monitor, caught

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save(
            {
                "warnings": [str(w.message) for w in self.caught],
                "latest": self.monitor.latest,
                "callback_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            },
            os.path.join(self.out, f"rank{trainer.global_rank}.pt"),
        )


def main(out: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        L.seed_everything(0)
        monitor = SpikeMonitor()
        trainer = L.Trainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp_find_unused_parameters_true",  # some neuron parameters get no gradient
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[monitor, Record(out, monitor, caught)],
        )
        data = TinySequences(n=64, batch_size=16)
        model = _Classifier()
        trainer.fit(model, data)
        trainer.test(model, data)


if __name__ == "__main__":
    main(sys.argv[1])
