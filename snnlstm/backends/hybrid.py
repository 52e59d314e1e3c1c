"""Ponghiran & Roy's hybrid analog-spiking layer (evaluation only): event-driven C++ or dense torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..functional.hybrid import HybridSequenceOutput, hybrid_sequence
from .selection import KERNELS

if TYPE_CHECKING:
    from ..nn.lstm import SpikingLSTM


def hybrid_layer(kernel: str, layer: "SpikingLSTM", k: int, x: Tensor, h0: Tensor, c0: Tensor) -> HybridSequenceOutput:
    """Run hybrid layer ``k`` over ``x [N, B, F]`` from ``(h0, c0)`` (each ``[B, H]``), ``T`` SNN steps
    per element, without gradients.

    Args:
        kernel: the resolved implementation (:func:`snnlstm.backends.selection.resolve`):
            ``"cpp-event"`` runs the compiled event-driven kernel (only the synapse rows of the inputs
            that spiked), ``"torch-dense"`` torch operators only (never the compiled kernels).

    Returns:
        :class:`snnlstm.functional.hybrid.HybridSequenceOutput` (analog ``h``, ``c`` ``[N, B, H]``).

    Raises:
        ValueError: ``kernel`` is not a hybrid-mode kernel.
    """
    if kernel not in KERNELS["hybrid"]:
        raise ValueError(f"unknown hybrid kernel {kernel!r}; allowed: {', '.join(KERNELS['hybrid'])}")
    bias = getattr(layer, f"bias_ih_l{k}") + getattr(layer, f"bias_hh_l{k}") if layer.bias else None
    w_ih, w_hh = getattr(layer, f"weight_ih_l{k}"), getattr(layer, f"weight_hh_l{k}")
    return hybrid_sequence(x, h0, c0, w_ih, w_hh, bias, layer.timesteps, layer.clamp_c, use_cpp=kernel == "cpp-event")
