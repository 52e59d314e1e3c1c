"""Fused spiking LSTM layer: the T+N-1 wavefront with a hand-written backward pass.

:func:`fused_spiking_layer` computes exactly the model of
:func:`snnlstm.functional.cells.spiking_cell_step` run with the pipelined schedule of
:mod:`snnlstm.nn.lstm`, but as one :class:`torch.autograd.Function`: the forward pass runs without
autograd, updating membranes in place and writing every cell's results into preallocated
``[N, T, B, .]`` buffers through strided "diagonal" views (the cells ``(n, d - n)`` of wavefront
``d``); the backward pass walks the wavefronts in reverse with the chain rule written out below.
This removes the per-operation autograd bookkeeping that dominates a CPU training step, and
computes the recurrent weight gradient and the input-projection gradient as one large matrix
product and one reduction after the loop instead of one per step. With the C++ kernels
(``cfg.use_cpp``) the whole wavefront loop of a layer, forward and backward, is one call each
(``layer_forward`` / ``layer_backward`` of ``snnlstm/kernels/csrc/fused_cell.cpp``, through
:class:`_CppLayer`): no Python per wavefront, membranes of the elements in flight in a ring buffer,
and the backward pass recomputes each step's membranes after reset from the saved ones before reset
instead of saving both.

Backward of one cell (``x = U / V - 1`` the normalised membrane, ``S = H(x)``, ``sigma'`` the
surrogate derivative (:func:`snnlstm.functional.surrogates.surrogate_derivative`; the C++ kernels
select the same formula by the surrogate's ``kernel_id``), ``gm`` the gradient of the membrane after
reset, ``gS`` of the spikes)::

    M   = U - S * V                       (reset by subtraction)
    dU  = gm + (gS - gm * V) * sigma'(x) / V
    dV  = -gm * S - (gS - gm * V) * sigma'(x) * U / V^2
    d(lambda) = dU * M_prev,   dM_prev = lambda * dU,   dI = dU

with the ternary neurons doing this once per threshold (``S = S+ - S-``) and the optimal bias
shift ``V±/(2T)`` adding ``shift * dU`` to the threshold selected by the sign of the input.
Numerically the result matches the autograd schedules to rounding (tests compare them).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from ..functional.surrogates import REGISTRY, SURROGATES, get_surrogate, surrogate_derivative

#: surrogates the fused wavefront runs (torch and C++): every entry of
#: :data:`snnlstm.functional.surrogates.REGISTRY` carries the closed-form derivative and the kernel id
FUSED_SURROGATES: tuple[str, ...] = SURROGATES


class FusedConfig(NamedTuple):
    """Static settings of one fused layer call.

    Attributes:
        timesteps: T.
        direct: projections are ``[N, B, 4H]`` (same current every step) rather than ``[N, T, B, 4H]``.
        shift: ``1/(2T)`` with the bias shift, else 0 (the i/f/o part is already in the projections).
        spike_i: the input gate spikes (else analog ``activation``).
        spike_g: the g gate spikes (else analog ``activation``).
        activation: ``"hard"`` or ``"standard"`` for analog gates.
        surrogate: surrogate name (one of :data:`FUSED_SURROGATES`); the C++ kernels get its
            :attr:`~snnlstm.functional.surrogates.Surrogate.kernel_id`.
        gamma: height of the triangular surrogate.
        compiled: run the Python per-wavefront functions through ``torch.compile``.
        use_cpp: run the whole layer through the C++ layer kernels (CPU float32/float64 tensors; the
            caller, :func:`snnlstm.backends.selection.resolve`, checked they can run), else through the
            Python per-wavefront functions :func:`forward_step` / :func:`backward_step` (any device).
    """

    timesteps: int
    direct: bool
    shift: float
    spike_i: bool
    spike_g: bool
    activation: str
    surrogate: str
    gamma: float
    compiled: bool = False
    use_cpp: bool = False


class FusedOutput(NamedTuple):
    """``h`` spikes and cell states ``c``, each ``[N, T, B, H]`` (every element at every step), and the
    spike counts ``[5]`` (i, f, o, g, tanh_c; non-zero outputs for ternary neurons)."""

    h: Tensor
    c: Tensor
    counts: Tensor


def _diag(flat: Tensor, start: int, count: int, stride: int) -> Tensor:
    """Rows ``start, start + stride, ...`` (``count`` of them) of ``flat`` as a view."""
    if count == 1 or stride == 0:
        return flat[start : start + 1] if count == 1 else flat[start : start + count]
    return flat[start : start + (count - 1) * stride + 1 : stride]


def _above(a: Tensor, b: Tensor) -> Tensor:
    """``H(a - b)`` as a float tensor: the spike of ``U`` over ``V`` (``H(U / V - 1)`` for ``V > 0``) and,
    as ``_above(V-, U)``, of ``U`` under a negative ``V-``; no division, as in the C++ kernels."""
    return (a > b).to(a.dtype)


def _analog_sigmoid(z: Tensor, activation: str, v: Tensor) -> Tensor:
    return torch.sigmoid(z) if activation == "standard" else torch.clamp(z / v + 0.5, 0.0, 1.0)


def _analog_tanh(z: Tensor, activation: str, vp: Tensor, vn: Tensor) -> Tensor:
    if activation == "standard":
        return torch.tanh(z)
    return torch.clamp(z / vp, 0.0, 1.0) + torch.clamp(z / (-vn), -1.0, 0.0)


class _Params(NamedTuple):
    v_sig: Tensor  # [3H]
    leak_sig: Tensor  # [3H]
    vgp: Tensor
    vgn: Tensor
    leak_g: Tensor
    vcp: Tensor
    vcn: Tensor
    leak_c: Tensor


def _aux_width(cfg: FusedConfig) -> int:
    """Saved analog pre-activations per cell, in units of H: z_i (analog i), z_g (analog g or shift)."""
    return (not cfg.spike_i) + ((not cfg.spike_g) or bool(cfg.shift))


def forward_step(
    x_proj: Tensor,
    h_in: Tensor,
    c_in: Tensor,
    m: Tensor,
    w_hh_t: Tensor,
    p: _Params,
    cfg: FusedConfig,
    h_out: Tensor,
    c_out: Tensor,
    m_out: Tensor,
    u_out: Tensor | None,
    aux_out: Tensor | None,
) -> Tensor:
    """One wavefront of the forward pass for ``A`` elements in flight (pure but for the outputs).

    Args:
        x_proj: projections incl. bias and offsets ``[A, B, 4H]``.
        h_in, c_in: previous element's ``h``/``c`` at the same step ``[A, B, H]``.
        m: membranes after the previous step ``[A, B, 5H]`` (i, f, o | g | tanh_c).
        h_out, c_out, m_out: written with the new ``h``, ``c`` and membranes (after reset).
        u_out: written with the membranes before reset (saved for backward), or None.
        aux_out: written with the analog pre-activations of :func:`_aux_width`, or None.

    Returns:
        Spike counts of this wavefront ``[5]`` (i, f, o, g, tanh_c).
    """
    hid = h_in.shape[-1]
    h3 = 3 * hid
    z = torch.matmul(h_in, w_hh_t) + x_proj
    z_sig, z_g = z[..., :h3], z[..., h3:]
    u_sig = m[..., :h3] * p.leak_sig + z_sig
    s_sig = _above(u_sig, p.v_sig)
    i_gate = s_sig[..., :hid] if cfg.spike_i else _analog_sigmoid(z_sig[..., :hid], cfg.activation, p.v_sig[0])
    f_gate, o_gate = s_sig[..., hid : 2 * hid], s_sig[..., 2 * hid :]
    if cfg.spike_g:
        cur = z_g + torch.where(z_g >= 0, p.vgp, p.vgn) * cfg.shift if cfg.shift else z_g
        u_g = m[..., h3 : 4 * hid] * p.leak_g + cur
        pos_g, neg_g = _above(u_g, p.vgp), _above(p.vgn, u_g)
        g_gate = pos_g - neg_g
        m_g = u_g - pos_g * p.vgp - neg_g * p.vgn
    else:
        g_gate = _analog_tanh(z_g, cfg.activation, p.vgp, p.vgn)
        u_g = m_g = m[..., h3 : 4 * hid]
    c = f_gate * c_in + i_gate * g_gate
    cur_c = c + torch.where(c >= 0, p.vcp, p.vcn) * cfg.shift if cfg.shift else c
    u_c = m[..., 4 * hid :] * p.leak_c + cur_c
    pos_c, neg_c = _above(u_c, p.vcp), _above(p.vcn, u_c)
    h_out.copy_(o_gate * (pos_c - neg_c))
    c_out.copy_(c)
    m_out.copy_(torch.cat([u_sig - s_sig * p.v_sig, m_g, u_c - pos_c * p.vcp - neg_c * p.vcn], dim=-1))
    if u_out is not None:
        u_out.copy_(torch.cat([u_sig, u_g, u_c], dim=-1))
    if aux_out is not None:
        parts = ([] if cfg.spike_i else [z_sig[..., :hid]]) + ([z_g] if (not cfg.spike_g or cfg.shift) else [])
        aux_out.copy_(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])
    flat = s_sig.reshape(-1, 3, hid)
    return torch.cat(
        [flat.sum((0, 2)), g_gate.ne(0).sum().to(z.dtype).view(1), (pos_c.sum() + neg_c.sum()).view(1)]
    )


def backward_step(
    gh: Tensor,
    gc: Tensor,
    gm: Tensor,
    u: Tensor,
    m_prev: Tensor,
    c_in: Tensor,
    c: Tensor,
    aux: Tensor | None,
    w_hh_t: Tensor,
    p: _Params,
    cfg: FusedConfig,
    gz_out: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One wavefront of the backward pass (the chain rule of the module docstring).

    Args:
        gh, gc: gradients of this wavefront's ``h`` and ``c`` outputs ``[A, B, H]``.
        gm: gradient of the membranes after reset ``[A, B, 5H]``; overwritten with the gradient of
            ``m_prev`` (the membranes before this step).
        u, m_prev: saved membranes before reset and of the previous step ``[A, B, 5H]``.
        c_in, c: the cell's input and output ``c`` ``[A, B, H]``.
        aux: saved analog pre-activations, or None.
        gz_out: written with the gradient of the pre-activations ``z`` ``[A, B, 4H]``.

    Returns:
        ``(g_h_in [A, B, H], g_c_in [A, B, H], g_v_sig [3H], g_leak_sig [3H], g_scalars [6])`` with
        scalars ``(V+_g, V-_g, leak_g, V+_c, V-_c, leak_c)``.
    """
    hid = gh.shape[-1]
    h3, name, gamma = 3 * hid, cfg.surrogate, cfg.gamma
    u_sig, u_g, u_c = u[..., :h3], u[..., h3 : 4 * hid], u[..., 4 * hid :]
    gm_sig, gm_g, gm_c = gm[..., :h3], gm[..., h3 : 4 * hid], gm[..., 4 * hid :]
    x_sig = u_sig / p.v_sig - 1.0
    s_sig = _above(u_sig, p.v_sig)
    f_gate, o_gate = s_sig[..., hid : 2 * hid], s_sig[..., 2 * hid :]
    zero = u.new_zeros(())

    # tanh_c (ternary) and h = o * S_c
    pos_c, neg_c = _above(u_c, p.vcp), _above(p.vcn, u_c)
    g_sc = gh * o_gate
    g_o = gh * (pos_c - neg_c)
    g_uc, g_vcp, g_vcn, g_leak_c = _ternary_backward(
        g_sc, gm_c, u_c, p.vcp, p.vcn, c >= 0, m_prev[..., 4 * hid :], cfg
    )
    g_c = g_uc + gc

    # gate values and c = f * c_in + i * g
    z_i = aux[..., :hid] if not cfg.spike_i else None  # type: ignore[index]
    z_g = aux[..., -hid:] if (not cfg.spike_g or cfg.shift) else None  # type: ignore[index]
    if cfg.spike_g:
        pos_g, neg_g = _above(u_g, p.vgp), _above(p.vgn, u_g)
        g_gate = pos_g - neg_g
    else:
        g_gate = _analog_tanh(z_g, cfg.activation, p.vgp, p.vgn)  # type: ignore[arg-type]
    i_gate = s_sig[..., :hid] if cfg.spike_i else _analog_sigmoid(z_i, cfg.activation, p.v_sig[0])  # type: ignore[arg-type]
    g_cin = g_c * f_gate
    g_i = g_c * g_gate
    g_g = g_c * i_gate
    g_f = g_c * c_in

    # g gate
    if cfg.spike_g:
        g_zg, g_vgp, g_vgn, g_leak_g = _ternary_backward(
            g_g, gm_g, u_g, p.vgp, p.vgn, None if z_g is None else z_g >= 0, m_prev[..., h3 : 4 * hid], cfg
        )
        gm_g_new = g_zg * p.leak_g
    else:
        g_zg, g_vgp, g_vgn = _analog_tanh_backward(g_g, z_g, g_gate, cfg.activation, p)  # type: ignore[arg-type]
        g_leak_g, gm_g_new = zero, gm_g

    # i, f, o (IF population)
    g_s = torch.cat([g_i if cfg.spike_i else torch.zeros_like(g_i), g_f, g_o], dim=-1)
    g_xs = (g_s - gm_sig * p.v_sig) * surrogate_derivative(x_sig, name, gamma)
    g_us = gm_sig + g_xs / p.v_sig
    g_v_sig = -(gm_sig * s_sig).sum((0, 1)) - (g_xs * u_sig).sum((0, 1)) / p.v_sig**2
    g_leak_sig = (g_us * m_prev[..., :h3]).sum((0, 1))
    g_zsig = g_us
    if not cfg.spike_i:
        gz_i, gv_i = _analog_sigmoid_backward(g_i, z_i, i_gate, cfg.activation, p.v_sig[0])  # type: ignore[arg-type]
        g_zsig = torch.cat([g_us[..., :hid] + gz_i, g_us[..., hid:]], dim=-1)
        g_v_sig = g_v_sig + torch.cat([gv_i.view(1), g_v_sig.new_zeros(h3 - 1)])
    gz = torch.cat([g_zsig, g_zg], dim=-1)
    gm.copy_(torch.cat([g_us * p.leak_sig, gm_g_new, g_uc * p.leak_c], dim=-1))
    gz_out.copy_(gz)
    g_hin = torch.matmul(gz, w_hh_t.t())
    g_scalars = torch.stack([g_vgp, g_vgn, g_leak_g, g_vcp, g_vcn, g_leak_c])
    return g_hin, g_cin, g_v_sig, g_leak_sig, g_scalars


