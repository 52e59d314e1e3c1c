"""Gate layouts: the one place that knows in which order each part of the engine keeps the gates.

``torch.nn.LSTM`` (and :class:`snnlstm.nn.lstm.SpikingLSTM`'s parameters) order the four gate row
blocks ``(i, f, g, o)``. The cells want the three sigmoid gates first, ``(i, f, o, g)``, so one IF
population updates them at once. The spiking kernels count spikes per population in the order
``(i, f, o, g, tanh_c)``; reports use :data:`REPORT_ORDER`.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: gate row blocks of ``torch.nn.LSTM`` weights and biases
TORCH_ORDER: tuple[str, ...] = ("i", "f", "g", "o")
#: gate blocks of the cell pre-activations ``[..., 4H]`` (sigmoid gates first)
CELL_ORDER: tuple[str, ...] = ("i", "f", "o", "g")
#: spike counts of the spiking kernels ``[5]``
COUNT_ORDER: tuple[str, ...] = ("i", "f", "o", "g", "tanh_c")
#: neuron populations of a spiking LSTM layer in reporting order
REPORT_ORDER: tuple[str, ...] = ("i", "f", "g", "o", "tanh_c")


def torch_to_cell(weight: Tensor) -> Tensor:
    """Reorder the gate blocks along dim 0 from :data:`TORCH_ORDER` to :data:`CELL_ORDER`.

    Args:
        weight: ``[4H, ...]`` weight or ``[4H]`` bias in ``nn.LSTM``'s layout.

    Returns:
        The same rows as ``(i, f, o, g)``, ``[4H, ...]``.
    """
    i, f, g, o = weight.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def counts_by_gate(counts: Tensor) -> dict[str, Tensor]:
    """Spike counts ``[5]`` in :data:`COUNT_ORDER` as a gate name -> 0-dim tensor dict."""
    return dict(zip(COUNT_ORDER, counts.unbind(0)))
