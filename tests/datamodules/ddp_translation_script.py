"""Run by test_translation_ddp.py: 2-process CPU DDP (gloo) fit and test of a tiny Translator.

Each rank writes the training pairs it saw (by index) and its test BLEU to ``<out>/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from snnlstm.datamodules import ParallelText  # noqa: E402
from snnlstm.models import Translator  # noqa: E402


class Record(Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.extend(batch.index.tolist())


def main(corpus: str, out: str) -> None:
    L.seed_everything(0)
    data = ParallelText(data_dir=corpus, cache_dir=os.path.join(out, "cache"), batch_size=4)
    data.prepare_data()
    data.setup("fit")
    model = Translator(data.src_vocab_size, data.tgt_vocab_size, embed_dim=8, hidden_size=8, beam_size=1)
    record = Record()
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[record], use_distributed_sampler=False,  # the bucket sampler shards itself
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    bleu = trainer.test(model, datamodule=data, verbose=False)[0]["test/bleu"]
    torch.save({"seen": record.seen, "bleu": bleu, "test_pairs": len(model.test_translations)},
               os.path.join(out, f"rank{trainer.global_rank}.pt"))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
