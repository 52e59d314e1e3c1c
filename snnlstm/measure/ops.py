"""Operation counts of one LSTM layer run, as pure functions of what the run produced.

Every backend of :class:`snnlstm.nn.lstm.SpikingLSTM` returns the same tensors (outputs, spike counts),
and these functions turn them into one :class:`~snnlstm.measure.stats.LayerStats`, so the counts cannot
differ between backends. The operation model is the one in :mod:`snnlstm.measure.stats`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional.gates import REPORT_ORDER
from .stats import LayerStats


def ann_ops(elements: int, fan_in: int, hidden: int) -> tuple[float, float]:
    """(MAC, AC) of the iso-architecture non-spiking LSTM layer for ``elements = N * B`` cell steps.

    ``MAC = 4H(F + H) + 3H`` and ``AC = 4H + H`` per cell step.
    """
    mac = elements * (4 * hidden * (fan_in + hidden) + 3 * hidden)
    ac = elements * (4 * hidden + hidden)
    return float(mac), float(ac)


def ann_layer_stats(x: Tensor, hidden: int) -> LayerStats:
    """Stats of a non-spiking layer over ``x [N, B, F]`` (no spikes; the ops of :func:`ann_ops`)."""
    n_steps, batch, fan_in = x.shape
    mac, ac = ann_ops(n_steps * batch, fan_in, hidden)
    ref = torch.zeros((), device=x.device)
    return LayerStats({}, n_steps * batch * hidden, ref + ac, ref + mac, ac, mac, batch, 1, n_steps)


def snn_layer_stats(
    x: Tensor,
    direct: bool,
    h_nt: Tensor,
    counts: dict[str, Tensor],
    spiking_gates: frozenset[str],
    leaks: Tensor,
) -> LayerStats:
    """Stats of one spiking layer (Datta et al.'s operation model).

    Every non-zero recurrent or input spike drives ``4H`` accumulates; an analog (direct) input costs
    ``4H F`` MACs once per element; each step adds the bias/shift (``4H``) and the c-sum (``H``); each
    spiking neuron's membrane update is an AC, or a MAC when its leak differs from 1.

    Args:
        x: the layer input, analog ``[N, B, F]`` (direct) or spikes ``[N, T, B, F]``.
        direct: ``x`` is analog.
        h_nt: output spikes ``[N, T, B, H]``.
        counts: spike counts per gate (:data:`snnlstm.functional.gates.COUNT_ORDER` names).
        spiking_gates: the gates that spike.
        leaks: leaks of the spiking populations (any shape; only whether one differs from 1 matters).

    Returns:
        :class:`LayerStats` with float32 counts on ``h_nt``'s device (no host synchronisation).
    """
    n_steps, timesteps, batch, hid = h_nt.shape
    fan_in = x.shape[-1]
    with torch.no_grad():
        spikes = {g: counts[g].float() for g in REPORT_ORDER if g in spiking_gates}
        nonzero = h_nt.detach().ne(0)
        spikes["h"] = nonzero.sum().float()
        recurrent_nnz = nonzero[:-1].sum().float()
        steps = n_steps * timesteps * batch
        ac = 4 * hid * recurrent_nnz + steps * (4 * hid + hid)
        mac = torch.zeros((), device=h_nt.device)
        if direct:
            mac = mac + n_steps * batch * 4 * hid * fan_in
        else:
            ac = ac + 4 * hid * x.detach().ne(0).sum().float()
        membrane_ops = float(steps * hid * len(spiking_gates))
        leaky = leaks.detach().ne(1.0).any()
        mac = mac + torch.where(leaky, membrane_ops, 0.0)
        ac = ac + torch.where(leaky, 0.0, membrane_ops)
    ann_mac, ann_ac = ann_ops(n_steps * batch, fan_in, hid)
    return LayerStats(spikes, steps * hid, ac, mac, ann_ac, ann_mac, batch, timesteps, n_steps)


def hybrid_layer_stats(
    x: Tensor, hidden: int, timesteps: int, gate_spikes: Tensor, input_spikes: Tensor
) -> LayerStats:
    """Stats of Ponghiran & Roy's hybrid layer over ``x [N, B, F]``.

    Every generator spike drives ``4H`` synapses; each step adds the bias (``4H``) and updates the
    ``5H`` gate and ``F + H`` generator membranes; per element the analog update costs ``7H`` MACs
    (rates, c and h products) and ``H`` ACs (the c sum). The gate spikes drive no synapses (their
    rates enter the analog update), so they cost no operations of their own.

    ``g`` (c̃) counts every spike of both of its membranes ``V+`` and ``V-``. The two membranes never
    fire in the same step (``V+ + V-`` starts at 2 and only falls, by the threshold 512 per spike),
    so per c̃ neuron and step there is at most one spike and its rate over the ``B N T H`` neuron
    updates stays in ``[0, 1]``, like the ternary tanh neuron of SNN mode.

    Args:
        x: layer input ``[N, B, F]``.
        hidden: H.
        timesteps: T.
        gate_spikes: spikes per gate ``[4]`` in ``nn.LSTM``'s order (i, f, c̃, o; c̃: both membranes).
        input_spikes: spikes of the input generators, 0-dim.
    """
    n_steps, batch, fan_in = x.shape
    steps = n_steps * timesteps * batch
    spikes = dict(zip(("i", "f", "g", "o"), gate_spikes.float().unbind(0)))
    ac = 4 * hidden * input_spikes.float() + steps * (4 * hidden + 5 * hidden + fan_in + hidden) + n_steps * batch * hidden
    mac = torch.full((), float(n_steps * batch * 7 * hidden), device=x.device)
    ann_mac, ann_ac = ann_ops(n_steps * batch, fan_in, hidden)
    return LayerStats(spikes, steps * hidden, ac, mac, ann_ac, ann_mac, batch, timesteps, n_steps)
