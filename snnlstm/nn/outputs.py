"""What :class:`snnlstm.nn.lstm.SpikingLSTM` returns: the state and the output of a run."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from ..measure.stats import SpikeStats


class LSTMState(NamedTuple):
    """LSTM state per layer: ``h`` and ``c``, each ``[num_layers, batch, hidden]``.

    In SNN mode :attr:`LSTMOutput.state` is the time average over the last element's T steps, and
    :attr:`LSTMOutput.step_state` the per-step state ``[num_layers, T, batch, hidden]`` (``h`` spikes).
    """

    h: Tensor
    c: Tensor


class LSTMOutput(NamedTuple):
    """Result of :meth:`SpikingLSTM.forward`.

    Attributes:
        output: last layer's output for every element, ``[batch, N, hidden]`` (``[N, batch, hidden]``
            when ``batch_first=False``); in SNN mode the spike rate over the T steps.
        state: final :class:`LSTMState`.
        stats: one :class:`snnlstm.measure.stats.LayerStats` per layer.
        step_state: SNN mode only (else None): the last element's state at each of its T steps,
            ``h`` spikes and ``c``, each ``[num_layers, T, batch, hidden]``. Passed back as the next
            call's ``state``, it continues the sequence exactly (element ``n`` at step ``t`` reads
            element ``n - 1`` at step ``t``), so a decoder can run one token per call.
    """

    output: Tensor
    state: LSTMState
    stats: SpikeStats
    step_state: LSTMState | None = None

    @property
    def carry(self) -> LSTMState:
        """The state that continues this sequence in a next call: ``step_state`` in SNN mode, else ``state``."""
        return self.state if self.step_state is None else self.step_state
