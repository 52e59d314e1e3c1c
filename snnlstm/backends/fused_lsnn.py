"""Fused LSNN layer: the whole sequence of LIF/AHP neuron steps as one autograd node with C++ kernels.

:func:`fused_lsnn_layer` computes exactly :func:`snnlstm.functional.ahp.ahp_step` run over the
``N`` steps of a sequence with the recurrent input ``z(t-1) W_rec^T`` and the triangular surrogate,
but as one :class:`torch.autograd.Function` whose forward and backward loops run in C++
(``snnlstm/csrc/lsnn_layer.cpp``, equations there): the recurrent input and the recurrent weight
gradient sum only the weight rows of the neurons that spiked (event driven), plus one pass over the
``[B, K]`` neurons per step. This removes the per-operation autograd bookkeeping of the
eager loop, which dominates on the CPU for sequential MNIST's 840 steps. ``tests/nn/test_lsnn.py``
compares it with the eager loop (spikes, states and every gradient).

:func:`fused_lsnn_sequence` (what :class:`snnlstm.nn.lsnn.LSNN` runs) takes the layer's inputs
instead of the currents and runs the row-parallel kernels (issue 20, "Event-driven LSNN"): one
parallel region over blocks of batch rows for the whole sequence (no fork/join per step), input
currents summed from the active inputs' weight columns when ``x`` is binary (:func:`event_input`),
``dW_in``/``db`` over the active inputs only, a backward that recomputes each row's membranes
instead of storing four ``[N, B, K]`` tensors, and a recurrent product in the backward only for the
neurons inside the surrogate's window. ``tests/backends/test_fused_lsnn.py`` compares it with the
eager loop; ``benchmarks/lsnn_kernel_time.py`` times it against :func:`fused_lsnn_layer`.
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


# ------------------------------------------------------------------------------------------------
# Row-parallel, event-driven kernels (lsnn_layer.cpp, lsnn_seq_forward / lsnn_seq_backward): batch
# first [B, N, K], one parallel region over blocks of batch rows for the whole sequence, input currents
# built from the active inputs when ``x`` is binary, and a backward that recomputes each row (only the
# spikes and the inputs are saved) and whose recurrent product covers only the neurons inside the
# surrogate's window.


def _seq_ops() -> Any:
    """The C++ extension (its ``lsnn_seq_forward`` / ``lsnn_seq_backward`` / ``lsnn_is_binary``)."""
    module = fused_cell_kernels()
    if module is None:
        raise RuntimeError("the fused C++ kernels are not built; use LSNN(backend='torch') (or 'auto')")
    return module


def event_input(x: Tensor, weight_ih: Tensor) -> bool:
    """Whether :func:`fused_lsnn_sequence` builds the input currents from the events of ``x``.

    True when ``x`` is a CPU tensor of the weights' dtype that needs no gradient and holds only 0 and 1
    (spikes, e.g. the threshold-crossing encoder's output): then ``I_in = b + sum of the W_in columns of
    the active inputs`` and ``dW_in`` sums over the active inputs only. Checked on the host (the tensor
    is on the CPU: no device synchronisation), one pass over ``x`` that stops at the first analog value.
    Analog inputs (or inputs that need a gradient) keep the dense product ``W_in x + b``.
    """
    return (
        x.device.type == "cpu"
        and x.dtype == weight_ih.dtype
        and not (torch.is_grad_enabled() and x.requires_grad)
        and x.numel() > 0
        and bool(_seq_ops().lsnn_is_binary(x))
    )


class _FusedLSNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        inp: Tensor,
        w_in_t: Tensor,
        bias: Tensor | None,
        events: bool,
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
        empty = inp.new_empty(0)
        x, cur = (inp, empty) if events else (empty, inp)
        w_in_t = w_in_t if events else empty
        b = bias if events and bias is not None else empty
        z_all, v, a, r = _seq_ops().lsnn_seq_forward(x, w_in_t, b, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, int(refractory))
        # nothing of size [B, N, K] but the spikes (and the inputs): the backward recomputes each row
        ctx.save_for_backward(z_all, x, w_in_t, b, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w)
        ctx.gamma = float(gamma)
        ctx.refractory = int(refractory)
        ctx.events = events
        ctx.has_bias = bias is not None
        ctx.mark_non_differentiable(r)
        return z_all, v, a, r

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_z: Tensor | None, g_v: Tensor | None, g_a: Tensor | None, g_r: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        z_all, x, w_in_t, b, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        g_z = z_all.new_empty(0) if g_z is None else g_z.contiguous()
        g_v = torch.zeros_like(v0) if g_v is None else g_v.contiguous()
        g_a = torch.zeros_like(v0) if g_a is None else g_a.contiguous()
        (g_cur, g_z0, g_v0, g_a0, g_alpha, g_rho, g_w, g_theta, g_w_rec_t, g_w_in_t, g_b) = _seq_ops().lsnn_seq_backward(
            g_z, g_v, g_a, z_all, x, w_in_t, b, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, ctx.refractory,
            ctx.gamma, bool(need[4]), bool(ctx.events and need[1]), bool(ctx.events and ctx.has_bias and need[2]),
        )
        if ctx.events:
            g_inp = None  # x needs no gradient on the event path (event_input)
            g_w_in = g_w_in_t if need[1] else None
            g_bias = g_b if ctx.has_bias and need[2] else None
        else:
            g_inp, g_w_in, g_bias = g_cur, None, None
        return (
            g_inp, g_w_in, g_bias, None, g_w_rec_t if need[4] else None, g_z0, g_v0, g_a0, None,
            g_theta, g_alpha, g_rho, g_w, None, None,
        )


def fused_lsnn_sequence(
    x: Tensor,
    weight_ih: Tensor,
    bias: Tensor | None,
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
    events: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The LSNN layer over a sequence from its inputs, batch first, with the row-parallel kernels.

    Same result as ``fused_lsnn_layer(linear(x, weight_ih, bias).transpose(0, 1), ...)`` (and as the
    eager loop, within rounding) but: one parallel region over the batch rows for the whole sequence;
    with ``events`` (default: :func:`event_input`, i.e. binary ``x``) the input currents are built from
    the active inputs only and ``dW_in``, ``db`` are summed over them; the backward's recurrent product
    is computed only for the neurons inside the surrogate's window.

    Args:
        x: inputs ``[B, N, F]``.
        weight_ih, bias: input weights ``[K, F]`` and bias ``[K]`` (or None).
        w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, gamma, refractory: as :func:`fused_lsnn_layer`.
        events: force the event (True) or dense (False) input path; True needs an ``x`` without gradient.

    Returns:
        ``(z [B, N, K], v, a, r)``: spikes of every step (batch first) and the final state ``[B, K]``.
    """
    if events is None:
        events = event_input(x, weight_ih)
    elif events and torch.is_grad_enabled() and x.requires_grad:
        raise ValueError("the event input path gives no gradient for x; use events=False")
    c = torch.Tensor.contiguous
    if events:
        inp, w_in_t = c(x), c(weight_ih.t())
    else:
        inp, w_in_t = c(torch.nn.functional.linear(x, weight_ih, bias)), weight_ih.new_empty(0)
        bias = None
    return _FusedLSNNSequence.apply(
        inp, w_in_t, None if bias is None else c(bias), bool(events), c(w_rec_t), c(z0), c(v0), c(a0), c(r0),
        c(theta), c(alpha), c(rho), c(w), gamma, refractory,
    )