def _ternary_backward(
    grad: Tensor, gm: Tensor, u: Tensor, vp: Tensor, vn: Tensor, positive: Tensor | None, m_prev: Tensor, cfg: FusedConfig
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Backward of a ternary neuron ``S = H(U/V+ - 1) - H(U/V- - 1)``, ``M = U - S+ V+ - S- V-``.

    Args:
        grad: gradient of its output ``S``; gm: of its membrane after reset ``M``.
        u: membrane before reset; m_prev: membrane of the previous step.
        positive: where the input was >= 0 (the bias shift added ``V+/(2T)`` there, else ``V-/(2T)``);
            only read with the shift.

    Returns:
        ``(dL/dU, dL/dV+, dL/dV-, dL/dlambda)``; ``dL/dU`` is also the gradient of the input current.
    """
    x_p, x_n = u / vp - 1.0, u / vn - 1.0
    g_xp = (grad - gm * vp) * surrogate_derivative(x_p, cfg.surrogate, cfg.gamma)
    g_xn = (-grad - gm * vn) * surrogate_derivative(x_n, cfg.surrogate, cfg.gamma)
    g_u = gm + g_xp / vp + g_xn / vn
    g_vp = -(gm * _above(u, vp)).sum() - (g_xp * u).sum() / vp**2
    g_vn = -(gm * _above(vn, u)).sum() - (g_xn * u).sum() / vn**2
    if cfg.shift and positive is not None:
        on_pos = torch.where(positive, g_u, g_u.new_zeros(())).sum()
        g_vp = g_vp + cfg.shift * on_pos
        g_vn = g_vn + cfg.shift * (g_u.sum() - on_pos)
    return g_u, g_vp, g_vn, (g_u * m_prev).sum()


def _analog_sigmoid_backward(
    grad: Tensor, z: Tensor, value: Tensor, activation: str, v: Tensor
) -> tuple[Tensor, Tensor]:
    """Gradients of an analog sigmoid-type gate w.r.t. its input and (hard) threshold."""
    if activation == "standard":
        return grad * value * (1.0 - value), grad.new_zeros(())
    a = z / v + 0.5
    g_in = torch.where((a >= 0.0) & (a <= 1.0), grad, grad.new_zeros(()))
    return g_in / v, -(g_in * z).sum() / v**2


def _analog_tanh_backward(
    grad: Tensor, z: Tensor, value: Tensor, activation: str, p: _Params
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of an analog tanh-type g gate w.r.t. its input and its two thresholds."""
    if activation == "standard":
        zero = grad.new_zeros(())
        return grad * (1.0 - value * value), zero, zero
    a_pos, a_neg = z / p.vgp, z / (-p.vgn)
    zero = grad.new_zeros(())
    in_pos = torch.where((a_pos >= 0.0) & (a_pos <= 1.0), grad, zero)
    in_neg = torch.where((a_neg >= -1.0) & (a_neg <= 0.0), grad, zero)
    return in_pos / p.vgp - in_neg / p.vgn, -(in_pos * z).sum() / p.vgp**2, (in_neg * z).sum() / p.vgn**2


_STEP_CACHE: dict[str, Callable[..., Any]] = {}


def _steps(compiled: bool) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The forward/backward wavefront functions, eager or ``torch.compile``d (built once per process)."""
    if not compiled:
        return forward_step, backward_step
    if not _STEP_CACHE:
        _STEP_CACHE["fwd"] = torch.compile(forward_step, dynamic=True)
        _STEP_CACHE["bwd"] = torch.compile(backward_step, dynamic=True)
    return _STEP_CACHE["fwd"], _STEP_CACHE["bwd"]


def _cpp(t: Tensor, cfg: FusedConfig) -> Any:
    """The C++ kernel module when ``cfg.use_cpp``, else None (the Python wavefront functions run).

    Raises:
        RuntimeError: ``use_cpp`` on a tensor the kernels cannot take, or kernels that are not built.
    """
    if not cfg.use_cpp:
        return None
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
        raise RuntimeError(f"the C++ spiking kernels take float32/float64 CPU tensors, got {t.dtype} on {t.device}")
    from ..kernels.build import fused_cell_kernels

    ext = fused_cell_kernels()
    if ext is None:
        raise RuntimeError("the C++ spiking kernels are not built; use backend='torch'")
    return ext


def _scalars(p: _Params, cfg: FusedConfig) -> list[float]:
    """Arguments of the C++ kernels: ``vgp, vgn, leak_g, vcp, vcn, leak_c, shift, gamma``."""
    values = torch.stack([p.vgp, p.vgn, p.leak_g, p.vcp, p.vcn, p.leak_c]).tolist()
    return [float(v) for v in values] + [float(cfg.shift), float(cfg.gamma)]


def _forward(
    proj: Tensor, w_hh_t: Tensor, h0: Tensor, c0: Tensor, p: _Params, cfg: FusedConfig, save: bool
) -> tuple[FusedOutput, dict[str, Tensor]]:
    """The wavefront forward pass without autograd; returns outputs and what backward needs.

    Buffers ``[N, T(+1), B, .]`` are addressed through strided diagonal views: cell ``(n, d - n)``
    of wavefront ``d`` sits at flat index ``n * (T - 1) + d`` of an ``[N, T]`` buffer.
    """
    fwd, _ = _steps(cfg.compiled)
    t_max, n_steps, batch, hid = cfg.timesteps, proj.shape[0], proj.shape[-2], h0.shape[-1]
    # h/c of "element -1" (the initial state) at ext index 0, element n at ext index n + 1
    h_ext = proj.new_empty(n_steps + 1, t_max, batch, hid)
    c_ext = proj.new_empty(n_steps + 1, t_max, batch, hid)
    h_ext[0] = h0
    c_ext[0] = c0
    h_flat, c_flat = h_ext.view(-1, batch, hid), c_ext.view(-1, batch, hid)
    proj_flat = None if cfg.direct else proj.reshape(-1, batch, 4 * hid)
    saved: dict[str, Tensor] = {}
    u_flat = aux_flat = None
    if save:
        # membranes before each step, [N, T+1]: element n before step t at (n, t); index T is the end
        m_all = proj.new_empty(n_steps, t_max + 1, batch, 5 * hid)
        m_all[:, 0] = 0.0
        m_flat = m_all.view(-1, batch, 5 * hid)
        u_all = proj.new_empty(n_steps, t_max, batch, 5 * hid)  # membranes before reset
        u_flat = u_all.view(-1, batch, 5 * hid)
        saved.update(u=u_all, m=m_all)
        width = _aux_width(cfg)
        if width:
            aux_all = proj.new_empty(n_steps, t_max, batch, width * hid)
            aux_flat = aux_all.view(-1, batch, width * hid)
            saved["aux"] = aux_all
    else:
        mem = proj.new_zeros(n_steps, batch, 5 * hid)  # membranes, one row per element
    counts = proj.new_zeros(5)
    stride = t_max - 1
    for d in range(n_steps + t_max - 1):
        n_lo, n_hi = max(0, d - t_max + 1), min(d, n_steps - 1)
        count = n_hi - n_lo + 1
        start = n_lo * stride + d  # flat index of cell (n_lo, d - n_lo) in [N, T] and of its inputs in ext
        x_proj = proj[n_lo : n_hi + 1] if cfg.direct else _diag(proj_flat, start, count, stride)  # type: ignore[arg-type]
        if save:
            m_start = n_lo * t_max + d  # (n, d - n) in [N, T+1]
            m_in = _diag(m_flat, m_start, count, t_max)
            m_out = _diag(m_flat, m_start + 1, count, t_max)
        else:
            m_in = m_out = mem[n_lo : n_hi + 1]
        h_in = _diag(h_flat, start, count, stride)
        c_in = _diag(c_flat, start, count, stride)
        outputs = (
            _diag(h_flat, start + t_max, count, stride),
            _diag(c_flat, start + t_max, count, stride),
            m_out,
            None if u_flat is None else _diag(u_flat, start, count, stride),
            None if aux_flat is None else _diag(aux_flat, start, count, stride),
        )
        counts += fwd(x_proj, h_in, c_in, m_in, w_hh_t, p, cfg, *outputs)
    saved.update(h_ext=h_ext, c_ext=c_ext)
    return FusedOutput(h_ext[1:].clone(), c_ext[1:].clone(), counts), saved


def _backward(
    grad_h: Tensor | None,
    grad_c: Tensor | None,
    saved: dict[str, Tensor],
    w_hh_t: Tensor,
    p: _Params,
    cfg: FusedConfig,
    needs: tuple[bool, ...],
) -> tuple[Tensor | None, ...]:
    """Reverse wavefront; returns gradients for ``(proj, w_hh_t, h0, c0, v_sig, leak_sig, vgp, vgn,
    leak_g, vcp, vcn, leak_c)``; those of ``h0`` and ``c0`` per step, ``[T, B, H]``."""
    _, bwd = _steps(cfg.compiled)
    h_ext, c_ext, u_all, m_all = saved["h_ext"], saved["c_ext"], saved["u"], saved["m"]
    n_steps, t_max, batch, hid = u_all.shape[0], u_all.shape[1], u_all.shape[2], h_ext.shape[-1]
    stride = t_max - 1
    gh_ext = h_ext.new_zeros(h_ext.shape)
    gc_ext = c_ext.new_zeros(c_ext.shape)
    if grad_h is not None:
        gh_ext[1:] = grad_h
    if grad_c is not None:
        gc_ext[1:] = grad_c
    gh_flat, gc_flat = gh_ext.view(-1, batch, hid), gc_ext.view(-1, batch, hid)
    c_flat = c_ext.view(-1, batch, hid)
    u_flat, m_flat = u_all.view(-1, batch, 5 * hid), m_all.view(-1, batch, 5 * hid)
    aux_flat = saved["aux"].view(-1, batch, saved["aux"].shape[-1]) if "aux" in saved else None
    gmem = u_all.new_zeros(n_steps, batch, 5 * hid)  # gradient of each element's membrane after its step
    gz_all = u_all.new_empty(n_steps, t_max, batch, 4 * hid)
    gz_flat = gz_all.view(-1, batch, 4 * hid)
    g_v_sig = u_all.new_zeros(3 * hid)
    g_leak_sig = u_all.new_zeros(3 * hid)
    g_scalars = u_all.new_zeros(6)  # vgp, vgn, leak_g, vcp, vcn, leak_c
    for d in reversed(range(n_steps + t_max - 1)):
        n_lo, n_hi = max(0, d - t_max + 1), min(d, n_steps - 1)
        count = n_hi - n_lo + 1
        start = n_lo * stride + d
        m_start = n_lo * t_max + d
        gm = gmem[n_lo : n_hi + 1]
        gz = _diag(gz_flat, start, count, stride)
        gh_in = _diag(gh_flat, start, count, stride)
        gc_in = _diag(gc_flat, start, count, stride)
        cell = (
            _diag(gh_flat, start + t_max, count, stride),  # gradient of this wavefront's h
            _diag(gc_flat, start + t_max, count, stride),  # ... and c
            gm,
            _diag(u_flat, start, count, stride),
            _diag(m_flat, m_start, count, t_max),
            _diag(c_flat, start, count, stride),  # c_in
            _diag(c_flat, start + t_max, count, stride),  # c
            None if aux_flat is None else _diag(aux_flat, start, count, stride),
        )
        g_hin, g_cin, gv, gl, gs = bwd(*cell, w_hh_t, p, cfg, gz)
        gh_in.add_(g_hin)
        gc_in.add_(g_cin)
        g_v_sig += gv
        g_leak_sig += gl
        g_scalars += gs

    g_proj = g_w = g_h0 = g_c0 = None
    if needs[0]:
        g_proj = gz_all.sum(1) if cfg.direct else gz_all
    if needs[1]:
        g_w = h_ext[:n_steps].reshape(-1, hid).t().mm(gz_all.view(-1, 4 * hid))
    if needs[2]:
        g_h0 = gh_ext[0]
    if needs[3]:
        g_c0 = gc_ext[0]
    return (g_proj, g_w, g_h0, g_c0, g_v_sig, g_leak_sig, *g_scalars.unbind(0))


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        cfg: FusedConfig,
        proj: Tensor,
        w_hh_t: Tensor,
        h0: Tensor,
        c0: Tensor,
        *params: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        p = _Params(*params)  # v_sig, leak_sig, vgp, vgn, leak_g, vcp, vcn, leak_c
        save = any(ctx.needs_input_grad)  # type: ignore[attr-defined]
        out, saved = _forward(proj, w_hh_t, h0, c0, p, cfg, save)
        if save:
            names = sorted(saved)
            ctx.names = names  # type: ignore[attr-defined]
            ctx.cfg = cfg  # type: ignore[attr-defined]
            ctx.save_for_backward(*(saved[k] for k in names), w_hh_t, *p)
        ctx.mark_non_differentiable(out.counts)
        ctx.state_dims = (h0.dim(), c0.dim())  # type: ignore[attr-defined]
        return out.h, out.c, out.counts

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_h: Tensor, grad_c: Tensor, _: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        tensors = ctx.saved_tensors  # type: ignore[attr-defined]
        # the forward ran without autocast (snnlstm.backends.stack); the backward does too, whatever the
        # caller's autocast state (the engine runs it on the caller's thread on the CPU)
        with torch.autocast(tensors[0].device.type, enabled=False):
            k = len(ctx.names)  # type: ignore[attr-defined]
            saved = dict(zip(ctx.names, tensors[:k]))  # type: ignore[attr-defined]
            w_hh_t, p = tensors[k], _Params(*tensors[k + 1 :])
            needs = tuple(ctx.needs_input_grad[1:])  # type: ignore[attr-defined]
            grads = list(_backward(grad_h, grad_c, saved, w_hh_t, p, ctx.cfg, needs))  # type: ignore[attr-defined]
            for k, dim in ((2, ctx.state_dims[0]), (3, ctx.state_dims[1])):  # type: ignore[attr-defined]
                if grads[k] is not None and dim == 2:  # one state [B, H] read at every step
                    grads[k] = grads[k].sum(0)
            grads = [g if need else None for g, need in zip(grads, needs)]
            return (None, *grads)


def _per_step(state: Tensor, t_max: int) -> Tensor:
    """An initial state as the contiguous ``[T, B, H]`` the C++ layer reads (``[B, H]`` at every step)."""
    return (state.unsqueeze(0).expand(t_max, *state.shape) if state.dim() == 2 else state).contiguous()


class _CppLayer(torch.autograd.Function):
    """The whole layer in two C++ calls (``layer_forward`` / ``layer_backward`` of ``fused_cell.cpp``:
    every wavefront, its recurrent products and neuron updates, without returning to Python); the
    weight gradients are then two large products and a reduction here."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        cfg: FusedConfig,
        ext: Any,
        proj: Tensor,
        w_hh_t: Tensor,
        h0: Tensor,
        c0: Tensor,
        *params: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        p = _Params(*params)
        save = any(ctx.needs_input_grad)  # type: ignore[attr-defined]
        t_max = cfg.timesteps
        h0e, c0e = _per_step(h0, t_max), _per_step(c0, t_max)
        scalars = _scalars(p, cfg)
        flags = (cfg.spike_i, cfg.spike_g, cfg.activation == "standard")
        v_sig, leak_sig = p.v_sig.contiguous(), p.leak_sig.contiguous()
        h, c, counts, u_all, aux_all = ext.layer_forward(
            proj.contiguous(), w_hh_t, h0e, c0e, v_sig, leak_sig, scalars, *flags, cfg.direct, save, _aux_width(cfg)
        )
        if save:
            ctx.cfg, ctx.ext, ctx.scalars = cfg, ext, scalars  # type: ignore[attr-defined]
            ctx.has_aux = aux_all.numel() > 0  # type: ignore[attr-defined]
            ctx.save_for_backward(u_all, aux_all, h, c, h0e, c0e, w_hh_t, v_sig, leak_sig)
        ctx.mark_non_differentiable(counts)
        ctx.state_dims = (h0.dim(), c0.dim())  # type: ignore[attr-defined]
        return h, c, counts

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_h: Tensor | None, grad_c: Tensor | None, _: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        u_all, aux_all, h, c, h0e, c0e, w_hh_t, v_sig, leak_sig = ctx.saved_tensors  # type: ignore[attr-defined]
        # the forward ran without autocast (snnlstm.backends.stack); the backward does too, whatever the
        # caller's autocast state (the engine runs it on the caller's thread on the CPU)
        with torch.autocast(u_all.device.type, enabled=False):
            cfg: FusedConfig = ctx.cfg  # type: ignore[attr-defined]
            needs = ctx.needs_input_grad[2:]  # type: ignore[attr-defined]
            n_steps, hid = u_all.shape[0], h.shape[-1]
            flags = (cfg.spike_i, cfg.spike_g, cfg.activation == "standard", REGISTRY[cfg.surrogate].kernel_id)
            gz_all, g_h0, g_c0, grads = ctx.ext.layer_backward(  # type: ignore[attr-defined]
                None if grad_h is None else grad_h.contiguous(),
                None if grad_c is None else grad_c.contiguous(),
                u_all,
                aux_all if ctx.has_aux else None,  # type: ignore[attr-defined]
                c,
                c0e,
                w_hh_t,
                v_sig,
                leak_sig,
                ctx.scalars,  # type: ignore[attr-defined]
                *flags,
            )
            g_proj = g_w = None
            if needs[0]:
                if not cfg.direct:
                    g_proj = gz_all
                elif cfg.timesteps == 1:
                    g_proj = gz_all.view(n_steps, *gz_all.shape[2:])
                else:
                    g_proj = gz_all.sum(1)
            if needs[1]:  # sum over cells of h_in^T gz: element 0 reads h0, element n the h of element n - 1
                g_w = h0e.view(-1, hid).t().mm(gz_all[0].view(-1, 4 * hid))
                if n_steps > 1:
                    g_w.addmm_(h[:-1].reshape(-1, hid).t(), gz_all[1:].view(-1, 4 * hid))
            states = []
            for g, dim in ((g_h0, ctx.state_dims[0]), (g_c0, ctx.state_dims[1])):  # type: ignore[attr-defined]
                states.append(g.sum(0) if dim == 2 else g)  # one state [B, H] read at every step
            g_v_sig, g_leak_sig, g_scalars = grads.split([3 * hid, 3 * hid, 6])
            out = (g_proj, g_w, *states, g_v_sig, g_leak_sig, *g_scalars.unbind(0))
            return (None, None, *(g if need else None for g, need in zip(out, needs)))


def fused_spiking_layer(
    proj: Tensor,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    v_sig: Tensor,
    leak_sig: Tensor,
    v_g: tuple[Tensor, Tensor],
    leak_g: Tensor,
    v_c: tuple[Tensor, Tensor],
    leak_c: Tensor,
    cfg: FusedConfig,
) -> FusedOutput:
    """One spiking LSTM layer over a whole sequence, pipelined, with the fused backward pass.

    Args:
        proj: input projections including the bias and the i/f/o offsets ``V/2 + V/(2T)``:
            ``[N, B, 4H]`` (direct) or ``[N, T, B, 4H]`` (spike inputs), gate order (i, f, o, g).
        w_hh_t: recurrent weights ``[H, 4H]``.
        h0, c0: initial state, ``[B, H]`` (read at every step of the first element) or ``[T, B, H]``
            (one per step: the per-step state of the previous element, as the returned ``h[-1]``,
            ``c[-1]`` of an earlier call on the preceding part of the sequence).
        v_sig, leak_sig: thresholds and leaks of the i, f, o neurons, ``[3H]``.
        v_g, leak_g: ``(V+, V-)`` and leak of the g neuron (0-dim).
        v_c, leak_c: ``(V+, V-)`` and leak of the tanh_c neuron (0-dim).
        cfg: static settings.

    Returns:
        :class:`FusedOutput`; ``h`` and ``c`` are differentiable w.r.t. every tensor argument.
    """
    get_surrogate(cfg.surrogate)  # raises ValueError naming the allowed surrogates
    ext = _cpp(proj, cfg)
    if ext is not None:
        h, c, counts = _CppLayer.apply(cfg, ext, proj, w_hh_t, h0, c0, v_sig, leak_sig, *v_g, leak_g, *v_c, leak_c)
    else:
        h, c, counts = _FusedLayer.apply(cfg, proj, w_hh_t, h0, c0, v_sig, leak_sig, *v_g, leak_g, *v_c, leak_c)
    return FusedOutput(h, c, counts)
