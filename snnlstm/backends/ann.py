"""Non-spiking LSTM layer implementations: torch's own LSTM kernel, the fused C++ sequence, the eager loop.

All take one layer's weights in ``torch.nn.LSTM``'s layout and return the same outputs and final
state; :func:`snnlstm.backends.selection.resolve` picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..functional.cells import lstm_cell_step
from ..functional.gates import torch_to_cell
from .fused_ann import fused_ann_layer

if TYPE_CHECKING:
    from ..nn.lstm import SpikingLSTM


def cell_weights(layer: "SpikingLSTM", k: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """Input weights ``[4H, F]``, recurrent weights transposed ``[H, 4H]`` and summed bias ``[4H]``
    of layer ``k``, gate rows in the cells' order (i, f, o, g)."""
    w_ih = torch_to_cell(getattr(layer, f"weight_ih_l{k}"))
    w_hh_t = torch_to_cell(getattr(layer, f"weight_hh_l{k}")).t()
    if not layer.bias:
        return w_ih, w_hh_t, None
    return w_ih, w_hh_t, torch_to_cell(getattr(layer, f"bias_ih_l{k}") + getattr(layer, f"bias_hh_l{k}"))


def last_real(seq: Tensor, lengths: Tensor | None) -> Tensor:
    """Each sequence's entry after its last real element: ``seq [N, B, ...]`` -> ``[B, ...]``."""
    if lengths is None:
        return seq[-1]
    return seq[lengths - 1, torch.arange(seq.shape[1], device=seq.device)]


def ann_layer(
    kernel: str, layer: "SpikingLSTM", k: int, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Run non-spiking layer ``k`` over ``x [N, B, F]`` from ``(h0, c0)`` (each ``[B, H]``).

    Args:
        kernel: ``"torch-native"``, ``"cpp-sequence"`` or ``"torch-eager"``.
        lengths: optional ``[B]`` lengths of right-padded sequences.

    Returns:
        ``(output [N, B, H], h_n [B, H], c_n [B, H])``; with ``lengths`` the state after each
        sequence's last real element.
    """
    if kernel == "torch-native":
        return _native(layer, k, x, h0, c0, lengths)
    w_ih, w_hh_t, b = cell_weights(layer, k)
    if kernel == "cpp-sequence":
        acts = (layer.activation, layer.v_sig, layer.v_tanh_pos, layer.v_tanh_neg, layer.clamp_c)
        out, cells = fused_ann_layer(x, w_ih, b, w_hh_t, h0, c0, *acts)
    else:
        proj = x @ w_ih.t()
        if b is not None:
            proj = proj + b
        out, cells = eager_loop(layer, k, proj, w_hh_t, h0, c0)
    return out, last_real(out, lengths), last_real(cells, lengths)


def eager_loop(layer: "SpikingLSTM", k: int, proj: Tensor, w_hh_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The per-element loop of :func:`snnlstm.functional.cells.lstm_cell_step`; feeds the layer's
    calibration observer with every pre-activation and cell state. Returns outputs and cell states
    ``[N, B, H]``."""
    observer = layer.calibration_observer
    outs, cells = [], []
    for proj_n in proj.unbind(0):
        z = proj_n + h @ w_hh_t
        h, c = lstm_cell_step(z, c, layer.activation, layer.v_sig, layer.v_tanh_pos, layer.v_tanh_neg, layer.clamp_c)
        if observer is not None:
            observer.update(k, z.detach(), c.detach())
        outs.append(h)
        cells.append(c)
    return torch.stack(outs), torch.stack(cells)


def _native(
    layer: "SpikingLSTM", k: int, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """torch's LSTM kernel (``torch.lstm``: oneDNN on the CPU, cuDNN on GPUs) on the layer's weights."""
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if layer.bias else ())
    params = [getattr(layer, f"{name}_l{k}") for name in names]
    x = x.to(params[0].dtype)
    hx = (h0.unsqueeze(0).to(x.dtype), c0.unsqueeze(0).to(x.dtype))
    if lengths is None:
        out, h_n, c_n = torch.lstm(x, hx, params, layer.bias, 1, 0.0, layer.training, False, False)
        return out, h_n[0], c_n[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order = packed.sorted_indices
    hx = (hx[0].index_select(1, order), hx[1].index_select(1, order))
    data, h_n, c_n = torch.lstm(packed.data, packed.batch_sizes, hx, params, layer.bias, 1, 0.0, layer.training, False)
    out, _ = nn.utils.rnn.pad_packed_sequence(packed._replace(data=data), total_length=x.shape[0])
    back = packed.unsorted_indices
    return out, h_n[0].index_select(0, back), c_n[0].index_select(0, back)
