"""The T+N-1 wavefront of the spiking LSTM through autograd, one step function per wavefront.

Cell ``(n, t)`` depends only on ``(n-1, t)`` and ``(n, t-1)``, so all cells with ``n + t = d`` run as
one batch of up to ``T`` elements in flight (Datta et al. 2022, Fig. 2). Same model, outputs and
gradients as :func:`snnlstm.backends.reference.sequential`; any device, optionally through
``torch.compile`` (``compiled``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ..functional.cells import SpikingCellParams
from .reference import finish_counts, snn_step

StepFn = Callable[..., tuple[Tensor, Tensor, Tensor]]
_COMPILED: dict[str, Callable[..., Any]] = {}


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=True)``, built once per process and function."""
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn.__name__]


def pipelined(
    proj: Tensor,
    direct: bool,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
    timesteps: int,
    step: StepFn = snn_step,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """T+N-1 wavefront schedule.

    At wavefront ``d`` the elements ``n_lo..n_hi`` (``n_lo = max(0, d-T+1)``, ``n_hi = min(d, N-1)``)
    are in flight, element ``n`` at its step ``t = d - n``; they form one batch ``[A, B, ...]``.
    Membranes follow their element (drop the finished one, append a fresh one); ``h``/``c`` inputs
    are the previous wavefront's outputs shifted by one element, with ``(h0, c0)`` for element 0.

    Args:
        proj: input projections ``[N, B, 4H]`` (direct) or ``[N, T, B, 4H]`` (spike inputs).
        h0, c0: ``[B, H]`` (element 0 reads it at every step) or ``[T, B, H]`` (one per step).

    Returns:
        ``h`` spikes and ``c``, each ``[N, T, B, H]``, and the spike counts.
    """
    n_steps, batch, hid, t_max = proj.shape[0], proj.shape[-2], h0.shape[-1], timesteps
    # per-cell projections as a list: slicing one big tensor per step would make autograd allocate
    # (and zero-fill) a full-size gradient for every slice in the backward pass
    cells = proj.unbind(0) if direct else proj.reshape(n_steps * t_max, batch, 4 * hid).unbind(0)
    hc_init = torch.cat([h0, c0], dim=-1)
    per_step = hc_init.dim() == 3
    if not per_step:
        hc_init = hc_init.unsqueeze(0)
    fresh = proj.new_zeros(1, batch, 5 * hid)
    mem, hc_prev = fresh[:0], hc_init[:0]
    outs, counts = [], []
    for d in range(n_steps + t_max - 1):
        n_lo, n_hi = max(0, d - t_max + 1), min(d, n_steps - 1)
        drop = int(d >= t_max)  # element d - T finished last wavefront
        mem = torch.cat([mem[drop:], fresh]) if d < n_steps else mem[drop:]
        hc_in = hc_prev[: hc_prev.shape[0] - int(d >= n_steps)]
        if d < t_max:  # element 0 reads the initial state at its step d
            hc_in = torch.cat([hc_init[d : d + 1] if per_step else hc_init, hc_in])
        if direct:
            x_proj = torch.stack(cells[n_lo : n_hi + 1])
        elif t_max == 1:
            x_proj = cells[d].unsqueeze(0)
        else:  # cell (n, d - n) sits at flat index n * T + d - n = n * (T - 1) + d
            x_proj = torch.stack(cells[n_lo * (t_max - 1) + d : n_hi * (t_max - 1) + d + 1 : t_max - 1])
        hc_prev, mem, step_counts = step(x_proj, hc_in, mem, w_hh_t, p, spike_fn)
        counts.append(step_counts)
        outs.append(hc_prev)
    hc = torch.cat(outs).index_select(0, wavefront_order(n_steps, t_max, proj.device)).view(n_steps, t_max, batch, 2 * hid)
    return hc[..., :hid], hc[..., hid:], finish_counts(counts, hid)


def wavefront_order(n_steps: int, timesteps: int, device: torch.device) -> Tensor:
    """For each cell ``(n, t)`` in ``[N, T]`` order, its row in the wavefronts' outputs concatenated
    (wavefront ``d = n + t`` holds the elements ``max(0, d - T + 1)..min(d, N - 1)`` in order).

    Built with device arithmetic (no host-to-device copy, which would synchronise an accelerator).
    """
    fronts = torch.arange(n_steps + timesteps - 1, device=device)
    first = (fronts - timesteps + 1).clamp(min=0)  # first element in flight at each wavefront
    size = fronts.clamp(max=n_steps - 1) - first + 1
    start = size.cumsum(0) - size  # row of each wavefront's first cell
    n = torch.arange(n_steps, device=device).unsqueeze(1)
    d = n + torch.arange(timesteps, device=device)  # [N, T]
    return (start[d] + n - first[d]).reshape(-1)
