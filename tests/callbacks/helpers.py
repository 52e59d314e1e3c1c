"""LightningModules that are not ours, holding plain torch.nn.LSTM layers."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn


class ForeignLSTMModule(L.LightningModule):
    """Someone else's model: nn.LSTM + Linear; optionally an optimizer that skips frozen parameters."""

    def __init__(self, hidden: int = 8, only_trainable: bool = False, lr: float = 0.01) -> None:
        super().__init__()
        self.encoder = nn.LSTM(4, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 2)
        self.only_trainable, self.lr = only_trainable, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.encoder(x)
        return self.fc(out[:, -1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(-1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad] if self.only_trainable else self.parameters()
        return torch.optim.Adam(params, lr=self.lr)
