"""Multi-layer LSTM that runs as a non-spiking (ANN) or spiking (SNN) network.

:class:`SpikingLSTM` owns its weights with ``torch.nn.LSTM``'s names and layout
(``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, gate order i, f, g, o),
so an ``nn.LSTM``'s parameters move into it unchanged; :class:`LSTMCompat` also answers like
``nn.LSTM`` (``output, (h_n, c_n)``) and is what the conversion callback puts in place of
``nn.LSTM`` layers inside other people's LightningModules.

In SNN mode each input element is presented for ``T`` SNN time steps, processed as the T+N-1
wavefront of Datta et al. 2022: cell ``(n, t)`` depends only on ``(n-1, t)`` (previous element, same
step: ``h`` and ``c``) and ``(n, t-1)`` (its own membranes), so all cells with ``n + t = d`` run as
one batch of up to ``T`` elements in flight. ``schedule="fused"`` (default) runs it as one autograd
node with a hand-written backward pass (:mod:`snnlstm.backends.fused_snn`), ``"pipelined"`` through autograd step
by step, and ``"sequential"`` is the plain loop over ``n`` then ``t`` (T*N steps) of the same model;
all give the same outputs and gradients. In ANN mode ``"fused"`` runs each layer's sequence through
the C++ kernels of :mod:`snnlstm.backends.fused_ann`, the other schedules as an eager loop over ``n``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..functional.encoding import check_encoding, poisson_encode
from ..functional.activations import check_activation
from ..backends.fused_snn import FusedConfig, fused_spiking_layer
from ..backends.fused_ann import fused_ann_available, fused_ann_layer
from ..functional.cells import CellMembranes, SpikingCellParams, lstm_cell_step, spiking_cell_step
from ..functional.hybrid import hybrid_sequence
from .neurons import IFNeuron, TernaryNeuron
from ..measure.stats import LayerStats, SpikeStats, StatsSource

Mode = Literal["ann", "snn", "hybrid"]
MODES: tuple[str, ...] = ("ann", "snn", "hybrid")
Cell = Literal["lstm", "modified", "baseline"]
#: cell types: ``lstm`` (activations from ``activation``/``v_*``; nn.LSTM init), and Ponghiran & Roy's
#: ``modified`` (clamp((z+2)/4), clamp(z/2): hard activations with V_sig=4, V_tanh=±2) and ``baseline``
#: (sigmoid/tanh), both with one shared bias and orthogonal init with forget bias 1
CELLS: tuple[str, ...] = ("lstm", "modified", "baseline")
#: (activation, v_sig, v_tanh_pos, v_tanh_neg) each cell type fixes
_CELL_ACTIVATIONS: dict[str, tuple[str, float, float, float]] = {
    "modified": ("hard", 4.0, 2.0, -2.0),
    "baseline": ("standard", 4.0, 1.0, -1.0),
}
_DEFAULT_ACTIVATION: tuple[str, float, float, float] = ("hard", 4.0, 1.0, -1.0)
Schedule = Literal["fused", "pipelined", "sequential"]
SCHEDULES: tuple[str, ...] = ("fused", "pipelined", "sequential")
COMPILE_MODES: tuple[str, ...] = ("none", "step", "full")
#: gate neuron populations that can spike; f, o and tanh_c always do (h must be a spike tensor)
SPIKING_GATES: tuple[str, ...] = ("i", "f", "g", "o", "tanh_c")
REQUIRED_SPIKING_GATES: frozenset[str] = frozenset({"f", "o", "tanh_c"})
DEFAULT_SPIKING_GATES: tuple[str, ...] = ("i", "f", "o", "tanh_c")

# torch.nn.LSTM orders gate rows (i, f, g, o); the cells want (i, f, o, g).
_GATE_PERM = (0, 1, 3, 2)


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


def check_spiking_gates(spiking_gates: Sequence[str]) -> frozenset[str]:
    """Validate a selective-conversion gate set and return it as a frozenset.

    Raises:
        ValueError: unknown gate names, or f / o / tanh_c missing.
    """
    gates = frozenset(spiking_gates)
    unknown = gates - set(SPIKING_GATES)
    if unknown:
        raise ValueError(f"unknown spiking gate(s) {sorted(unknown)}; allowed: {', '.join(SPIKING_GATES)}")
    missing = REQUIRED_SPIKING_GATES - gates
    if missing:
        raise ValueError(
            f"spiking_gates must include f, o and tanh_c (h = o * tanh_c(c) has to be a spike tensor and "
            f"c_prev cannot spike); missing: {sorted(missing)}"
        )
    return gates


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def check_timesteps(timesteps: int) -> None:
    """Raise ``ValueError`` unless ``timesteps`` is an integer >= 1."""
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps (SNN time steps per input element) must be an integer >= 1, got {timesteps!r}")


class GateNeurons(nn.Module):
    """The five neuron populations of one spiking LSTM layer (one threshold and leak each).

    Attributes:
        i, f, o: :class:`IFNeuron` (hard sigmoid, threshold ``V_sig``).
        g, tanh_c: :class:`TernaryNeuron` (hard tanh, thresholds ``V+``/``V-``).
    """

    def __init__(
        self,
        v_sig: float,
        v_tanh_pos: float,
        v_tanh_neg: float,
        leak: float,
        learn_threshold: bool,
        learn_leak: bool,
        surrogate: str,
        gamma: float,
    ) -> None:
        super().__init__()
        common = dict(leak=leak, learn_threshold=learn_threshold, learn_leak=learn_leak, surrogate=surrogate, gamma=gamma)
        self.i = IFNeuron(v_sig, **common)
        self.f = IFNeuron(v_sig, **common)
        self.o = IFNeuron(v_sig, **common)
        self.g = TernaryNeuron(v_tanh_pos, v_tanh_neg, **common)
        self.tanh_c = TernaryNeuron(v_tanh_pos, v_tanh_neg, **common)

    def cell_params(
        self,
        hidden: int,
        timesteps: int,
        bias_shift: bool,
        spiking: frozenset[str],
        activation: str,
        clamp_c: bool = False,
    ) -> SpikingCellParams:
        """Assemble the per-forward constants of :func:`spiking_cell_step` (differentiable)."""
        v3 = torch.stack([n.effective_threshold() for n in (self.i, self.f, self.o)])
        l3 = torch.stack([n.effective_leak() for n in (self.i, self.f, self.o)])
        shift = 0.5 / timesteps if bias_shift else 0.0
        v_sig = v3.repeat_interleave(hidden)
        return SpikingCellParams(
            v_sig=v_sig,
            leak_sig=l3.repeat_interleave(hidden),
            offset_sig=v_sig * (0.5 + shift),
            v_g=(self.g.effective_threshold(), self.g.effective_threshold_neg()),
            leak_g=self.g.effective_leak(),
            v_c=(self.tanh_c.effective_threshold(), self.tanh_c.effective_threshold_neg()),
            leak_c=self.tanh_c.effective_leak(),
            shift=shift,
            spike_i="i" in spiking,
            spike_g="g" in spiking,
            activation=activation,
            clamp_c=clamp_c,
        )

    def neurons(self) -> dict[str, IFNeuron]:
        """Gate name -> neuron module."""
        return {"i": self.i, "f": self.f, "g": self.g, "o": self.o, "tanh_c": self.tanh_c}


class SpikingLSTM(StatsSource):
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
            is computed from the unclamped ``c`` and the next element gets the clamped one. In SNN mode it runs the
            ``"pipelined"`` schedule (the fused kernels do not clamp).
        forget_bias: initial forget-gate bias of the shared-bias cells (``"modified"``, ``"baseline"``);
            Ponghiran & Roy use 1 (``f = 0.75`` at init for the modified cell). 2 starts the modified
            forget gate at its saturation ``f = 1`` (perfect memory), which long sequences such as
            pixel-wise MNIST need to pass gradients back over hundreds of steps. ``cell="lstm"`` keeps
            ``nn.LSTM``'s init and takes only the default.
        input_bias: initial input-gate bias of the shared-bias cells (theirs: 0). With a saturated forget
            gate a negative input bias (e.g. -1, ``i = 0.25`` at init for the modified cell) keeps the cell
            from integrating the background drive into the ``[-1, 1]`` clamp of ``c`` (chrono-style init:
            remember by default, write only on strong input).
        schedule: how SNN mode runs the T+N-1 wavefront: ``"fused"`` (default; one autograd node per
            layer with a hand-written backward pass and fused C++ CPU kernels per wavefront, see
            :mod:`snnlstm.backends.fused_snn`), ``"pipelined"`` (the same wavefront through autograd, one step
            function per wavefront) or ``"sequential"`` (reference T*N loop). All three compute the
            same model and gradients. In ANN mode ``"fused"`` runs the whole sequence of a layer as
            one autograd node with C++ CPU kernels (:mod:`snnlstm.backends.fused_ann`, clamp_c included); the
            other two run the eager per-element loop (also used on other devices and while a
            calibration observer is attached).
        compile: ``torch.compile`` the per-wavefront step functions: ``"none"``, ``"step"`` or
            ``"full"`` (the whole autograd schedule of a layer; minutes to compile per input shape).
            With ``schedule="fused"`` the C++ kernels run on the CPU whatever this says; any mode
            but ``"none"`` compiles the Python wavefront functions used elsewhere (other devices,
            no C++ compiler).

    Shapes:
        input ``[B, N, F]`` (batch_first); optional initial state ``(h0, c0)``, each ``[L, B, H]``.
        Returns :class:`LSTMOutput`.
    """

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
    ) -> None:
        super().__init__()
        _check_choice("cell", cell, CELLS)
        for name, value, default in (("forget_bias", forget_bias, 1.0), ("input_bias", input_bias, 0.0)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if cell == "lstm" and value != default:
                raise ValueError(
                    f"{name}={value} applies to the shared-bias cells ('modified', 'baseline'); "
                    f"cell='lstm' keeps nn.LSTM's uniform init: leave {name} at {default} or choose another cell"
                )
        if cell != "lstm":
            given = (activation, float(v_sig), float(v_tanh_pos), float(v_tanh_neg))
            if given not in (_DEFAULT_ACTIVATION, _CELL_ACTIVATIONS[cell]):
                raise ValueError(
                    f"cell={cell!r} fixes activation, v_sig, v_tanh_pos, v_tanh_neg to {_CELL_ACTIVATIONS[cell]}; "
                    f"got {given}: leave them at their defaults, or use cell='lstm' to set them yourself"
                )
            activation, v_sig, v_tanh_pos, v_tanh_neg = _CELL_ACTIVATIONS[cell]  # type: ignore[assignment]
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_activation(activation)
        check_encoding(encoding)
        _check_choice("schedule", schedule, SCHEDULES)
        if not v_sig > 0 or not v_tanh_pos > 0 or not v_tanh_neg < 0:
            raise ValueError(
                f"hard-activation thresholds need v_sig > 0, v_tanh_pos > 0, v_tanh_neg < 0; "
                f"got {v_sig}, {v_tanh_pos}, {v_tanh_neg}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        self.activation = activation
        self.encoding = encoding
        self.bias_shift = bias_shift
        self.learn_threshold = learn_threshold
        self.learn_leak = learn_leak
        self.v_sig, self.v_tanh_pos, self.v_tanh_neg = float(v_sig), float(v_tanh_pos), float(v_tanh_neg)
        self.schedule = schedule
        self.cell = cell
        self.clamp_c = bool(clamp_c)
        if isinstance(compile, bool):  # checkpoints written before the modes existed stored a bool
            compile = "step" if compile else "none"
        _check_choice("compile", compile, COMPILE_MODES)
        self.compile_mode = compile  # not `self.compile`: that would shadow nn.Module.compile()
        self.spiking_gates = check_spiking_gates(spiking_gates)
        check_timesteps(timesteps)
        self.timesteps = timesteps

        bound = 1.0 / math.sqrt(hidden_size)
        for k in range(num_layers):
            fan_in = input_size if k == 0 else hidden_size
            for name, shape in (
                (f"weight_ih_l{k}", (4 * hidden_size, fan_in)),
                (f"weight_hh_l{k}", (4 * hidden_size, hidden_size)),
            ) + (((f"bias_ih_l{k}", (4 * hidden_size,)), (f"bias_hh_l{k}", (4 * hidden_size,))) if bias else ()):
                self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
        if cell != "lstm":
            self._init_shared_bias_cell(float(forget_bias), float(input_bias))
        self.neurons = nn.ModuleList(
            GateNeurons(v_sig, v_tanh_pos, v_tanh_neg, leak, learn_threshold, learn_leak, surrogate, gamma)
            for _ in range(num_layers)
        )
        #: set by the conversion callback while it measures pre-activations (ANN mode only)
        self.calibration_observer: Any = None
        self.mode = mode  # property: validates and sets requires_grad of thresholds/leaks

    def _init_shared_bias_cell(self, forget_bias: float, input_bias: float) -> None:
        """Ponghiran & Roy's init: ``W_ih`` and ``W_hh`` orthogonal per gate block (each block on its
        own, gain 1, as their reference code), biases 0 but the forget gate's ``forget_bias`` (theirs: 1)
        and the input gate's ``input_bias`` (theirs: 0); ``bias_hh`` is
        frozen at 0, so ``bias_ih`` is the one shared bias."""
        hid = self.hidden_size
        with torch.no_grad():
            for k in range(self.num_layers):
                w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
                for gate in range(4):
                    rows = slice(gate * hid, (gate + 1) * hid)
                    nn.init.orthogonal_(w_ih[rows])
                    nn.init.orthogonal_(w_hh[rows])
                if self.bias:
                    b_ih, b_hh = getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}")
                    b_ih.zero_()
                    b_ih[:hid] = input_bias
                    b_ih[hid : 2 * hid] = forget_bias
                    b_hh.zero_()
                    b_hh.requires_grad_(False)

    # ------------------------------------------------------------------ configuration
    @property
    def mode(self) -> str:
        """``"ann"``, ``"snn"`` or ``"hybrid"``; setting it also (un)freezes thresholds and leaks."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        _check_choice("mode", mode, MODES)
        if mode == "hybrid" and (self.activation, self.v_sig, self.v_tanh_pos, self.v_tanh_neg) != _CELL_ACTIVATIONS["modified"]:
            raise ValueError(
                "the hybrid conversion of Ponghiran & Roy runs the ModifiedLSTMCell (hard activations with "
                f"v_sig=4, v_tanh=±2); this layer has activation={self.activation!r}, v_sig={self.v_sig}, "
                f"v_tanh=({self.v_tanh_pos}, {self.v_tanh_neg}): train it with cell='modified'"
            )
        self._mode = mode
        for gate_neurons in self.neurons:
            for neuron in gate_neurons.neurons().values():
                if isinstance(neuron.threshold, nn.Parameter):
                    neuron.threshold.requires_grad_(mode == "snn" and self.learn_threshold)
                if isinstance(getattr(neuron, "threshold_neg", None), nn.Parameter):
                    neuron.threshold_neg.requires_grad_(mode == "snn" and self.learn_threshold)
                if isinstance(neuron.beta, nn.Parameter):
                    neuron.beta.requires_grad_(mode == "snn" and self.learn_leak)

    @property
    def timesteps(self) -> int:
        """SNN time steps T per input element."""
        return self._timesteps

    @timesteps.setter
    def timesteps(self, timesteps: int) -> None:
        check_timesteps(timesteps)
        self._timesteps = timesteps

    def get_extra_state(self) -> dict[str, Any]:
        """Saved with the weights: the conversion settings (mode, T, spiking gates, encoding, shift).

        A checkpoint written after an ANN-to-SNN conversion therefore loads as a spiking model.
        """
        return {
            "mode": self.mode,
            "timesteps": self.timesteps,
            "spiking_gates": sorted(self.spiking_gates),
            "encoding": self.encoding,
            "bias_shift": self.bias_shift,
        }

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
            fitted: per layer, the output of :func:`snnlstm.conversion.calibration.fit_thresholds`; when None the
                hard-activation thresholds ``v_sig``, ``v_tanh_pos``, ``v_tanh_neg`` are used directly.
        """
        if fitted is not None and len(fitted) != self.num_layers:
            raise ValueError(f"expected fitted thresholds for {self.num_layers} layers, got {len(fitted)}")
        with torch.no_grad():
            for k, gate_neurons in enumerate(self.neurons):
                values = fitted[k] if fitted is not None else {}
                for gate in ("i", "f", "o"):
                    getattr(gate_neurons, gate).threshold.fill_(values.get(gate, self.v_sig))
                for gate in ("g", "tanh_c"):
                    neuron = getattr(gate_neurons, gate)
                    neuron.threshold.fill_(values.get(gate + "+", self.v_tanh_pos))
                    neuron.threshold_neg.fill_(values.get(gate + "-", self.v_tanh_neg))

    def spiking_parameters(self) -> list[nn.Parameter]:
        """Thresholds and leaks of all neurons (the parameters SNN fine-tuning adds)."""
        return [p for gate_neurons in self.neurons for p in gate_neurons.parameters()]

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, mode={self.mode}, "
            f"timesteps={self.timesteps}, activation={self.activation}, encoding={self.encoding}, "
            f"spiking_gates={sorted(self.spiking_gates)}, bias_shift={self.bias_shift}, schedule={self.schedule}, "
            f"cell={self.cell}, clamp_c={self.clamp_c}"
        )

    # ------------------------------------------------------------------ helpers
    def _layer_weights(self, k: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Input weights ``[4H, F]``, recurrent weights transposed ``[H, 4H]`` and bias ``[4H]``,
        gate rows reordered (i, f, o, g)."""
        hid = self.hidden_size
        perm = torch.tensor(_GATE_PERM, device=self.weight_hh_l0.device)

        def reorder(w: Tensor) -> Tensor:
            return w.view(4, hid, *w.shape[1:]).index_select(0, perm).reshape(w.shape)

        w_ih = reorder(getattr(self, f"weight_ih_l{k}"))
        w_hh_t = reorder(getattr(self, f"weight_hh_l{k}")).t()
        b = reorder(getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")) if self.bias else None
        return w_ih, w_hh_t, b

    def _check_input(self, x: Tensor, state: tuple[Tensor, Tensor] | None) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"SpikingLSTM expects a tensor input, got {type(x).__name__} (PackedSequence is not supported)")
        layout = "[batch, time, features]" if self.batch_first else "[time, batch, features]"
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"SpikingLSTM expects input of shape {layout} with features={self.input_size}, got {tuple(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"SpikingLSTM got an empty input of shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("SpikingLSTM input contains NaN or infinite values; clean or impute the data first")
        if state is not None:
            batch = x.shape[0] if self.batch_first else x.shape[1]
            want = (self.num_layers, batch, self.hidden_size)
            per_step = (self.num_layers, self.timesteps, batch, self.hidden_size)
            for name, t in zip(("h0", "c0"), state):
                if tuple(t.shape) == per_step and self.mode == "snn":
                    continue
                if tuple(t.shape) != want:
                    also = f" or, in SNN mode, {per_step} (a step_state)" if self.mode == "snn" else ""
                    raise ValueError(f"initial state {name} must have shape {want}{also}, got {tuple(t.shape)}")
            if state[0].dim() != state[1].dim():
                raise ValueError(f"h0 and c0 must both be [L, B, H] or both [L, T, B, H], got {tuple(state[0].shape)} and {tuple(state[1].shape)}")

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, lengths: Tensor | None = None) -> LSTMOutput:
        """Run the whole sequence.

        Args:
            x: ``[B, N, F]`` (``[N, B, F]`` if not batch_first), analog.
            state: optional ``(h0, c0)``, each ``[L, B, H]`` (in SNN mode read at every step of the
                first element), or in SNN mode a previous call's ``step_state``, each ``[L, T, B, H]``.
            lengths: optional ``[B]`` lengths of right-padded sequences: the returned states are then
                each sequence's state after its last real element, as if the padding were absent
                (outputs at real positions never depend on later padding).

        Returns:
            :class:`LSTMOutput`.
        """
        self._check_input(x, state)
        if lengths is not None:
            lengths = self._check_lengths(x, lengths)
        xt = x if not self.batch_first else x.transpose(0, 1)  # [N, B, F]
        batch = xt.shape[1]
        zeros = xt.new_zeros(self.num_layers, batch, self.hidden_size)
        h0, c0 = (zeros, zeros) if state is None else state
        layer_in: Tensor = xt
        direct = True
        h_n, c_n, stats, h_steps, c_steps = [], [], [], [], []
        rows = torch.arange(batch, device=xt.device)
        for k in range(self.num_layers):
            if self.mode in ("ann", "hybrid"):
                run = self._ann_layer if self.mode == "ann" else self._hybrid_layer
                out, cells, layer_stats = run(k, layer_in, h0[k], c0[k])
                if lengths is None:
                    h_last, c_last = out[-1], cells[-1]
                else:  # each sequence's state after its last real element
                    h_last, c_last = out[lengths - 1, rows], cells[lengths - 1, rows]
            else:
                if k == 0 and self.encoding == "poisson":
                    layer_in, direct = poisson_encode(xt, self.timesteps), False
                out, cells, layer_stats = self._snn_layer(k, layer_in, direct, h0[k], c0[k])
                direct = False
                if lengths is None:  # [T, B, H] at each step of the last element
                    h_step, c_step = out[-1], cells[-1]
                else:
                    h_step, c_step = out[lengths - 1, :, rows].transpose(0, 1), cells[lengths - 1, :, rows].transpose(0, 1)
                h_steps.append(h_step)
                c_steps.append(c_step)
                h_last, c_last = h_step.mean(dim=0), c_step.mean(dim=0)
            h_n.append(h_last)
            c_n.append(c_last)
            stats.append(layer_stats)
            if k < self.num_layers - 1 and self.dropout > 0 and self.training:
                out = nn.functional.dropout(out, self.dropout, training=True)
            layer_in = out
        output = layer_in if self.mode != "snn" else layer_in.mean(dim=1)  # [N, B, H]
        if self.batch_first:
            output = output.transpose(0, 1)
        step_state = LSTMState(torch.stack(h_steps), torch.stack(c_steps)) if h_steps else None
        result = LSTMOutput(output, LSTMState(torch.stack(h_n), torch.stack(c_n)), tuple(stats), step_state)
        self._report_stats(result.stats)
        return result

    def _check_lengths(self, x: Tensor, lengths: Tensor) -> Tensor:
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        lengths = torch.as_tensor(lengths, device=x.device).long()
        if lengths.shape != (batch,) or lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(f"lengths must be [batch={batch}] integers in [1, {steps}], got {lengths.tolist()}")
        return lengths

    def _ann_layer(self, k: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, LayerStats]:
        """Non-spiking layer over ``x [N, B, F]``; returns outputs and cell states ``[N, B, H]``, stats."""
        w_ih, w_hh_t, b = self._layer_weights(k)
        if self.schedule == "fused" and self.calibration_observer is None and fused_ann_available(x):
            acts = (self.activation, self.v_sig, self.v_tanh_pos, self.v_tanh_neg, self.clamp_c)
            out, cells = fused_ann_layer(x, w_ih, b, w_hh_t, h, c, *acts)
        else:
            proj = x @ w_ih.t()
            if b is not None:
                proj = proj + b
            out, cells = self._ann_loop(k, proj, w_hh_t, h, c)
        n_steps, batch, fan_in = x.shape
        hid = self.hidden_size
        ann_mac, ann_ac = _ann_ops(n_steps * batch, fan_in, hid)
        stats = LayerStats({}, n_steps * batch * hid, x.new_tensor(ann_ac), x.new_tensor(ann_mac), ann_ac, ann_mac, batch, 1, n_steps)
        return out, cells, stats

    def _ann_loop(self, k: int, proj: Tensor, w_hh_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Eager per-element loop of the non-spiking layer (reference; feeds the calibration observer).
        Returns outputs and cell states ``[N, B, H]``."""
        observer = self.calibration_observer
        outs, cells = [], []
        for proj_n in proj.unbind(0):
            z = proj_n + h @ w_hh_t
            h, c = lstm_cell_step(z, c, self.activation, self.v_sig, self.v_tanh_pos, self.v_tanh_neg, self.clamp_c)
            if observer is not None:
                observer.update(k, z.detach(), c.detach())
            outs.append(h)
            cells.append(c)
        return torch.stack(outs), torch.stack(cells)

    def _hybrid_layer(self, k: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, LayerStats]:
        """Ponghiran & Roy's hybrid layer over ``x [N, B, F]`` (no gradients); returns analog outputs
        and cell states ``[N, B, H]`` and stats (gate spikes i, f, g = c̃, o)."""
        bias = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}") if self.bias else None
        w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
        out = hybrid_sequence(x, h, c, w_ih, w_hh, bias, self.timesteps, self.clamp_c)
        n_steps, batch, fan_in = x.shape
        hid, t_steps = self.hidden_size, self.timesteps
        steps = n_steps * t_steps * batch
        spikes = dict(zip(("i", "f", "g", "o"), out.gate_spikes.unbind(0)))
        # every generator spike drives 4H synapses; each step adds the bias (4H) and updates the
        # 5H gate and F + H generator membranes; per element the analog update: rates (4H) and c, h (3H)
        # multiplies and the c sum (H)
        ac = 4 * hid * out.input_spikes + steps * (4 * hid + 5 * hid + fan_in + hid) + n_steps * batch * hid
        mac = x.new_tensor(float(n_steps * batch * 7 * hid))
        ann_mac, ann_ac = _ann_ops(n_steps * batch, fan_in, hid)
        stats = LayerStats(spikes, steps * hid, ac, mac, ann_ac, ann_mac, batch, t_steps, n_steps)
        return out.h, out.c, stats

    def _snn_layer(self, k: int, x: Tensor, direct: bool, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, LayerStats]:
        """Spiking layer. ``x`` is analog ``[N, B, F]`` (direct) or spikes ``[N, T, B, F]``; ``h0``, ``c0``
        are ``[B, H]`` (every step) or ``[T, B, H]`` (per step).

        Returns spikes ``h`` and cell states ``c``, each ``[N, T, B, H]``, and stats.
        """
        w_ih, w_hh_t, b = self._layer_weights(k)
        gate_neurons = self.neurons[k]
        params = gate_neurons.cell_params(
            self.hidden_size, self.timesteps, self.bias_shift, self.spiking_gates, self.activation, self.clamp_c
        )
        if self.schedule == "fused" and not self.clamp_c:
            # the constant i/f/o currents V/2 + V/(2T) join the bias: one addmm per sequence
            offset = _fused_offset(params, self.hidden_size)
            bias = offset if b is None else b + offset
            proj = torch.addmm(bias, x.reshape(-1, x.shape[-1]), w_ih.t()).view(*x.shape[:-1], bias.shape[0])
            h_nt, c_nt, counts = self._fused(proj, direct, w_hh_t, h0, c0, params, gate_neurons)
        else:
            proj = x @ w_ih.t()
            if b is not None:
                proj = proj + b
            run = _sequential if self.schedule == "sequential" else _pipelined  # fused + clamp_c: pipelined
            step = _compiled(_snn_step) if self.compile_mode == "step" else _snn_step
            if self.compile_mode == "full":
                run = _compiled(run)
            h_nt, c_nt, counts = run(proj, direct, w_hh_t, h0, c0, params, gate_neurons.f.spike_grad, self.timesteps, step)
        stats = self._snn_stats(x, direct, h_nt, counts, gate_neurons)
        return h_nt, c_nt, stats

    def _fused(
        self,
        proj: Tensor,
        direct: bool,
        w_hh_t: Tensor,
        h0: Tensor,
        c0: Tensor,
        params: SpikingCellParams,
        gate_neurons: GateNeurons,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The pipelined schedule through :func:`snnlstm.backends.fused_snn.fused_spiking_layer`."""
        cfg = FusedConfig(
            timesteps=self.timesteps,
            direct=direct,
            shift=params.shift,
            spike_i=params.spike_i,
            spike_g=params.spike_g,
            activation=params.activation,
            surrogate=gate_neurons.f.surrogate_name,
            gamma=float(gate_neurons.f.gamma),
            compiled=self.compile_mode != "none",
        )
        v_g, leak_g = params.v_g, params.leak_g
        if not params.spike_g:  # an analog g gate leaves its neuron's leak (and, if standard, thresholds) unused
            leak_g = leak_g.detach()
            if params.activation == "standard":
                v_g = (v_g[0].detach(), v_g[1].detach())
        out = fused_spiking_layer(
            proj, w_hh_t, h0, c0, params.v_sig, params.leak_sig, v_g, leak_g, params.v_c, params.leak_c, cfg
        )
        counts = dict(zip(("i", "f", "o", "g", "tanh_c"), out.counts.unbind(0)))
        return out.h, out.c, counts

    def _snn_stats(
        self, x: Tensor, direct: bool, h_nt: Tensor, counts: dict[str, Tensor], gate_neurons: GateNeurons
    ) -> LayerStats:
        n_steps, timesteps, batch, hid = h_nt.shape
        fan_in = x.shape[-1]
        with torch.no_grad():
            spikes = {g: counts[g] for g in SPIKING_GATES if g in self.spiking_gates}
            spikes["h"] = h_nt.detach().ne(0).sum().to(h_nt.dtype)
            recurrent_nnz = h_nt[:-1].detach().ne(0).sum().to(h_nt.dtype)
            steps = n_steps * timesteps * batch
            ac = 4 * hid * recurrent_nnz + steps * (4 * hid + hid)
            mac = h_nt.new_zeros(())
            if direct:
                mac = mac + n_steps * batch * 4 * hid * fan_in
            else:
                ac = ac + 4 * hid * x.detach().ne(0).sum().to(h_nt.dtype)
            # one membrane update per spiking neuron and step: a multiply when it leaks (no host sync)
            membrane_ops = steps * hid * len(self.spiking_gates)
            leaks = torch.stack([n.effective_leak() for g, n in gate_neurons.neurons().items() if g in self.spiking_gates])
            leaky = leaks.detach().ne(1.0).any()
            mac = mac + torch.where(leaky, membrane_ops, 0.0)
            ac = ac + torch.where(leaky, 0.0, membrane_ops)
        ann_mac, ann_ac = _ann_ops(n_steps * batch, fan_in, hid)
        return LayerStats(spikes, steps * hid, ac, mac, ann_ac, ann_mac, batch, timesteps, n_steps)


def _fused_offset(params: SpikingCellParams, hidden: int) -> Tensor:
    """Constant input currents ``[4H]`` of the fused cell: ``V/2 + V/(2T)`` on the i, f, o gates (none
    on an analog i gate, which reads its raw pre-activation), none on g."""
    offset = params.offset_sig
    if not params.spike_i:
        offset = torch.cat([offset.new_zeros(hidden), offset[hidden:]])
    return torch.cat([offset, offset.new_zeros(hidden)])


def _ann_ops(elements: int, fan_in: int, hidden: int) -> tuple[float, float]:
    """(MAC, AC) of the iso-architecture non-spiking LSTM layer for ``elements = N * B`` cell steps."""
    mac = elements * (4 * hidden * (fan_in + hidden) + 3 * hidden)
    ac = elements * (4 * hidden + hidden)
    return float(mac), float(ac)


def _snn_step(
    x_proj: Tensor,
    hc_in: Tensor,
    mem: Tensor,
    w_hh_t: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
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


StepFn = Callable[..., tuple[Tensor, Tensor, Tensor]]
_COMPILED: dict[str, Callable[..., Any]] = {}


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=True)``, built once per process and function."""
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn.__name__]


