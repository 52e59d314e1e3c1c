"""Non-spiking LSTM layer implementations: torch's own LSTM kernel, the fused C++ sequence, the eager loop.

All take one layer's weights in ``torch.nn.LSTM``'s layout and return the same outputs and final
state; :func:`snnlstm.backends.selection.resolve` picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

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
    kernel: str,
    layer: "SpikingLSTM",
    k: int,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor | None,
    host_lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run non-spiking layer ``k`` over ``x [N, B, F]`` from ``(h0, c0)`` (each ``[B, H]``).

    Args:
        kernel: ``"torch-native"``, ``"cpp-sequence"`` or ``"torch-eager"``.
        lengths: optional ``[B]`` lengths of right-padded sequences, on ``x``'s device.
        host_lengths: the same lengths on the CPU when the caller has them (``"torch-native"`` packs
            the sequences with host lengths; without them it copies ``lengths`` to the host, a
            synchronisation on an accelerator).

    Returns:
        ``(output [N, B, H], h_n [B, H], c_n [B, H])``; with ``lengths`` the state after each
        sequence's last real element.
    """
    if kernel == "torch-native":
        return _native(layer, k, x, h0, c0, lengths if host_lengths is None else host_lengths)
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


@torch.compiler.disable(reason="torch.lstm runs eagerly, as torch.compile runs nn.LSTM (allow_rnn=False)")
def _lstm(*args: Any) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.lstm`` outside any ``torch.compile`` graph: a graph break, as dynamo makes for ``nn.LSTM``
    (``torch._dynamo.config.allow_rnn`` is False). Traced, the CPU kernel with trainable weights
    fails in inductor (torch 2.11: "expected Tensor() for op: torch.ops.aten.mkldnn_rnn_layer")."""
    return torch.lstm(*args)


def _native(
    layer: "SpikingLSTM", k: int, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """torch's LSTM kernel (``torch.lstm``: oneDNN on the CPU, cuDNN on GPUs) on the layer's weights;
    ``lengths`` (packed sequences) are read on the host, so pass them on the CPU."""
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if layer.bias else ())
    params = [getattr(layer, f"{name}_l{k}") for name in names]
    x = x.to(params[0].dtype)
    hx = (h0.unsqueeze(0).to(x.dtype), c0.unsqueeze(0).to(x.dtype))
    if lengths is None:
        out, h_n, c_n = _lstm(x, hx, params, layer.bias, 1, 0.0, layer.training, False, False)
        return out, h_n[0], c_n[0]
    # pack_padded_sequence's steps with the permutations sorted on the host and copied without a
    # synchronisation (it copies them to the device with a blocking copy)
    host = lengths.cpu()  # a no-op for CPU lengths (run_stack passes them); a synchronisation otherwise
    sorted_lengths, order = torch.sort(host, descending=True)
    back = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel()))
    order, back = order.to(x.device, non_blocking=True), back.to(x.device, non_blocking=True)
    data, batch_sizes = torch._pack_padded_sequence(x.index_select(1, order), sorted_lengths, False)
    hx = (hx[0].index_select(1, order), hx[1].index_select(1, order))
    data, h_n, c_n = _lstm(data, batch_sizes, hx, params, layer.bias, 1, 0.0, layer.training, False)
    out, _ = torch._pad_packed_sequence(data, batch_sizes, False, 0.0, x.shape[0])
    return out.index_select(1, back), h_n[0].index_select(0, back), c_n[0].index_select(0, back)
