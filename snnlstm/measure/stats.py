"""Spike and operation counts returned by every spiking LSTM forward pass.

A :class:`LayerStats` is produced per LSTM layer per forward call and flows out of the layer as
the third field of :class:`snnlstm.nn.lstm.LSTMOutput`; nothing is stored on the module. Counts are
summed over the batch, the sequence (N elements), the SNN time steps (T) and the hidden units (H).

Operation model (per layer, per input element; F inputs, H hidden units, T time steps):

* non-spiking LSTM: ``MAC = 4H(F + H) + 3H`` (gate matmuls; f*c, i*g, o*tanh(c)),
  ``AC = 4H + H`` (bias adds; c = f*c + i*g sum).
* spiking LSTM: every non-zero input or recurrent spike drives ``4H`` accumulates
  (``AC += 4H * nnz``); an analog input (direct encoding, first layer) costs ``MAC = 4H*F`` once per
  element (the projection is reused over the T steps); each step adds the bias/shift (``4H`` AC),
  the c-sum (``H`` AC) and one membrane update per spiking neuron (AC for IF, MAC when the leak
  differs from 1). Products with a spike (0/±1) are selections and cost nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, NamedTuple

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..functional.gates import REPORT_ORDER

#: Names of the gate neuron populations of one LSTM layer, in reporting order.
GATE_NAMES: tuple[str, ...] = REPORT_ORDER

#: Names of the neuron populations of an LSNN layer (:class:`snnlstm.nn.lsnn.LSNN`): plain LIF and AHP.
LSNN_POPULATIONS: tuple[str, ...] = ("lif", "ahp")


class LayerStats(NamedTuple):
    """Spike and synaptic-operation counts of one LSTM layer for one forward call.

    Attributes:
        spikes: gate name (``"i", "f", "g", "o", "tanh_c"``, spiking gates only, plus ``"h"`` for
            the layer output; ``"lif"``, ``"ahp"`` for an LSNN layer) -> number of non-zero neuron
            outputs, a detached 0-dim float tensor. Empty in ANN mode.
        neuron_steps: number of neuron updates per gate, ``B * N * T * H`` (``B * N * H`` in ANN mode).
        ac: accumulate operations of this layer as run (0-dim float tensor).
        mac: multiply-accumulate operations of this layer as run (0-dim float tensor).
        ann_ac: accumulates of the iso-architecture non-spiking LSTM on the same batch (float).
        ann_mac: multiply-accumulates of the iso-architecture non-spiking LSTM on the same batch.
        samples: batch size B.
        timesteps: SNN time steps T per element (1 in ANN mode).
        seq_len: number of input elements N.
        population_steps: population name -> neuron updates of that population, where it differs
            from ``neuron_steps`` (an LSNN's LIF and AHP populations have their own sizes); None: all
            populations have ``neuron_steps`` updates.
    """

    spikes: dict[str, Tensor]
    neuron_steps: int
    ac: Tensor
    mac: Tensor
    ann_ac: float
    ann_mac: float
    samples: int
    timesteps: int
    seq_len: int
    population_steps: dict[str, int] | None = None


#: One :class:`LayerStats` per LSTM layer, first layer first.
SpikeStats = tuple[LayerStats, ...]


class StatsSource(nn.Module):
    """Base of the spiking layers that report :data:`SpikeStats` after every forward
    (:class:`snnlstm.nn.lstm.SpikingLSTM`, :class:`snnlstm.nn.lsnn.LSNN`); subclasses set ``num_layers``
    and call :meth:`_report_stats` at the end of ``forward``."""

    num_layers: int

    def __init__(self) -> None:
        super().__init__()
        self._stats_hooks: OrderedDict[int, Callable[["StatsSource", SpikeStats], None]] = OrderedDict()

    def register_stats_hook(self, hook: Callable[["StatsSource", SpikeStats], None]) -> RemovableHandle:
        """Call ``hook(module, stats)`` after every forward (how :class:`SpikeMonitor` listens).

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._stats_hooks)
        self._stats_hooks[handle.id] = hook
        return handle

    def _report_stats(self, stats: SpikeStats) -> None:
        for hook in self._stats_hooks.values():
            hook(self, stats)


def named_stats_sources(module: nn.Module, root_name: str = "model") -> dict[str, StatsSource]:
    """Every :class:`StatsSource` inside ``module`` by its name in ``module.named_modules()``.

    Args:
        module: the model to search (found by type, outermost first).
        root_name: the name given to ``module`` itself when it is a :class:`StatsSource` (its name
            in ``named_modules()`` is the empty string).

    Returns:
        Name (e.g. ``"encoder.rnn"``) -> layer stack, in ``named_modules()`` order. A stack wrapped by a
        module that names it in ``stats_child`` (the ``nn.LSTM`` drop-in
        :class:`snnlstm.nn.compat.LSTMCompat`) is listed under the wrapper's name.
    """
    wrapped = {
        id(getattr(m, m.stats_child)): name for name, m in module.named_modules() if getattr(m, "stats_child", None)
    }
    return {
        (wrapped.get(id(m), name) or root_name): m for name, m in module.named_modules() if isinstance(m, StatsSource)
    }


def stats_sources(module: nn.Module) -> list[StatsSource]:
    """Every :class:`StatsSource` inside ``module`` (found by type, outermost first)."""
    return list(named_stats_sources(module).values())
