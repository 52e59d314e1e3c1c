"""The reference schedule of the spiking LSTM: the plain T*N loop (element by element, step by step).

This is the one reference implementation of Datta et al.'s spiking layer: the wavefront backends
(:mod:`snnlstm.backends.pipelined`, :mod:`snnlstm.backends.fused_snn`, the C++ kernels) are tested
against it, and :func:`sequential` takes an optional ``record`` callback that sees every cell step,
which is how :mod:`snnlstm.evaluation.raster` records spike trains.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor

from ..functional.cells import CellMembranes, SpikingCellOutput, SpikingCellParams, spiking_cell_step

#: ``record(n, t, cell_output)`` is called after cell ``(n, t)`` of :func:`sequential`
Recorder = Callable[[int, int, SpikingCellOutput], None]


def snn_step(
    x_proj: Tensor,
    hc_in: Tensor,
    mem: Tensor,
    w_hh_t: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
    record: Callable[[SpikingCellOutput], None] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Recurrent projection + :func:`spiking_cell_step` + spike counts, on packed tensors.

    Args:
        x_proj: input projections of the cells ``[..., 4H]``.
        hc_in: ``[h; c]`` of the previous element at the same step, ``[..., 2H]``.
        mem: membranes ``[sig (3H); g (H); tanh_c (H)]``, ``[..., 5H]``.
        w_hh_t: recurrent weights ``[H, 4H]``.

    Returns:
        ``(hc, mem, counts)``: new ``[h; c]``, membranes, and this step's spike counts ``[3H + 2]``
        (per-unit i, f, o counts, then g and tanh_c totals). One function so that ``compile="step"``
        fuses all of it; packing keeps the per-step bookkeeping outside to a single cat per tensor.
    """
    hidden = hc_in.shape[-1] // 2
    h_in, c_in = hc_in.split(hidden, dim=-1)
    membranes = CellMembranes(*mem.split([3 * hidden, hidden, hidden], dim=-1))
    out = spiking_cell_step(x_proj + h_in @ w_hh_t, c_in, membranes, p, spike_fn)
    if record is not None:
        record(out)
    with torch.no_grad():
        sig = out.sig_spikes.detach()
        counts = torch.cat(
            [
                sig.reshape(-1, sig.shape[-1]).sum(0),
                out.g.detach().ne(0).sum().to(sig.dtype).view(1),
                out.c_spikes.detach().ne(0).sum().to(sig.dtype).view(1),
            ]
        )
    return torch.cat([out.h, out.c], dim=-1), torch.cat(out.mem, dim=-1), counts


def finish_counts(counts: list[Tensor], hidden: int) -> dict[str, Tensor]:
    """Sum the per-step counts of :func:`snn_step` into per-gate totals."""
    total = torch.stack(counts).sum(0)
    i, f, o = total[: 3 * hidden].view(3, hidden).sum(1)
    return {"i": i, "f": f, "o": o, "g": total[3 * hidden], "tanh_c": total[3 * hidden + 1]}


def sequential(
    proj: Tensor,
    direct: bool,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
    timesteps: int,
    step: Callable[..., tuple[Tensor, Tensor, Tensor]] = snn_step,
    record: Recorder | None = None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Reference T*N schedule: for each element n, for each step t.

    Args:
        proj: input projections ``[N, B, 4H]`` (direct) or ``[N, T, B, 4H]`` (spike inputs), gate
            order (i, f, o, g), bias included.
        direct: ``proj`` is the same current at every step.
        w_hh_t: recurrent weights ``[H, 4H]``.
        h0, c0: ``[B, H]`` (read at every step of element 0) or ``[T, B, H]`` (one per step).
        p: neuron constants; spike_fn: surrogate spike function; timesteps: T.
        step: the step function (:func:`snn_step`, or a compiled version of it).
        record: called as ``record(n, t, out)`` with every cell's :class:`SpikingCellOutput`
            (runs the uncompiled :func:`snn_step`).

    Returns:
        ``h`` spikes and ``c``, each ``[N, T, B, H]``, and the spike counts per gate.
    """
    batch, hid = proj.shape[-2], h0.shape[-1]
    hc_init = torch.cat([h0, c0], dim=-1)
    hc_prev = list(hc_init.unbind(0)) if hc_init.dim() == 3 else [hc_init] * timesteps
    counts, outs = [], []
    for n, proj_n in enumerate(proj.unbind(0)):
        mem = proj.new_zeros(batch, 5 * hid)
        for t in range(timesteps):
            x_proj = proj_n if direct else proj_n[t]
            if record is None:
                hc_prev[t], mem, step_counts = step(x_proj, hc_prev[t], mem, w_hh_t, p, spike_fn)
            else:
                seen = functools.partial(record, n, t)
                hc_prev[t], mem, step_counts = snn_step(x_proj, hc_prev[t], mem, w_hh_t, p, spike_fn, seen)
            counts.append(step_counts)
        outs.append(torch.stack(hc_prev))
    hc = torch.stack(outs)
    return hc[..., :hid], hc[..., hid:], finish_counts(counts, hid)
