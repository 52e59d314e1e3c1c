"""``ClassifierBase``: the training loop shared by the sequence classifiers (LSTM and LSNN).

Cross-entropy on the logits of ``forward``, accuracy and mean loss per stage (torchmetrics), the best
validation accuracy, and optimiser groups that keep the neuron parameters (thresholds, leaks, time
constants, AHP strengths) in their own group with their own learning rate and no weight decay.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..nn.settings import SettingsBlock

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def check_training_args(num_classes: int, optimizer: str, lr_schedule: str, lr: float) -> None:
    """Validate the arguments every classifier shares; errors list the allowed values."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; allowed: {', '.join(LR_SCHEDULES)}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")


def store_layer_hparams(module: LightningModule, settings: SettingsBlock) -> None:
    """Store ``settings`` as the ``layer`` hyper-parameter of ``module`` (after ``save_hyperparameters``).

    The saved form is a plain dict, whatever was passed (settings object, YAML block, top-level keys of an
    older checkpoint), so checkpoints load with ``weights_only=True`` and ``hparams.yaml`` lists every
    setting; top-level layer keys are removed. Lightning's copy for the logger is updated alike.
    """
    for hparams in (module._hparams, getattr(module, "_hparams_initial", None)):
        if hparams is None:
            continue
        for name in type(settings).field_names():
            hparams.pop(name, None)
        hparams["layer"] = settings.as_dict()


class ClassifierBase(LightningModule):
    """Shared steps, metrics and optimisers; subclasses build the network, ``forward(x) -> logits``,
    and name their neuron parameters in :meth:`neuron_parameters`.

    Expects the hyper-parameters ``optimizer``, ``lr``, ``spiking_lr``, ``weight_decay`` and
    ``lr_schedule`` (saved with ``save_hyperparameters``).
    """

    def _init_metrics(self, num_classes: int) -> None:
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def neuron_parameters(self) -> list[nn.Parameter]:
        """Thresholds, leaks and other neuron parameters (their own optimiser group)."""
        raise NotImplementedError

    def extra_loss(self) -> Tensor | None:
        """A regulariser added to the training loss after each training forward (None: none)."""
        return None

    # ------------------------------------------------------------------ steps
    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        acc, mean_loss = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_loss")
        acc(logits, y)
        mean_loss(loss)
        on_step = stage == "train"
        self.log(f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
        if on_step:
            extra = self.extra_loss()
            if extra is not None:
                self.log("train/reg_loss", extra.detach(), on_step=True, on_epoch=True)
                loss = loss + extra
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).argmax(dim=-1)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        """Weights with ``lr``/``weight_decay``; thresholds and leaks (frozen until the model is in SNN
        mode) in their own group with ``spiking_lr`` and no weight decay; optional cosine schedule."""
        hp = self.hparams
        spiking = {id(p) for p in self.neuron_parameters()}
        weights = [p for p in self.parameters() if id(p) not in spiking]
        extra = [p for p in self.parameters() if id(p) in spiking]
        groups = [
            {"params": weights, "weight_decay": hp.weight_decay},
            {"params": extra, "weight_decay": 0.0, "lr": hp.spiking_lr or hp.lr},
        ]
        if hp.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(groups, lr=hp.lr)
        elif hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        elif hp.optimizer == "rmsprop":
            optimizer = torch.optim.RMSprop(groups, lr=hp.lr)
        else:
            optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=0.9)
        if hp.get("lr_schedule", "constant") == "constant":
            return optimizer
        epochs = max(1, int(self.trainer.max_epochs or 1))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
