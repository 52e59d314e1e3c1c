"""Clamp weights and biases into a range after every optimiser step (Loihi's constraint)."""

from __future__ import annotations

import re
from typing import Any, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from snnlstm.nn.lstm import spiking_layers


class ParameterClamp(Callback):
    """After every training batch (i.e. after the optimiser step) clamp parameters to ``[min, max]``.

    Ponghiran & Roy's seq-MNIST models clamp every weight and bias to ``[-1, 1]`` after each optimiser
    step so that the integer-scaled weights ``2 round(128 W)`` fit Loihi's 8-bit synapses. Thresholds
    and leaks of spiking neurons are never clamped. Clamping is idempotent, so with gradient
    accumulation the batches without a step are harmless.

    Args:
        min_value: lower bound.
        max_value: upper bound (``> min_value``).
        include: regular expressions matched (``re.search``) against parameter names; a parameter is
            clamped when any matches. ``None``: every weight and bias.
    """

    def __init__(self, min_value: float = -1.0, max_value: float = 1.0, include: Sequence[str] | None = None) -> None:
        if not max_value > min_value:
            raise ValueError(f"ParameterClamp needs max_value > min_value, got [{min_value}, {max_value}]")
        self.min_value, self.max_value = float(min_value), float(max_value)
        try:
            self.include = None if include is None else [re.compile(p) for p in include]
        except re.error as err:
            raise ValueError(f"ParameterClamp include pattern is not a valid regular expression: {err}") from err
        self._params: list[torch.nn.Parameter] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        neuron_params = {id(p) for layer in spiking_layers(pl_module) for p in layer.spiking_parameters()}
        chosen = [
            p
            for name, p in pl_module.named_parameters()
            if id(p) not in neuron_params and (self.include is None or any(r.search(name) for r in self.include))
        ]
        if not chosen:
            patterns = [r.pattern for r in self.include or []]
            raise ValueError(f"ParameterClamp: no parameter of {type(pl_module).__name__} matches include={patterns}")
        self._params = chosen
        if stage == "fit":
            self.clamp()

    def clamp(self) -> None:
        """Clamp the selected parameters in place (also once when ``fit`` starts)."""
        with torch.no_grad():
            for p in self._params or []:
                p.clamp_(self.min_value, self.max_value)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.clamp()
