"""Spike-rate, synaptic-operation and energy statistics as a torchmetrics ``Metric``.

:class:`SpikeStatsMetric` accumulates the :data:`snnlstm.measure.stats.SpikeStats` of many forward calls of
one spiking LSTM (all states are sums, so they add up across processes under DDP) and turns them
into firing rates, sparsities, operations per sample and the energy ratio ``E_ANN / E_SNN``.

Definitions (per layer ``k`` and population ``g`` in ``i, f, g, o, tanh_c`` (LSTM gates), ``lif``,
``ahp`` (LSNN) plus the LSTM layer output ``h``; ``S`` = spike count, ``U`` = neuron updates
(``B * N * T * H`` for a gate) of the forwards in which ``g`` spiked, ``B_tot`` = samples seen):

.. math::

    rate_{k,g} = S_{k,g} / U_{k,g}, \\qquad sparsity_{k,g} = 1 - rate_{k,g},

    rate = \\frac{\\sum_{k,g \\ne h} S_{k,g}}{\\sum_{k,g \\ne h} U_{k,g}}
    \\quad (\\text{all spiking neurons of all layers; } h = o \\cdot \\tanh_c
    \\text{ is a product, not a neuron population}),

    E_{SNN} = (MAC \\cdot E_{MAC} + AC \\cdot E_{AC}) / B_{tot}, \\qquad
    energy\\_ratio = E_{ANN} / E_{SNN}.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from .energy import E_AC_PJ, E_MAC_PJ, check_energy_costs, compute_energy_pj, energy_ratio
from .stats import GATE_NAMES, LSNN_POPULATIONS, LayerStats, SpikeStats

#: Populations tracked per layer: the LSTM gate neurons, the LSNN's LIF and AHP neurons, then the
#: LSTM layer output ``h``.
POPULATIONS: tuple[str, ...] = GATE_NAMES + LSNN_POPULATIONS + ("h",)
_NEURON_POPS = len(POPULATIONS) - 1  # every column but the last is a neuron population; "h" is a product


class SpikeStatsUpdate(NamedTuple):
    """Sums contributed by one forward call (the states of :class:`SpikeStatsMetric`).

    Attributes:
        spikes: ``[L, P]`` spike counts per layer and population (:data:`POPULATIONS`), 0 if absent.
        gate_steps: ``[L, P]`` neuron updates of the populations that spiked (0 where absent).
        present: ``[L, P]`` 1 where the population spiked in this forward, else 0.
        neuron_steps: ``[L]`` neuron updates per gate, ``B * N * T * H`` (``B * N * H`` in ANN mode).
        ac: ``[]`` accumulates as run, all layers.
        mac: ``[]`` multiply-accumulates as run, all layers.
        ann_ac: ``[]`` accumulates of the iso-architecture non-spiking LSTM.
        ann_mac: ``[]`` multiply-accumulates of the iso-architecture non-spiking LSTM.
        samples: ``[]`` batch size B.
    """

    spikes: Tensor
    gate_steps: Tensor
    present: Tensor
    neuron_steps: Tensor
    ac: Tensor
    mac: Tensor
    ann_ac: Tensor
    ann_mac: Tensor
    samples: Tensor


def _spike_stats_update(
    stats: SpikeStats,
    num_layers: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> SpikeStatsUpdate:
    """Turn one forward's per-layer stats into summable tensors (no host-device synchronisation).

    Args:
        stats: one :class:`snnlstm.measure.stats.LayerStats` per layer.
        num_layers: expected number of layers (checked when given).
        device: device of the result (default: the device of ``stats[0].ac``).
        dtype: floating dtype of the result.

    Returns:
        :class:`SpikeStatsUpdate`.

    Raises:
        ValueError: empty stats, a layer-count mismatch or an unknown population name.
    """
    if not isinstance(stats, (tuple, list)) or len(stats) == 0 or not all(isinstance(s, LayerStats) for s in stats):
        raise ValueError("expected SpikeStats: a non-empty tuple of LayerStats (the .stats of a SpikingLSTM forward)")
    if num_layers is not None and len(stats) != num_layers:
        raise ValueError(f"expected stats of {num_layers} layer(s), got {len(stats)}")
    device = torch.as_tensor(stats[0].ac).device if device is None else torch.device(device)
    zero = torch.zeros((), device=device, dtype=dtype)
    spikes, host = [], []  # host: gate_steps, present (known on the CPU without a sync)
    for k, layer in enumerate(stats):
        unknown = set(layer.spikes) - set(POPULATIONS)
        if unknown:
            raise ValueError(f"layer {k}: unknown spike population(s) {sorted(unknown)}; allowed: {', '.join(POPULATIONS)}")
        for pop in POPULATIONS:
            count = layer.spikes.get(pop)
            spikes.append(zero if count is None else torch.as_tensor(count).detach().to(device=device, dtype=dtype))
            steps = float((layer.population_steps or {}).get(pop, layer.neuron_steps))
            host.append((0.0 if count is None else steps, 0.0 if count is None else 1.0))
    n_layers, n_pops = len(stats), len(POPULATIONS)
    host_t = torch.tensor(host, dtype=dtype).view(n_layers, n_pops, 2).to(device)
    scalars = torch.tensor(
        [
            *(float(layer.neuron_steps) for layer in stats),
            sum(float(layer.ann_ac) for layer in stats),
            sum(float(layer.ann_mac) for layer in stats),
            float(stats[0].samples),
        ],
        dtype=dtype,
    ).to(device)
    ops = torch.stack([torch.as_tensor(v).detach().to(device=device, dtype=dtype) for s in stats for v in (s.ac, s.mac)])
    ops = ops.view(n_layers, 2).sum(0)
    return SpikeStatsUpdate(
        spikes=torch.stack(spikes).view(n_layers, n_pops),
        gate_steps=host_t[..., 0],
        present=host_t[..., 1],
        neuron_steps=scalars[:n_layers],
        ac=ops[0],
        mac=ops[1],
        ann_ac=scalars[n_layers],
        ann_mac=scalars[n_layers + 1],
        samples=scalars[n_layers + 2],
    )


def _spike_stats_compute(
    state: SpikeStatsUpdate, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ
) -> dict[str, Tensor]:
    """Rates, operations per sample and energies from summed states (see the module docstring).

    Keys (``k`` = layer index, ``g`` in :data:`POPULATIONS`; rate keys only for populations that
    spiked in at least one update, so an absent gate is missing, never reported as rate 0):

    * ``l{k}.{g}/rate``, ``l{k}.{g}/sparsity``: per population.
    * ``l{k}/rate``, ``l{k}/sparsity``: all spiking gate neurons of layer ``k``.
    * ``rate``, ``sparsity``: all spiking gate neurons of all layers.
    * ``synops/ac_per_sample``, ``synops/mac_per_sample``, ``ann/ac_per_sample``, ``ann/mac_per_sample``.
    * ``energy/snn_pj_per_sample``, ``energy/ann_pj_per_sample``, ``energy_ratio`` (``E_ANN / E_SNN``).
    * ``count/samples``, ``count/spikes`` and ``count/neuron_steps`` (the totals behind ``rate``;
      they let callers weight several metrics against each other).

    Returns:
        A flat dict of 0-dim tensors; empty when no samples were seen.
    """
    if float(state.samples) <= 0:
        return {}
    out: dict[str, Tensor] = {}
    present = (state.present > 0) & (state.gate_steps > 0)
    present_host = present.cpu().tolist()
    for k, row in enumerate(present_host):
        for j, pop in enumerate(POPULATIONS):
            if row[j]:
                rate = state.spikes[k, j] / state.gate_steps[k, j]
                out[f"l{k}.{pop}/rate"] = rate
                out[f"l{k}.{pop}/sparsity"] = 1.0 - rate
        if any(row[:_NEURON_POPS]):
            mask = present[k, :_NEURON_POPS]
            rate = state.spikes[k, :_NEURON_POPS][mask].sum() / state.gate_steps[k, :_NEURON_POPS][mask].sum()
            out[f"l{k}/rate"] = rate
            out[f"l{k}/sparsity"] = 1.0 - rate
    neuron_mask = present[:, :_NEURON_POPS]
    total_spikes = state.spikes[:, :_NEURON_POPS][neuron_mask].sum()
    total_steps = state.gate_steps[:, :_NEURON_POPS][neuron_mask].sum()
    if bool(neuron_mask.any()):
        out["rate"] = total_spikes / total_steps
        out["sparsity"] = 1.0 - out["rate"]
    samples = state.samples
    out["synops/ac_per_sample"] = state.ac / samples
    out["synops/mac_per_sample"] = state.mac / samples
    out["ann/ac_per_sample"] = state.ann_ac / samples
    out["ann/mac_per_sample"] = state.ann_mac / samples
    out["energy/snn_pj_per_sample"] = compute_energy_pj(state.mac, state.ac, e_mac_pj, e_ac_pj) / samples
    out["energy/ann_pj_per_sample"] = compute_energy_pj(state.ann_mac, state.ann_ac, e_mac_pj, e_ac_pj) / samples
    out["energy_ratio"] = energy_ratio(state.ann_mac, state.ann_ac, state.mac, state.ac, e_mac_pj, e_ac_pj)
    out["count/samples"] = samples
    out["count/spikes"] = total_spikes
    out["count/neuron_steps"] = total_steps
    return out


def spike_stats(stats: SpikeStats, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ) -> dict[str, Tensor]:
    """Functional form: the :class:`SpikeStatsMetric` keys of a single forward's stats.

    Example:
        >>> import torch
        >>> from snnlstm.nn.lstm import SpikingLSTM
        >>> out = SpikingLSTM(3, 4, mode="snn", timesteps=2)(torch.randn(2, 5, 3))
        >>> sorted(spike_stats(out.stats))[:2]
        ['ann/ac_per_sample', 'ann/mac_per_sample']
    """
    check_energy_costs(e_mac_pj, e_ac_pj)
    return _spike_stats_compute(_spike_stats_update(stats), e_mac_pj, e_ac_pj)


class StatsTotals(NamedTuple):
    """Operation and spike totals of one or several layer stacks (sums, not per sample).

    Attributes:
        ac: accumulates as run.
        mac: multiply-accumulates as run.
        ann_ac: accumulates of the iso-architecture non-spiking LSTMs.
        ann_mac: multiply-accumulates of the iso-architecture non-spiking LSTMs.
        spikes: spikes of all spiking gate neurons (0 while every stack ran as an ANN).
        neuron_steps: updates of those neurons (0 while every stack ran as an ANN).
        spiking: whether any stack had spiking neurons (i.e. ``spikes / neuron_steps`` is a rate).
    """

    ac: Tensor
    mac: Tensor
    ann_ac: Tensor
    ann_mac: Tensor
    spikes: Tensor
    neuron_steps: Tensor
    spiking: bool


def sum_spike_stats(results: Sequence[Mapping[str, Tensor]]) -> StatsTotals | None:
    """Add up the :meth:`SpikeStatsMetric.compute` results of several layer stacks.

    A model with several stacks (a translator's encoder and decoder, two ``SpikingLSTM`` s in one
    classifier) runs all their operations for one input, so its totals are the sums of theirs.

    Args:
        results: one ``compute()`` dict per stack; empty dicts (a stack without updates) are skipped.

    Returns:
        The summed :class:`StatsTotals`; None when no result had any samples.
    """
    results = [r for r in results if r]
    if not results:
        return None

    def total(key: str) -> Tensor:
        return sum(r[key] * r["count/samples"] for r in results)  # type: ignore[return-value]

    spiking = [r for r in results if "rate" in r]
    zero = torch.zeros_like(results[0]["count/samples"])
    return StatsTotals(
        ac=total("synops/ac_per_sample"),
        mac=total("synops/mac_per_sample"),
        ann_ac=total("ann/ac_per_sample"),
        ann_mac=total("ann/mac_per_sample"),
        spikes=sum((r["count/spikes"] for r in spiking), zero),
        neuron_steps=sum((r["count/neuron_steps"] for r in spiking), zero),
        spiking=bool(spiking),
    )


def model_spike_stats(
    totals: StatsTotals, samples: float | Tensor, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ
) -> dict[str, Tensor]:
    """The model-level keys of :func:`_spike_stats_compute` from the totals of all its stacks.

    Args:
        totals: :func:`sum_spike_stats` of the model's stacks.
        samples: inputs the model saw (the divisor of the per-sample keys; a decoder called once per
            token is still one input per sequence).
        e_mac_pj: energy per multiply-accumulate, pJ.
        e_ac_pj: energy per accumulate, pJ.

    Returns:
        ``rate`` and ``sparsity`` (only if some stack spiked), ``synops/*_per_sample``,
        ``ann/*_per_sample``, ``energy/snn_pj_per_sample``, ``energy/ann_pj_per_sample``,
        ``energy_ratio`` and ``count/samples``, ``count/spikes``, ``count/neuron_steps``.

    Raises:
        ValueError: ``samples`` is not positive.
    """
    samples = torch.as_tensor(samples, dtype=totals.ac.dtype, device=totals.ac.device)
    if float(samples) <= 0:
        raise ValueError(f"model_spike_stats needs the number of inputs seen (> 0), got {float(samples)}")
    out: dict[str, Tensor] = {}
    if totals.spiking:
        out["rate"] = totals.spikes / totals.neuron_steps
        out["sparsity"] = 1.0 - out["rate"]
    out["synops/ac_per_sample"] = totals.ac / samples
    out["synops/mac_per_sample"] = totals.mac / samples
    out["ann/ac_per_sample"] = totals.ann_ac / samples
    out["ann/mac_per_sample"] = totals.ann_mac / samples
    out["energy/snn_pj_per_sample"] = compute_energy_pj(totals.mac, totals.ac, e_mac_pj, e_ac_pj) / samples
    out["energy/ann_pj_per_sample"] = compute_energy_pj(totals.ann_mac, totals.ann_ac, e_mac_pj, e_ac_pj) / samples
    out["energy_ratio"] = energy_ratio(totals.ann_mac, totals.ann_ac, totals.mac, totals.ac, e_mac_pj, e_ac_pj)
    out["count/samples"] = samples
    out["count/spikes"] = totals.spikes
    out["count/neuron_steps"] = totals.neuron_steps
    return out


class SpikeStatsMetric(Metric):
    """Accumulate the spike statistics of one (multi-layer) spiking LSTM over many forwards.

    All states are sums (``dist_reduce_fx="sum"``), so ``compute()`` returns the statistics of
    everything every process saw. ``compute()`` returns a flat ``dict[str, Tensor]`` (keys in
    :func:`_spike_stats_compute`); in ANN mode (no spikes) only the operation/energy keys (ratio 1).

    No updates: ``compute()`` returns an empty dict (torchmetrics still warns that ``compute`` was
    called before ``update``).

    Args:
        num_layers: layers L of the monitored LSTM (every update must have L layer stats).
        e_mac_pj: energy per multiply-accumulate, pJ.
        e_ac_pj: energy per accumulate, pJ.
        **kwargs: further torchmetrics ``Metric`` arguments (``sync_on_compute``, ``process_group``, ...).

    States (P = 8 populations: :data:`POPULATIONS`):
        ``spikes [L, P]``, ``gate_steps [L, P]``, ``present [L, P]`` (updates in which the
        population spiked), ``neuron_steps [L]``, ``ac``, ``mac``, ``ann_ac``, ``ann_mac``,
        ``samples`` (0-dim); float64 (use ``set_dtype(torch.float32)`` on MPS).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    spikes: Tensor
    gate_steps: Tensor
    present: Tensor
    neuron_steps: Tensor
    ac: Tensor
    mac: Tensor
    ann_ac: Tensor
    ann_mac: Tensor
    samples: Tensor

    def __init__(self, num_layers: int, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        check_energy_costs(e_mac_pj, e_ac_pj)
        self.num_layers = num_layers
        self.e_mac_pj = float(e_mac_pj)
        self.e_ac_pj = float(e_ac_pj)
        shape = (num_layers, len(POPULATIONS))
        for name in ("spikes", "gate_steps", "present"):
            self.add_state(name, default=torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("neuron_steps", default=torch.zeros(num_layers, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("ac", "mac", "ann_ac", "ann_mac", "samples"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, stats: SpikeStats) -> None:  # type: ignore[override]
        """Add one forward's stats (``LSTMOutput.stats`` or the ``stats`` argument of a stats hook)."""
        new = _spike_stats_update(stats, self.num_layers, device=self.spikes.device, dtype=self.spikes.dtype)
        for name, value in new._asdict().items():
            setattr(self, name, getattr(self, name) + value)

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """Flat dict of rates, sparsities, operations/energy per sample and the energy ratio."""
        state = SpikeStatsUpdate(**{name: getattr(self, name) for name in SpikeStatsUpdate._fields})
        return _spike_stats_compute(state, self.e_mac_pj, self.e_ac_pj)


__all__: Sequence[str] = [
    "POPULATIONS",
    "SpikeStatsMetric",
    "SpikeStatsUpdate",
    "StatsTotals",
    "model_spike_stats",
    "spike_stats",
    "sum_spike_stats",
]
