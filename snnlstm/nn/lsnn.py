"""LSNN layer: a recurrent population of plain LIF and AHP neurons (Rao, Plank, Wild & Maass 2021/22;
Bellec et al. 2018), and the non-spiking leaky readout that classifies from it.

Per step ``t`` (``K = n_lif + n_ahp`` neurons, the LIF neurons first)::

    I(t) = W_in x(t) + W_rec z(t-1) (+ b)
    z(t), state = ahp_step(I(t), state, ...)          (AHP neurons: w > 0; LIF neurons: w = 0)

The input projection ``W_in x`` is one matrix product over the whole sequence; the time loop does
one ``[B, K] x [K, K]`` product and the neuron update. ``W_rec`` has no self-connections; with
``sign_constraints`` each presynaptic neuron's outgoing weights share its sign (Dale's law: the last
``n_inhibitory`` LIF neurons inhibitory, every other neuron excitatory), ``W_rec = |V| * sign``.

``neuron_form="alif"`` runs the AHP population in its adaptive-threshold form (identical spikes,
:mod:`snnlstm.functional.ahp`); the AHP strength is then trained as the ALIF ``beta``.

The time loop runs on one backend, resolved explicitly (:mod:`snnlstm.backends.lsnn_selection`) and
visible as ``layer.backend`` / ``layer.kernel``: the fused C++ loop (``"cpp-fused"``) or the eager
Python loop (``"torch-eager"``).
"""

from __future__ import annotations

import logging
import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from .adaptive import AHPNeuron, ALIFNeuron
from ..backends.fused_lsnn import event_input, fused_lsnn_layer, fused_lsnn_sequence  # noqa: F401 (fused_lsnn_layer: the [N, B, K] entry point)
from ..backends.lsnn_selection import LSNNOptions, Resolved, resolve_lsnn
from ..backends.selection import check_backend
from .backend_choice import BackendChoice
from ..functional.ahp import AHPState, ALIFState, ahp_step, ahp_strength_from_adaptation, alif_step, check_tau, decay_from_tau
from ..measure.stats import LayerStats, SpikeStats, StatsSource
from .inputs import HALF_DTYPES, check_finite
from .options import check_choice

NEURON_FORMS: tuple[str, ...] = ("ahp", "alif")
SCHEDULES: tuple[str, ...] = ("fused", "eager")



class LSNNState(NamedTuple):
    """Recurrent state of an :class:`LSNN` layer between calls.

    Attributes:
        spikes: ``z(t-1)``, ``[B, K]``.
        neurons: :class:`snnlstm.functional.ahp.AHPState` (or ``ALIFState``) of the K neurons.
    """

    spikes: Tensor
    neurons: tuple[Tensor, Tensor, Tensor]


class LSNNOutput(NamedTuple):
    """Result of :meth:`LSNN.forward`.

    Attributes:
        output: spikes ``[B, N, K]`` (batch first).
        state: :class:`LSNNState` after the last step.
        stats: one :class:`snnlstm.measure.stats.LayerStats` (populations ``lif`` and ``ahp``).
    """

    output: Tensor
    state: LSNNState
    stats: SpikeStats


