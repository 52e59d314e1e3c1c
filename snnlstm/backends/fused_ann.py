"""Fused non-spiking LSTM layer: the whole sequence as one autograd node with C++ kernels.

:func:`fused_ann_layer` computes exactly :func:`snnlstm.functional.cells.lstm_cell_step` run over the
``N`` elements of a sequence (standard or hard activations, optional clamp of ``c`` to ``[-1, 1]``),
but as one :class:`torch.autograd.Function` whose forward and backward loops run in C++
(``snnlstm/csrc/ann_layer.cpp``): per element one ``addmm`` for the recurrent product and one pass
over memory for the gates and the cell update. The backward pass walks the sequence in reverse::

    dc   = dc_next + dh * o * act_tanh'(c)      (dc_next zeroed where the clamp of the carried c was active)
    dz_i = dc * g * sig'(z_i),  dz_f = dc * c_prev * sig'(z_f),  dz_o = dh * act_tanh(c) * sig'(z_o)
    dz_g = dc * i * act_tanh'(z_g),  dc_prev = dc * f,  dh_prev = dz @ W_hh

and computes the input projections (one ``addmm`` before the loop) and the weight gradients (one
matrix product each after it, e.g. ``[h0, h_0..h_{N-2}]^T dz``) over the whole sequence. The
``[N, B, 4H]`` buffer holds the projections, then the pre-activations, then their gradients, so a
long sequence allocates it once (the backward pass consumes it: no second backward through one graph). This removes the per-operation autograd bookkeeping of the eager loop, which dominates long
sequences on the CPU (pixel-wise MNIST: 784 elements). Numerically it matches the eager loop to
rounding (``tests/backends/test_fused_ann.py`` compares them); the hard activations' derivatives follow
``torch.clamp``'s convention (the gradient passes on the closed interval).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..kernels.build import fused_cell_kernels


def fused_ann_available(x: Tensor) -> bool:
    """Whether the C++ layer kernels can run on ``x`` (CPU, float32/float64, kernels built)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and fused_cell_kernels() is not None


class _FusedANNLayer(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        w_ih: Tensor,
        bias: Tensor | None,
        w_hh_t: Tensor,
        h0: Tensor,
        c0: Tensor,
        flags: tuple[bool, float, float, float, bool],
    ) -> tuple[Tensor, Tensor]:
        n_steps, batch, fan_in = x.shape
        x2 = x.reshape(n_steps * batch, fan_in)
        z = torch.mm(x2, w_ih.t()) if bias is None else torch.addmm(bias, x2, w_ih.t())
        z = z.view(n_steps, batch, -1)
        h_all, c_all = fused_cell_kernels().ann_layer_forward(z, w_hh_t, h0, c0, *flags)
        ctx.save_for_backward(x, w_ih, w_hh_t, h0, c0, h_all, c_all)
        ctx.z = z  # consumed by the backward pass (overwritten with dL/dz)
        ctx.flags = flags
        ctx.has_bias = bias is not None
        return h_all, c_all

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_h: Tensor | None, grad_c: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, w_ih, w_hh_t, h0, c0, h_all, c_all = ctx.saved_tensors
        z = ctx.z
        if z is None:
            raise RuntimeError(
                "the fused non-spiking LSTM layer frees its buffers in the backward pass and cannot run it "
                "twice (retain_graph=True); use SpikingLSTM(schedule='pipelined') for repeated backward passes"
            )
        ctx.z = None
        grad_h = torch.zeros_like(h_all) if grad_h is None else grad_h.contiguous()
        grad_c = torch.zeros_like(c_all) if grad_c is None else grad_c.contiguous()
        g_h0, g_c0 = fused_cell_kernels().ann_layer_backward(grad_h, grad_c, z, c_all, c0, w_hh_t, *ctx.flags)
        n_steps, batch, fan_in = x.shape
        gz = z.view(n_steps * batch, -1)  # now dL/dz
        need = ctx.needs_input_grad
        g_x = torch.mm(gz, w_ih).view_as(x) if need[0] else None
        g_w_ih = torch.mm(gz.t(), x.reshape(n_steps * batch, fan_in)) if need[1] else None
        g_b = gz.sum(0) if ctx.has_bias and need[2] else None
        g_w_hh_t = None
        if need[3]:  # h_prev of every element: h0, h_0 .. h_{N-2}
            h_prev = torch.cat([h0.unsqueeze(0), h_all[:-1]]).view(n_steps * batch, -1)
            g_w_hh_t = torch.mm(h_prev.t(), gz)
        return g_x, g_w_ih, g_b, g_w_hh_t, g_h0, g_c0, None


def fused_ann_layer(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    activation: str,
    v_sig: float,
    v_pos: float,
    v_neg: float,
    clamp_c: bool = False,
) -> tuple[Tensor, Tensor]:
    """Non-spiking LSTM layer over a sequence with the fused C++ kernels.

    ``z_n = W_ih x_n + b + W_hh h_{n-1}``; ``h_n, c_n = lstm_cell_step(z_n, c_{n-1}, ...)``.

    Args:
        x: inputs ``[N, B, F]``.
        w_ih: input weights ``[4H, F]``, gate rows ordered (i, f, o, g).
        bias: ``[4H]`` or None.
        w_hh_t: recurrent weights transposed ``[H, 4H]`` (same gate order).
        h0, c0: initial state ``[B, H]``.
        activation: ``"hard"`` or ``"standard"``.
        v_sig, v_pos, v_neg: hard-activation thresholds (ignored for ``"standard"``).
        clamp_c: clamp ``c`` to ``[-1, 1]`` after every update.

    Returns:
        ``(h, c)``: outputs and (carried, clamped) cell states of every element, each ``[N, B, H]``.

    Raises:
        RuntimeError: when the kernels are unavailable (check :func:`fused_ann_available` first).
    """
    if fused_cell_kernels() is None:
        raise RuntimeError("the fused C++ kernels are not built; use the eager loop (schedule='pipelined')")
    flags = (activation == "standard", float(v_sig), float(v_pos), float(v_neg), bool(clamp_c))
    return _FusedANNLayer.apply(
        x.contiguous(), w_ih.contiguous(), bias, w_hh_t.contiguous(), h0.contiguous(), c0.contiguous(), flags
    )
