"""Fused LSNN layer: the whole sequence of LIF/AHP neuron steps as one autograd node with C++ kernels.

:func:`fused_lsnn_layer` computes exactly :func:`snnlstm.functional.ahp.ahp_step` run over the
``N`` steps of a sequence with the recurrent input ``z(t-1) W_rec^T`` and the triangular surrogate,
but as one :class:`torch.autograd.Function` whose forward and backward loops run in C++
(``snnlstm/csrc/lsnn_layer.cpp``, equations there): the recurrent input and the recurrent weight
gradient sum only the weight rows of the neurons that spiked (event driven), plus one pass over the
``[B, K]`` neurons per step. This removes the per-operation autograd bookkeeping of the
eager loop, which dominates on the CPU for sequential MNIST's 840 steps. ``tests/nn/test_lsnn.py``
compares it with the eager loop (spikes, states and every gradient).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..kernels.build import fused_cell_kernels
from .fused_ann import fused_ann_available

#: Whether the C++ LSNN kernels can run on ``x``: the same condition as the non-spiking layer's (CPU,
#: float32/float64, kernels built; they are one extension). The layer decides with
#: :func:`snnlstm.backends.lsnn_selection.resolve_lsnn`, which also names what rules the kernels out.
fused_lsnn_available = fused_ann_available


class _FusedLSNN(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        cur: Tensor,
        w_rec_t: Tensor,
        z0: Tensor,
        v0: Tensor,
        a0: Tensor,
        r0: Tensor,
        theta: Tensor,
        alpha: Tensor,
        rho: Tensor,
        w: Tensor,
        gamma: float,
        refractory: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        z_all, vhat, a_in, nonref, v, a, r = fused_cell_kernels().lsnn_forward(
            cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, int(refractory)
        )
        ctx.save_for_backward(z_all, vhat, a_in, nonref, z0, v0, w_rec_t, theta, alpha, rho, w)
        ctx.gamma = float(gamma)
        ctx.mark_non_differentiable(r)
        return z_all, v, a, r

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_z: Tensor | None, g_v: Tensor | None, g_a: Tensor | None, g_r: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        z_all, vhat, a_in, nonref, z0, v0, w_rec_t, theta, alpha, rho, w = ctx.saved_tensors
        g_z = torch.zeros_like(z_all) if g_z is None else g_z.contiguous()
        g_v = torch.zeros_like(v0) if g_v is None else g_v.contiguous()
        g_a = torch.zeros_like(v0) if g_a is None else g_a.contiguous()
        g_cur, g_z0, g_v0, g_a0, g_alpha, g_rho, g_w, g_theta, g_w_rec_t = fused_cell_kernels().lsnn_backward(
            g_z, g_v, g_a, z_all, vhat, a_in, nonref, z0, v0, w_rec_t, theta, alpha, rho, w, ctx.gamma
        )
        return g_cur, g_w_rec_t if ctx.needs_input_grad[1] else None, g_z0, g_v0, g_a0, None, g_theta, g_alpha, g_rho, g_w, None, None


def fused_lsnn_layer(
    cur: Tensor,
    w_rec_t: Tensor,
    z0: Tensor,
    v0: Tensor,
    a0: Tensor,
    r0: Tensor,
    theta: Tensor,
    alpha: Tensor,
    rho: Tensor,
    w: Tensor,
    gamma: float,
    refractory: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """LIF/AHP neuron population over a sequence with the fused C++ kernels (triangular surrogate).

    Args:
        cur: input currents ``W_in x + b``, ``[N, B, K]``.
        w_rec_t: recurrent weights transposed ``[K, K]`` (``I(t) = cur(t) + z(t-1) @ w_rec_t``).
        z0, v0, a0, r0: initial spikes, membranes, AHP currents and refractory counters ``[B, K]``.
        theta, alpha, rho, w: per-neuron threshold, membrane decay, AHP decay and AHP strength ``[K]``.
        gamma: height of the triangular surrogate.
        refractory: refractory steps after a spike.

    Returns:
        ``(z [N, B, K], v, a, r)``: spikes of every step and the final membranes, AHP currents and
        refractory counters ``[B, K]`` (the counters carry no gradient).

    Raises:
        RuntimeError: when the kernels are unavailable (:func:`snnlstm.backends.lsnn_selection.resolve_lsnn`
            checks that, and every other condition, first).
    """
    if fused_cell_kernels() is None:
        raise RuntimeError("the fused C++ kernels are not built; use LSNN(backend='torch') (or 'auto')")
    c = torch.Tensor.contiguous
    return _FusedLSNN.apply(
        c(cur), c(w_rec_t), c(z0), c(v0), c(a0), c(r0), c(theta), c(alpha), c(rho), c(w), gamma, refractory
    )
