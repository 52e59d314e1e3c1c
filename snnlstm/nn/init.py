"""Parameter initialisations of the LSTM layers."""

from __future__ import annotations

import math

import torch
from torch import nn


def register_lstm_weights(layer: nn.Module, input_size: int, hidden_size: int, num_layers: int, bias: bool) -> None:
    """Register ``torch.nn.LSTM``'s parameters on ``layer`` with its names, shapes and init.

    ``weight_ih_l{k}`` ``[4H, F or H]``, ``weight_hh_l{k}`` ``[4H, H]`` and, with ``bias``,
    ``bias_ih_l{k}``/``bias_hh_l{k}`` ``[4H]`` (gate order i, f, g, o), each ``U(-1/sqrt(H), 1/sqrt(H))``.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    for k in range(num_layers):
        fan_in = input_size if k == 0 else hidden_size
        shapes = {f"weight_ih_l{k}": (4 * hidden_size, fan_in), f"weight_hh_l{k}": (4 * hidden_size, hidden_size)}
        if bias:
            shapes.update({f"bias_ih_l{k}": (4 * hidden_size,), f"bias_hh_l{k}": (4 * hidden_size,)})
        for name, shape in shapes.items():
            layer.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))


def init_shared_bias_cell(layer: nn.Module, forget_bias: float, input_bias: float) -> None:
    """Ponghiran & Roy's init of ``layer`` (a :class:`snnlstm.nn.lstm.SpikingLSTM`).

    ``W_ih`` and ``W_hh`` orthogonal per gate block (each block on its own, gain 1, as their reference
    code); biases 0 but the forget gate's ``forget_bias`` (theirs: 1) and the input gate's
    ``input_bias`` (theirs: 0); ``bias_hh`` is frozen at 0, so ``bias_ih`` is the one shared bias.
    """
    hid = layer.hidden_size
    with torch.no_grad():
        for k in range(layer.num_layers):
            w_ih, w_hh = getattr(layer, f"weight_ih_l{k}"), getattr(layer, f"weight_hh_l{k}")
            for gate in range(4):
                rows = slice(gate * hid, (gate + 1) * hid)
                nn.init.orthogonal_(w_ih[rows])
                nn.init.orthogonal_(w_hh[rows])
            if layer.bias:
                b_ih, b_hh = getattr(layer, f"bias_ih_l{k}"), getattr(layer, f"bias_hh_l{k}")
                b_ih.zero_()
                b_ih[:hid] = input_bias
                b_ih[hid : 2 * hid] = forget_bias
                b_hh.zero_()
                b_hh.requires_grad_(False)