def _finish_counts(counts: list[Tensor], hidden: int) -> dict[str, Tensor]:
    total = torch.stack(counts).sum(0)
    i, f, o = total[: 3 * hidden].view(3, hidden).sum(1)
    return {"i": i, "f": f, "o": o, "g": total[3 * hidden], "tanh_c": total[3 * hidden + 1]}


def _pipelined(
    proj: Tensor,
    direct: bool,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
    timesteps: int,
    step: StepFn = _snn_step,
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
    outs, order, counts = [], [], []
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
        order.extend(n * t_max + (d - n) for n in range(n_lo, n_hi + 1))
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    hc = torch.cat(outs).index_select(0, inverse.to(proj.device)).view(n_steps, t_max, batch, 2 * hid)
    return hc[..., :hid], hc[..., hid:], _finish_counts(counts, hid)


def _sequential(
    proj: Tensor,
    direct: bool,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: SpikingCellParams,
    spike_fn: Callable[[Tensor], Tensor],
    timesteps: int,
    step: StepFn = _snn_step,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Reference T*N schedule: for each element n, for each step t (same model as :func:`_pipelined`)."""
    batch, hid = proj.shape[-2], h0.shape[-1]
    hc_init = torch.cat([h0, c0], dim=-1)
    hc_prev = list(hc_init.unbind(0)) if hc_init.dim() == 3 else [hc_init] * timesteps
    counts, outs = [], []
    for proj_n in proj.unbind(0):
        mem = proj.new_zeros(batch, 5 * hid)
        for t in range(timesteps):
            x_proj = proj_n if direct else proj_n[t]
            hc_prev[t], mem, step_counts = step(x_proj, hc_prev[t], mem, w_hh_t, p, spike_fn)
            counts.append(step_counts)
        outs.append(torch.stack(hc_prev))
    hc = torch.stack(outs)
    return hc[..., :hid], hc[..., hid:], _finish_counts(counts, hid)


def spiking_layers(module: nn.Module) -> list[SpikingLSTM]:
    """Every :class:`SpikingLSTM` inside ``module`` (found by type, outermost first)."""
    return [m for m in module.modules() if isinstance(m, SpikingLSTM)]


class LSTMCompat(SpikingLSTM):
    """:class:`SpikingLSTM` that answers like ``torch.nn.LSTM``: ``output, (h_n, c_n)``.

    Built by :meth:`from_torch` from an ``nn.LSTM`` whose Parameter objects it takes over (so an
    optimizer that holds them keeps training them, with its state); spike statistics reach
    listeners through :meth:`register_stats_hook`.
    """

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:  # type: ignore[override]
        result = super().forward(x, hx)
        return result.output, (result.state.h, result.state.c)

    @classmethod
    def from_torch(cls, lstm: nn.LSTM, **kwargs: Any) -> "LSTMCompat":
        """Wrap a unidirectional ``nn.LSTM`` (no projection), reusing its Parameter objects.

        Args:
            lstm: the module to replace.
            **kwargs: further :class:`SpikingLSTM` arguments (``activation`` defaults to
                ``"standard"`` so that the result computes exactly what ``lstm`` did).

        Raises:
            ValueError: bidirectional or projected LSTMs (not convertible).
        """
        if lstm.bidirectional or getattr(lstm, "proj_size", 0):
            raise ValueError("only unidirectional nn.LSTM layers without proj_size can be converted to spiking LSTMs")
        kwargs.setdefault("activation", "standard")
        new = cls(
            lstm.input_size,
            lstm.hidden_size,
            num_layers=lstm.num_layers,
            bias=lstm.bias,
            batch_first=lstm.batch_first,
            dropout=lstm.dropout,
            **kwargs,
        )
        for name, param in lstm.named_parameters(recurse=False):
            setattr(new, name, param)
        device = next(lstm.parameters()).device
        return new.to(device)
