"""What a conversion changes on a :class:`~snnlstm.nn.lstm.SpikingLSTM`, saved to be put back.

:class:`LayerSnapshot` keeps a layer's conversion settings (mode, T, spiking gates, encoding, bias
shift: its ``_extra_state``), its neuron state (thresholds, leaks, whether parameters or buffers) and
the ``requires_grad`` flags of its thresholds and leaks; the weights are not copied (a conversion
never changes them). :func:`threshold_table` reads a layer's neuron state as plain numbers.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor, nn

from ..nn.lstm import SpikingLSTM

__all__ = ["LayerSnapshot", "threshold_table"]


class LayerSnapshot:
    """Everything :func:`snnlstm.conversion.spiking` may change on ``layer``; :meth:`restore` puts it back.

    Args:
        layer: the layer to save.
    """

    def __init__(self, layer: SpikingLSTM) -> None:
        self.layer = layer
        spiking = {id(p) for p in layer.spiking_parameters()}
        self.state: dict[str, Any] = {}
        for key, value in layer.state_dict(keep_vars=True).items():
            if isinstance(value, nn.Parameter) and id(value) not in spiking:
                continue  # a weight: conversions leave them alone
            self.state[key] = value.detach().clone() if isinstance(value, Tensor) else copy.deepcopy(value)
        self.requires_grad = [p.requires_grad for p in layer.spiking_parameters()]
        self.observer = layer.calibration_observer

    def restore(self) -> None:
        """Put the settings, thresholds, leaks and their ``requires_grad`` back as they were."""
        self.layer.calibration_observer = self.observer
        self.layer.load_state_dict(self.state, strict=False)
        for param, flag in zip(self.layer.spiking_parameters(), self.requires_grad):
            param.requires_grad_(flag)


def threshold_table(layer: SpikingLSTM) -> list[dict[str, float]]:
    """Per LSTM layer, ``{"i.threshold": V, "f.beta": lambda, "g.threshold_neg": V-, ...}`` (rounded to 1e-6)."""
    table: list[dict[str, float]] = [{} for _ in range(layer.num_layers)]
    for key, value in layer.state_dict().items():
        parts = key.split(".", 2)
        if parts[0] == "neurons" and len(parts) == 3 and isinstance(value, Tensor) and value.numel() == 1:
            gate, _, name = parts[2].partition(".")
            if name in ("threshold", "threshold_neg", "beta"):
                table[int(parts[1])][parts[2]] = round(float(value), 6)
    return table