def _count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class LSNN(BackendChoice, StatsSource):
    """Recurrent spiking layer of LIF and AHP neurons with trainable time constants and AHP strength.

    Args:
        input_size: input features (or input neurons) F per step.
        n_lif: plain LIF neurons (the reference sMNIST network: 140).
        n_ahp: AHP neurons (the reference: 100).
        n_inhibitory: how many of the LIF neurons are inhibitory (needs ``sign_constraints``; the
            reference: 60 of 140).
        sign_constraints: keep each neuron's outgoing recurrent weights at its sign (Dale's law).
        threshold: firing threshold ``theta`` of every neuron.
        tau_v: membrane time constant (steps) of every neuron (Loihi: 20).
        tau_a: AHP time constant (steps) of the AHP neurons (Loihi: 700).
        beta: AHP strength given as the equivalent ALIF threshold jump ``beta / tau_a`` per spike
            (Bellec et al.'s parameter); the AHP form uses
            ``w = ahp_strength_from_adaptation(beta, tau_v, tau_a)``. 0 switches the AHP off.
        refractory: refractory steps after a spike (Loihi: 1).
        neuron_form: ``ahp`` (two compartments, as on Loihi) or ``alif`` (adaptive threshold).
        learn_tau: train ``tau_v`` and ``tau_a`` (per population, kept >= 1 step).
        learn_ahp: train the AHP strength (kept >= 0).
        learn_threshold: train the thresholds.
        surrogate, gamma: surrogate gradient (Bellec et al.: triangle of height 0.3).
        input_gain: input weights start as ``N(0, (input_gain * theta)^2 / F)``.
        recurrent_gain: recurrent weights start as ``N(0, (recurrent_gain * theta)^2 / K)``.
        bias: add a trainable bias current per neuron.
        schedule: ``fused`` (default) lets the backend choose the loop; ``eager`` asks for the eager
            Python loop (kept for older configs: ``backend="auto"`` then resolves to ``"torch"`` and
            says so, ``backend="cpp"`` is refused).
        readout_size: number of leaky readout neurons C the population's spikes drive (e.g. a
            :class:`LeakyReadout` of C classes); counted in the synaptic operations (each spike
            fans out to them, each readout membrane updates once per step). 0: no readout counted.
        backend: ``"auto"`` (default), ``"cpp"`` (the fused C++ loop,
            :mod:`snnlstm.backends.fused_lsnn`: CPU, float32/float64, ``ahp`` form, triangular
            surrogate, ``schedule="fused"``) or ``"torch"`` (the eager loop, any device, dtype and
            setting): see :mod:`snnlstm.backends.lsnn_selection`. An explicit ``"cpp"`` that cannot run
            raises :class:`snnlstm.backends.selection.BackendError`; the resolved choice is
            ``layer.backend`` / ``layer.kernel`` and is logged once.

    Inputs: ``x`` ``[B, N, F]``; optional :class:`LSNNState`.
    Outputs: :class:`LSNNOutput`.
    """

    _backend_log = logging.getLogger(__name__)

    def __init__(
        self,
        input_size: int,
        n_lif: int = 140,
        n_ahp: int = 100,
        n_inhibitory: int = 0,
        sign_constraints: bool = False,
        threshold: float = 1.0,
        tau_v: float = 20.0,
        tau_a: float = 700.0,
        beta: float = 1.8,
        refractory: int = 1,
        neuron_form: Literal["ahp", "alif"] = "ahp",
        learn_tau: bool = True,
        learn_ahp: bool = True,
        learn_threshold: bool = False,
        surrogate: str = "triangular",
        gamma: float = 0.3,
        input_gain: float = 1.0,
        recurrent_gain: float = 1.0,
        bias: bool = False,
        schedule: Literal["fused", "eager"] = "fused",
        readout_size: int = 0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_choice("schedule", schedule, SCHEDULES)
        check_backend(backend)
        _count("input_size", input_size, 1)
        _count("n_lif", n_lif, 0)
        _count("n_ahp", n_ahp, 0)
        _count("n_inhibitory", n_inhibitory, 0)
        _count("readout_size", readout_size, 0)
        if n_lif + n_ahp < 1:
            raise ValueError("the LSNN needs at least one neuron: n_lif + n_ahp >= 1")
        if n_inhibitory > n_lif:
            raise ValueError(f"n_inhibitory ({n_inhibitory}) cannot exceed n_lif ({n_lif})")
        if n_inhibitory and not sign_constraints:
            raise ValueError("n_inhibitory > 0 needs sign_constraints=True (otherwise no neuron is inhibitory)")
        if neuron_form not in NEURON_FORMS:
            raise ValueError(f"unknown neuron_form {neuron_form!r}; allowed: {', '.join(NEURON_FORMS)}")
        if not beta >= 0:
            raise ValueError(f"beta (AHP strength as an ALIF threshold jump) must be >= 0, got {beta!r}")
        for name, gain in (("input_gain", input_gain), ("recurrent_gain", recurrent_gain)):
            if not gain >= 0:
                raise ValueError(f"{name} must be >= 0, got {gain!r}")
        self.input_size, self.n_lif, self.n_ahp = input_size, n_lif, n_ahp
        self.hidden_size = n_lif + n_ahp
        self.readout_size = readout_size
        self.num_layers = 1
        self.n_inhibitory, self.sign_constraints = n_inhibitory, bool(sign_constraints)
        self.neuron_form = neuron_form
        self.schedule = schedule
        self.backend = backend
        #: how the last forward built its input currents (see :meth:`_note_input_path`); None before one
        self.input_path: str | None = None
        self._input_paths_seen: set[str] = set()
        common = dict(threshold=threshold, tau_v=tau_v, tau_a=tau_a, refractory=refractory, learn_threshold=learn_threshold, learn_tau=learn_tau, surrogate=surrogate, gamma=gamma)
        # LIF population: AHP neurons whose AHP is off (w = 0, frozen); one step function for both
        self.lif = AHPNeuron(ahp_strength=0.0, learn_ahp=False, **common)
        if neuron_form == "ahp":
            w = ahp_strength_from_adaptation(beta, tau_v, tau_a) if beta > 0 else 0.0
            self.ahp: AHPNeuron | ALIFNeuron = AHPNeuron(ahp_strength=w, learn_ahp=learn_ahp, **common)
        else:
            self.ahp = ALIFNeuron(beta=beta, learn_beta=learn_ahp, **common)
        k = self.hidden_size
        self.weight_ih = nn.Parameter(torch.randn(k, input_size) * (input_gain * threshold / math.sqrt(input_size)))
        self.weight_hh = nn.Parameter(torch.randn(k, k) * (recurrent_gain * threshold / math.sqrt(k)))
        self.bias = nn.Parameter(torch.zeros(k)) if bias else None
        self.register_buffer("recurrent_mask", 1.0 - torch.eye(k), persistent=False)
        sign = torch.ones(k)
        if n_inhibitory:
            sign[n_lif - n_inhibitory : n_lif] = -1.0
        self.register_buffer("presynaptic_sign", sign, persistent=False)
        if self.sign_constraints:
            with torch.no_grad():
                self.weight_hh.abs_()

    # ------------------------------------------------------------------ parameters
    def recurrent_weight(self) -> Tensor:
        """Effective ``W_rec [K, K]``: no self-connections, Dale's signs when constrained."""
        w = self.weight_hh * self.recurrent_mask
        if self.sign_constraints:
            w = w.abs() * self.presynaptic_sign
        return w

    def _neuron_params(self, ref: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-neuron ``[K]`` threshold, membrane decay, slow decay and AHP strength (or beta)."""
        pops = ((self.lif, self.n_lif), (self.ahp, self.n_ahp))

        def cat(values: list[Tensor]) -> Tensor:
            return torch.cat([v.to(ref.dtype).expand(n) for v, (_, n) in zip(values, pops)])

        return (
            cat([m.effective_threshold() for m, _ in pops]),
            cat([m.mem_decay() for m, _ in pops]),
            cat([m.slow_decay_value() for m, _ in pops]),
            cat([m.strength() for m, _ in pops]),
        )

    def spiking_parameters(self) -> list[nn.Parameter]:
        """Trainable neuron parameters (time constants, AHP strength, thresholds)."""
        return [p for p in list(self.lif.parameters()) + list(self.ahp.parameters()) if p.requires_grad]

    def project_parameters(self) -> None:
        """Move the neurons' trained parameters back into their valid ranges (after an optimiser step;
        see :meth:`snnlstm.nn.adaptive.AHPNeuron.project_parameters`)."""
        self.lif.project_parameters()
        self.ahp.project_parameters()

    # ------------------------------------------------------------------ backend
    @property
    def schedule(self) -> str:
        """``"fused"`` or ``"eager"`` (asks for the eager loop; see the class docstring)."""
        return self._schedule

    @schedule.setter
    def schedule(self, name: str) -> None:
        check_choice("schedule", name, SCHEDULES)
        self._schedule = name

    def _backend_weight(self) -> Tensor:
        return self.weight_hh

    def _backend_settings(self) -> LSNNOptions:
        return LSNNOptions(self.neuron_form, self.ahp.surrogate_name, self.schedule)

    def _resolve(self, device: torch.device, dtype: torch.dtype) -> Resolved:
        return resolve_lsnn(self.backend_request, device, dtype, self._backend_settings())

    def _note_input_path(self, path: str) -> None:
        """Record how the last forward built its input currents, ``layer.input_path``: ``"events"`` (binary
        inputs on the C++ backend: only the weight columns of active inputs are added) or ``"dense"``
        (``W_in x + b``); each new path is logged once."""
        if path not in self._input_paths_seen:
            self._input_paths_seen.add(path)
            self._backend_log.info("LSNN input currents: %s", "event-driven (binary input)" if path == "events" else "dense product")
        self.input_path = path

    def initial_state(self, batch: int, like: Tensor) -> LSNNState:
        """Resting state for ``batch`` sequences."""
        zero = like.new_zeros(batch, self.hidden_size)
        return LSNNState(zero, (zero, zero, zero))

    def streamer(self, batch_size: int = 1, backend: str | None = None) -> "LSNNStreamer":  # noqa: F821
        """An :class:`snnlstm.nn.streaming.LSNNStreamer`: one input step ``[B, F]`` per call -> spikes
        ``[B, K]``, the state carried, equal to :meth:`forward` (inference only; see that module)."""
        from .streaming import lsnn_streamer

        return lsnn_streamer(self, batch_size, backend)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, state: LSNNState | None = None) -> LSNNOutput:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"LSNN expects [batch, steps, {self.input_size}] inputs, got shape {tuple(x.shape)}")
        # checked on the host for CPU inputs, else by a device-side assertion (no synchronisation)
        check_finite(x, "LSNN got NaN or infinite inputs")
        if self.weight_hh.dtype in HALF_DTYPES:
            raise TypeError(
                f"LSNN needs float32/float64 weights, got {self.weight_hh.dtype}: spike decisions in half precision "
                "flip. Keep the module in float32 and train with autocast (Trainer(precision='bf16-mixed'))"
            )
        if torch.is_autocast_enabled(x.device.type):  # membranes, spikes and counts as in a float32 run
            with torch.autocast(x.device.type, enabled=False):
                full = None if state is None else LSNNState(state.spikes.float(), tuple(t.float() for t in state.neurons))
                return self.forward(x.float() if x.dtype in HALF_DTYPES else x, full)
        resolved = self.resolve_backend()
        batch, n_steps, _ = x.shape
        state = self.initial_state(batch, x) if state is None else state
        if resolved.kernel != "cpp-fused":  # the fused kernels take x itself (event-driven for spikes)
            # [N, B, K] input currents, one product over the sequence, time-major and contiguous
            current = torch.nn.functional.linear(x.transpose(0, 1).contiguous(), self.weight_ih, self.bias)
        w_rec_t = self.recurrent_weight().t()
        threshold, mem_decay, slow_decay, strength = self._neuron_params(x)
        refractory = self.ahp.refractory
        if resolved.kernel == "cpp-fused":
            z0, (v0, a0, r0) = state.spikes, state.neurons
            # batch first; binary x (spikes) drives the input currents event by event (event_input)
            events = event_input(x, self.weight_ih)
            self._note_input_path("events" if events else "dense")
            spikes, v, a, r = fused_lsnn_sequence(
                x, self.weight_ih, self.bias, w_rec_t, z0, v0, a0, r0, threshold, mem_decay, slow_decay, strength,
                self.ahp.gamma, refractory, events=events,
            )
            final = LSNNState(spikes[:, -1], (v, a, r))
        else:
            self._note_input_path("dense")
            step, state_type = (ahp_step, AHPState) if self.neuron_form == "ahp" else (alif_step, ALIFState)
            z, neurons = state.spikes, state_type(*state.neurons)
            outputs = []
            for current_t in current.unbind(0):  # unbind: one gradient buffer, not one per step
                z, neurons = step(torch.addmm(current_t, z, w_rec_t), neurons, threshold, mem_decay, slow_decay, strength, self.ahp.spike_grad, refractory)
                outputs.append(z)
            spikes, final = torch.stack(outputs, dim=1), LSNNState(z, tuple(neurons))  # type: ignore[arg-type]
        stats = (self._stats(x, spikes, binary=True if self.input_path == "events" else None),)
        result = LSNNOutput(spikes, final, stats)
        self._report_stats(result.stats)
        return result

    @torch.no_grad()
    def _stats(self, x: Tensor, spikes: Tensor, binary: bool | None = None) -> LayerStats:
        """Spike counts per population and the synaptic operations of this forward (``binary``: whether
        ``x`` is known to hold only 0 and 1, e.g. from the event input path; None: checked here).

        Operation model per sample (K neurons, F inputs, C = ``readout_size`` readout neurons): each
        recurrent spike is ``K - 1 + C`` accumulates (its fan-out to the other neurons and the
        readout); a binary input (spikes) costs ``K`` accumulates per input spike, an analog one
        ``F * K`` multiply-accumulates per step; every neuron update is one MAC (leak) plus, for an
        AHP neuron, one MAC for its AHP current, and every readout membrane one MAC (leak) per step.
        The iso-architecture non-spiking reference is an LSTM with ``K`` units on the same input
        (``4K(F + K) + 3K`` MAC and ``5K`` AC per step) whose last ``h`` feeds a linear head of C
        outputs (``C * K`` MAC and ``C`` AC per sample).
        """
        batch, n_steps, features = x.shape
        k, c, steps = self.hidden_size, self.readout_size, batch * n_steps
        lif_spikes = spikes[..., : self.n_lif].sum()
        ahp_spikes = spikes[..., self.n_lif :].sum()
        # binary or analog input, decided on the device (no host synchronisation) unless already known
        is_binary = ((x == 0) | (x == 1)).all() if binary is None else torch.tensor(binary, device=x.device)
        ac = (lif_spikes + ahp_spikes) * (k - 1 + c) + torch.where(is_binary, x.sum().to(spikes.dtype) * k, spikes.new_zeros(()))
        neuron_mac = float(steps * (k + self.n_ahp + c))
        # new_full fills on the device; new_tensor would copy from the host and synchronise
        mac = torch.where(is_binary, spikes.new_full((), neuron_mac), spikes.new_full((), neuron_mac + steps * features * k))
        ann_mac = float(steps * (4 * k * (features + k) + 3 * k) + batch * c * k)
        ann_ac = float(steps * 5 * k + batch * c)
        spike_counts: dict[str, Tensor] = {}
        if self.n_lif:
            spike_counts["lif"] = lif_spikes
        if self.n_ahp:
            spike_counts["ahp"] = ahp_spikes
        return LayerStats(
            spike_counts,
            steps * k,
            ac.to(spikes.dtype),
            mac,
            ann_ac,
            ann_mac,
            batch,
            1,
            n_steps,
            {"lif": steps * self.n_lif, "ahp": steps * self.n_ahp},
        )

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, n_lif={self.n_lif}, n_ahp={self.n_ahp}, n_inhibitory={self.n_inhibitory}, "
            f"sign_constraints={self.sign_constraints}, neuron_form={self.neuron_form}, schedule={self.schedule}, "
            f"backend={self.backend_request}"
            + (f", readout_size={self.readout_size}" if self.readout_size else "")
        )


class LeakyReadout(nn.Module):
    """Non-spiking leaky readout neurons; the class is the argmax of their membrane at the last step.

    ``y(t) = (1 - 1/tau_out) y(t-1) + W z(t) + b`` from ``y(-1) = 0``, evaluated in closed form at the
    last step: ``y(N-1) = W sum_t kappa^(N-1-t) z(t) + b sum_t kappa^t`` (no time loop).

    Args:
        in_features: K.
        out_features: classes C.
        tau_out: readout time constant in steps (>= 1; 1 reads the last step only).

    Inputs: ``z`` ``[B, N, K]``. Outputs: ``[B, C]`` membranes at the last step (the logits).
    """

    def __init__(self, in_features: int, out_features: int, tau_out: float = 20.0) -> None:
        super().__init__()
        check_tau("tau_out", tau_out)
        self.linear = nn.Linear(in_features, out_features)
        self.decay = decay_from_tau(tau_out)
        self.tau_out = float(tau_out)

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[1]
        powers = self.decay ** torch.arange(n - 1, -1, -1, device=z.device, dtype=z.dtype)  # kappa^(N-1-t)
        filtered = torch.einsum("bnk,n->bk", z, powers)
        return torch.nn.functional.linear(filtered, self.linear.weight) + self.linear.bias * powers.sum()

    def extra_repr(self) -> str:
        return f"tau_out={self.tau_out}"
