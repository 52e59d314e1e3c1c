"""Ponghiran & Roy's hybrid analog-spiking layer (evaluation only): event-driven C++ or dense torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..functional.hybrid import HybridSequenceOutput, hybrid_sequence

if TYPE_CHECKING:
    from ..nn.lstm import SpikingLSTM


def hybrid_layer(kernel: str, layer: "SpikingLSTM", k: int, x: Tensor, h0: Tensor, c0: Tensor) -> HybridSequenceOutput:
    """Run hybrid layer ``k`` over ``x [N, B, F]`` from ``(h0, c0)`` (each ``[B, H]``), ``T`` SNN steps
    per element, without gradients.

    Args:
        kernel: ``"cpp-event"`` (only the synapse rows of inputs that spiked, C++) or ``"torch-dense"``.

    Returns:
        :class:`snnlstm.functional.hybrid.HybridSequenceOutput` (analog ``h``, ``c`` ``[N, B, H]``).
    """
    bias = getattr(layer, f"bias_ih_l{k}") + getattr(layer, f"bias_hh_l{k}") if layer.bias else None
    w_ih, w_hh = getattr(layer, f"weight_ih_l{k}"), getattr(layer, f"weight_hh_l{k}")
    return hybrid_sequence(x, h0, c0, w_ih, w_hh, bias, layer.timesteps, layer.clamp_c, event_driven=kernel == "cpp-event")
