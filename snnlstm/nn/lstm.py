"""Multi-layer LSTM that runs as a non-spiking (ANN), spiking (SNN) or hybrid network.

:class:`SpikingLSTM` owns its weights with ``torch.nn.LSTM``'s names and layout
(``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, gate order i, f, g, o),
so an ``nn.LSTM``'s parameters move into it unchanged, and its neurons; the computation is delegated
to one backend per mode (:mod:`snnlstm.backends`), resolved explicitly and visible as
``layer.backend`` / ``layer.kernel``.

In SNN mode each input element is presented for ``T`` SNN time steps, processed as the T+N-1
wavefront of Datta et al. 2022: cell ``(n, t)`` depends only on ``(n-1, t)`` (previous element, same
step: ``h`` and ``c``) and ``(n, t-1)`` (its own membranes), so all cells with ``n + t = d`` run as
one batch of up to ``T`` elements in flight.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Sequence

import torch
from torch import Tensor, nn

from ..backends.selection import LayerSettings, Resolved, resolve
from ..backends.stack import run_stack
from ..functional.encoding import check_encoding
from ..measure.stats import StatsSource
from .backend_choice import BackendChoice
from .gates import GateNeurons
from .init import init_shared_bias_cell, register_lstm_weights
from .inputs import check_input, check_lengths, check_precision
from .outputs import LSTMOutput, LSTMState  # noqa: F401  (documented here)
from .streaming import LSTMStreaming
from .options import (  # noqa: F401  (re-exported: the documented names of this module)
    CELL_ACTIVATIONS, CELLS, COMPILE_MODES, DEFAULT_SPIKING_GATES, MODES, REQUIRED_SPIKING_GATES, SCHEDULES,
    SPIKING_GATES, Cell, Mode, Schedule, check_cell_options, check_choice, check_sizes, check_spiking_gates,
    check_timesteps,
)


class SpikingLSTM(BackendChoice, StatsSource, LSTMStreaming):
    """Stack of LSTM layers that runs non-spiking (``mode="ann"``) or spiking (``mode="snn"``).

    Args:
        input_size: features per input element F.
        hidden_size: hidden units H per layer.
        num_layers: stacked layers (1 or more).
        bias: learn biases (``bias_ih``/``bias_hh`` as in ``nn.LSTM``).
        batch_first: inputs/outputs are ``[batch, N, features]`` (else ``[N, batch, features]``).
        dropout: dropout on the outputs of every layer but the last (training only).
        activation: source activations, ``"hard"`` (Datta's clipped sigmoid/tanh) or ``"standard"``;
            in SNN mode non-spiking gates keep this activation.
        mode: ``"ann"``, ``"snn"`` (Datta et al.'s spiking LSTM) or ``"hybrid"`` (Ponghiran & Roy's
            hybrid analog-spiking cell, :func:`snnlstm.functional.hybrid.hybrid_sequence`, T*N steps,
            evaluation only; needs ``cell="modified"`` activations).
        timesteps: SNN time steps T per input element (``>= 1``).
        spiking_gates: gates that spike in SNN mode, a subset of ``i, f, g, o, tanh_c`` that contains
            ``f, o, tanh_c`` (Datta et al. Table 1: all five, or without ``i`` = "NS sig_i",
            or without ``g`` = "NS tanh_g", the default).
        encoding: first-layer input in SNN mode: ``"direct"`` (analog current every step) or
            ``"poisson"`` (signed rate-coded spikes, inputs should lie in [-1, 1]).
        bias_shift: add the optimal shift ``V/(2T)`` to every spiking neuron's input.
        leak: initial leak ``lambda`` of every neuron (1 = IF).
        learn_threshold: thresholds are trained in SNN mode.
        learn_leak: leaks are trained in SNN mode.
        surrogate: surrogate gradient name (see :data:`snnlstm.functional.surrogates.SURROGATES`).
        gamma: height of the triangular surrogate.
        v_sig: hard-sigmoid threshold ``V_sig`` of the source activations (and initial SNN threshold).
        v_tanh_pos: hard-tanh ``V_tanh+ > 0``.
        v_tanh_neg: hard-tanh ``V_tanh- < 0``.
        cell: ``"lstm"`` (the above activations, ``nn.LSTM``'s uniform init), or Ponghiran & Roy's
            ``"modified"`` (``clamp((z+2)/4, 0, 1)`` gates, ``clamp(z/2, -1, 1)`` candidate and output:
            the hard activations with ``V_sig = 4``, ``V_tanh = ±2``) or ``"baseline"`` (sigmoid/tanh).
            Both fix ``activation``/``v_*`` (leave those at their defaults), use one shared bias
            (``bias_hh`` stays 0 and frozen) and orthogonal init per gate block with forget bias 1.
        clamp_c: clamp the carried cell state to ``[-1, 1]`` after every update (the Loihi constraint
            of Ponghiran & Roy's seq-MNIST models), in every mode; as in their reference code ``h``
            is computed from the unclamped ``c`` and the next element gets the clamped one. In SNN mode the
            fused wavefront does not clamp, so ``schedule="fused"`` runs as ``"pipelined"`` (visible
            as ``layer.kernel``, logged once).
        forget_bias: initial forget-gate bias of the shared-bias cells (Ponghiran & Roy: 1; 2 starts
            the modified cell's forget gate saturated, ``f = 1``, as long sequences need).
        input_bias: initial input-gate bias of the shared-bias cells (theirs: 0; -1 with forget bias 2
            is a chrono-style init: remember by default, write only on strong input).
        schedule: how SNN mode runs the T+N-1 wavefront: ``"fused"`` (default; one autograd node per
            layer with a hand-written backward pass), ``"pipelined"`` (the same wavefront through
            autograd, one step function per wavefront) or ``"sequential"`` (the reference T*N loop).
            All three compute the same model and gradients. In ANN mode ``"pipelined"`` and
            ``"sequential"`` run the eager per-element loop.
        compile: ``torch.compile`` the torch backend's step functions: ``"none"``, ``"step"`` (the
            per-wavefront functions) or ``"full"`` (the whole autograd schedule of a layer; minutes per
            input shape). Needs the torch backend (``backend="auto"`` then chooses it).
        backend: ``"auto"`` (default), ``"cpp"`` (fused C++ CPU kernels) or ``"torch"`` (torch
            operators on any device; torch's own LSTM kernel in ANN mode with standard activations):
            see :mod:`snnlstm.backends.selection`. An explicit name that cannot run raises an error;
            the resolved choice is ``layer.backend`` / ``layer.kernel`` and is logged once.

    Shapes:
        input ``[B, N, F]`` (batch_first); optional initial state ``(h0, c0)``, each ``[L, B, H]``.
        Returns :class:`LSTMOutput`.

    Precision: under ``torch.autocast`` (``precision="bf16-mixed"``/``"16-mixed"``) the layer runs in
    float32 in every mode (membranes, spike decisions, counts; torch's own CPU LSTM kernel has no
    float16 path). A module cast wholly to float16/bfloat16 runs in ANN mode on the torch backend and
    refuses SNN/hybrid mode (spike decisions in half precision flip).
    """

    _backend_log = logging.getLogger(__name__)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        activation: Literal["hard", "standard"] = "hard",
        mode: Mode = "ann",
        timesteps: int = 2,
        spiking_gates: Sequence[str] = DEFAULT_SPIKING_GATES,
        encoding: Literal["direct", "poisson"] = "direct",
        bias_shift: bool = True,
        leak: float = 1.0,
        learn_threshold: bool = True,
        learn_leak: bool = True,
        surrogate: str = "triangular",
        gamma: float = 1.0,
        v_sig: float = 4.0,
        v_tanh_pos: float = 1.0,
        v_tanh_neg: float = -1.0,
        schedule: Schedule = "fused",
        compile: Literal["none", "step", "full"] = "none",
        cell: Cell = "lstm",
        clamp_c: bool = False,
        forget_bias: float = 1.0,
        input_bias: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        activation, v_sig, v_tanh_pos, v_tanh_neg = check_cell_options(
            cell, activation, v_sig, v_tanh_pos, v_tanh_neg, forget_bias, input_bias
        )
        check_sizes(input_size, hidden_size, num_layers, dropout)
        check_encoding(encoding)
        check_choice("schedule", schedule, SCHEDULES)
        if isinstance(compile, bool):  # checkpoints written before the modes existed stored a bool
            compile = "step" if compile else "none"
        check_choice("compile", compile, COMPILE_MODES)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.activation, self.v_sig, self.v_tanh_pos, self.v_tanh_neg = activation, v_sig, v_tanh_pos, v_tanh_neg
        self.encoding, self.bias_shift = encoding, bias_shift
        self.learn_threshold, self.learn_leak = learn_threshold, learn_leak
        self.schedule, self.cell, self.clamp_c = schedule, cell, bool(clamp_c)
        self.compile_mode = compile  # not `self.compile`: that would shadow nn.Module.compile()
        self.spiking_gates = check_spiking_gates(spiking_gates)
        self.timesteps = timesteps
        self.backend = backend
        register_lstm_weights(self, input_size, hidden_size, num_layers, bias)
        if cell != "lstm":
            init_shared_bias_cell(self, float(forget_bias), float(input_bias))
        self.neurons = nn.ModuleList(
            GateNeurons(v_sig, v_tanh_pos, v_tanh_neg, leak, learn_threshold, learn_leak, surrogate, gamma)
            for _ in range(num_layers)
        )
        #: set by the conversion while it measures pre-activations (ANN mode runs the eager loop then)
        self.calibration_observer: Any = None
        self.mode = mode  # property: validates and sets requires_grad of thresholds/leaks

    # ------------------------------------------------------------------ configuration
    @property
    def mode(self) -> str:
        """``"ann"``, ``"snn"`` or ``"hybrid"``; setting it also (un)freezes thresholds and leaks."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        check_choice("mode", mode, MODES)
        if mode == "hybrid" and (self.activation, self.v_sig, self.v_tanh_pos, self.v_tanh_neg) != CELL_ACTIVATIONS["modified"]:
            raise ValueError(
                "the hybrid conversion of Ponghiran & Roy runs the ModifiedLSTMCell (hard activations with "
                f"v_sig=4, v_tanh=±2); this layer has activation={self.activation!r}, v_sig={self.v_sig}, "
                f"v_tanh=({self.v_tanh_pos}, {self.v_tanh_neg}): train it with cell='modified'"
            )
        self._mode = mode
        for gate_neurons in self.neurons:
            gate_neurons.set_trainable(mode == "snn" and self.learn_threshold, mode == "snn" and self.learn_leak)

    @property
    def timesteps(self) -> int:
        """SNN time steps T per input element."""
        return self._timesteps

    @timesteps.setter
    def timesteps(self, timesteps: int) -> None:
        check_timesteps(timesteps)
        self._timesteps = timesteps

    def _backend_weight(self) -> Tensor:
        return self.weight_hh_l0

    def _backend_settings(self) -> tuple[str, LayerSettings]:
        settings = LayerSettings(
            self.activation, self.schedule, self.compile_mode, self.clamp_c,
            self.neurons[0].f.surrogate_name, self.calibration_observer is not None,
        )
        return self.mode, settings

    def _resolve(self, device: torch.device, dtype: torch.dtype) -> Resolved:
        mode, settings = self._backend_settings()
        return resolve(self.backend_request, mode, device, dtype, settings)

    def _backend_label(self) -> str:
        return f"SpikingLSTM: {self.mode} mode"

    def get_extra_state(self) -> dict[str, Any]:
        """Saved with the weights: the conversion settings (mode, T, spiking gates, encoding, shift).

        A checkpoint written after an ANN-to-SNN conversion therefore loads as a spiking model.
        """
        return {"mode": self.mode, "timesteps": self.timesteps, "spiking_gates": sorted(self.spiking_gates),
                "encoding": self.encoding, "bias_shift": self.bias_shift}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the settings saved by :meth:`get_extra_state`."""
        self.configure(**state)

    def configure(
        self,
        mode: str | None = None,
        timesteps: int | None = None,
        spiking_gates: Sequence[str] | None = None,
        encoding: str | None = None,
        bias_shift: bool | None = None,
    ) -> None:
        """Change conversion settings in place (None keeps the current value); validated."""
        if spiking_gates is not None:
            self.spiking_gates = check_spiking_gates(spiking_gates)
        if encoding is not None:
            check_encoding(encoding)
            self.encoding = encoding
        if bias_shift is not None:
            self.bias_shift = bool(bias_shift)
        if timesteps is not None:
            self.timesteps = timesteps
        if mode is not None:
            self.mode = mode

    def set_thresholds(self, fitted: Sequence[dict[str, float]] | None = None) -> None:
        """Set every neuron's threshold from the source activations (the conversion step).

        Args:
            fitted: per layer, the output of :func:`snnlstm.conversion.calibration.fit_thresholds`; when
                None the hard-activation thresholds ``v_sig``, ``v_tanh_pos``, ``v_tanh_neg`` are used.
        """
        if fitted is not None and len(fitted) != self.num_layers:
            raise ValueError(f"expected fitted thresholds for {self.num_layers} layers, got {len(fitted)}")
        for k, gate_neurons in enumerate(self.neurons):
            gate_neurons.set_thresholds(fitted[k] if fitted is not None else {}, self.v_sig, self.v_tanh_pos, self.v_tanh_neg)

    def spiking_parameters(self) -> list[nn.Parameter]:
        """Thresholds and leaks of all neurons (the parameters SNN fine-tuning adds)."""
        return [p for gate_neurons in self.neurons for p in gate_neurons.parameters()]

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, mode={self.mode}, "
            f"timesteps={self.timesteps}, activation={self.activation}, encoding={self.encoding}, "
            f"spiking_gates={sorted(self.spiking_gates)}, bias_shift={self.bias_shift}, schedule={self.schedule}, "
            f"cell={self.cell}, clamp_c={self.clamp_c}, backend={self.backend_request}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, lengths: Tensor | None = None) -> LSTMOutput:
        """Run the whole sequence.

        Args:
            x: ``[B, N, F]`` (``[N, B, F]`` if not batch_first), analog.
            state: optional ``(h0, c0)``, each ``[L, B, H]`` (in SNN mode read at every step of the
                first element), or in SNN mode a previous call's ``step_state``, each ``[L, T, B, H]``.
            lengths: optional ``[B]`` lengths of right-padded sequences (best a CPU tensor: see
                :func:`~snnlstm.nn.inputs.check_lengths`): outputs at padded positions are 0 and the returned
                states are each sequence's state after its last real element, as if the padding were absent.

        Returns:
            :class:`LSTMOutput`.
        """
        check_input(x, state, self.input_size, self.hidden_size, self.num_layers, self.timesteps, self.batch_first, self.mode)
        if lengths is not None:
            lengths = check_lengths(x, lengths, self.batch_first)
        check_precision(self.mode, self.weight_hh_l0.dtype)
        result = run_stack(self, x, state, lengths, self.resolve_backend().kernel)
        self._report_stats(result.stats)
        return result


def spiking_layers(module: nn.Module) -> list[SpikingLSTM]:
    """Every :class:`SpikingLSTM` inside ``module`` (found by type, outermost first)."""
    return [m for m in module.modules() if isinstance(m, SpikingLSTM)]
