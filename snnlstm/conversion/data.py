"""Calibration batches from a Lightning Trainer (for switches that happen outside ``fit``).

A test-time conversion of a sigmoid/tanh model (``eval_mode: snn``, :class:`~snnlstm.callbacks.TimestepSweep`)
calibrates its thresholds on a few *training* batches, taken from, in order: the trainer's DataModule
(``setup("fit")`` is called if its training split is not built yet), the training dataloader of a
``fit`` run on the same trainer, or the LightningModule's own ``train_dataloader``. Nothing is loaded
unless a layer needs calibrating (:func:`trainer_calibration_data` returns a callable).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterable

import lightning.pytorch as pl
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn

from .calibration import CalibrationError, CalibrationForward

__all__ = ["trainer_calibration_data", "training_loader"]


def training_loader(trainer: pl.Trainer) -> Iterable[Any] | None:
    """The trainer's training batches (see the module docstring), or None when it has none.

    Raises:
        CalibrationError: the DataModule has a training split but could not build it (the cause is chained).
    """
    datamodule = trainer.datamodule
    if datamodule is not None and is_overridden("train_dataloader", datamodule, pl.LightningDataModule):
        try:
            return datamodule.train_dataloader()
        except Exception:  # the training split is not set up yet (a `test` run): build it
            try:
                datamodule.setup("fit")
                return datamodule.train_dataloader()
            except Exception as err:
                raise CalibrationError(
                    f"calibrating the thresholds needs training batches, but {type(datamodule).__name__} could not "
                    f"build its training split: {err}"
                ) from err
    if getattr(trainer.fit_loop, "_combined_loader", None) is not None:
        loader = trainer.train_dataloader  # the loader of a fit run on this trainer (one loader, not a collection)
        if loader is not None and not isinstance(loader, (dict, list, tuple)):
            return loader
    module = trainer.lightning_module
    if module is not None and is_overridden("train_dataloader", module, pl.LightningModule):
        return module.train_dataloader()
    return None


def trainer_calibration_data(trainer: pl.Trainer, batches: int, who: str) -> Callable[[], list[Any]]:
    """A ``calibrate_with`` for :func:`snnlstm.conversion.spiking`: up to ``batches`` training batches of ``trainer``.

    Args:
        trainer: the running trainer.
        batches: how many batches to take.
        who: the caller, for the error message (e.g. ``"eval_mode='snn'"``).

    Returns:
        A callable (only called when a layer needs calibrating) that returns the batches.
    """

    def load() -> list[Any]:
        loader = training_loader(trainer)
        if loader is None:
            raise CalibrationError(
                f"{who} switches sigmoid/tanh (activation='standard') layers to SNN mode, which needs their "
                f"thresholds calibrated on {batches} training batches, and the trainer has no training data: pass "
                "a DataModule with a train_dataloader (trainer.test(model, datamodule=...)), or convert the model "
                "during training with the ANNToSNNConversion callback and test that checkpoint"
            )
        return list(itertools.islice(iter(loader), batches))

    return load


#: calibration batches a test-time switch (``eval_mode``) reads for sigmoid/tanh layers
EVAL_CALIBRATION_BATCHES = 8


def eval_mode_switch(
    module: nn.Module, eval_mode: str, eval_timesteps: int | None, forward: CalibrationForward | None = None
) -> contextlib.ExitStack:
    """Enter :func:`snnlstm.conversion.api.spiking` for a LightningModule's ``eval_mode`` /
    ``eval_timesteps`` (``"auto"`` keeps the mode), calibrating on the trainer's training data when a
    sigmoid/tanh layer needs it; ``close()`` the returned stack to restore everything.

    Args:
        module: a LightningModule attached to a trainer.
        eval_mode: ``"auto"`` or a mode.
        eval_timesteps: T to evaluate at, or None to keep it.
        forward: how a calibration batch runs through ``module`` (default: its first element).
    """
    from .api import spiking

    switch = contextlib.ExitStack()
    switch.enter_context(
        spiking(
            module,
            mode=None if eval_mode == "auto" else eval_mode,
            timesteps=eval_timesteps,
            calibrate_with=trainer_calibration_data(module.trainer, EVAL_CALIBRATION_BATCHES, f"eval_mode={eval_mode!r}"),
            calibration_batches=EVAL_CALIBRATION_BATCHES,
            forward=forward,
        )
    )
    return switch
