"""Shared fixtures: tiny learnable sequence data and quiet, offline loggers."""

from __future__ import annotations

import os
import warnings

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


class TinySequences(L.LightningDataModule):
    """64 random sequences [6 steps, 4 features]; the class is the sign of the first feature's sum."""

    input_size, num_classes, seq_len = 4, 2, 6

    def __init__(self, n: int = 64, batch_size: int = 16, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, self.seq_len, self.input_size, generator=g)
        self.y = (self.x[:, :, 0].sum(1) > 0).long()
        self.batch_size = batch_size

    def _loader(self, shuffle: bool = False) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=self.batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()


@pytest.fixture
def tiny_data() -> TinySequences:
    return TinySequences()


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    """A quiet CPU Trainer writing into ``tmp_path``."""
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)
