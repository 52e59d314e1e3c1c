"""AHP neurons (Rao, Plank, Wild & Maass) and their adaptive-threshold twin as snnTorch neurons.

Both modules subclass :class:`snntorch.Leaky`: the membrane decay ``alpha = 1 - 1/tau_v`` is
snnTorch's ``beta`` (clamped to [0, 1] as in snnTorch), the threshold is its ``threshold`` and the
surrogate its ``spike_grad``; the AHP (or adaptation) decay ``rho = 1 - 1/tau_a`` and strength are
added beside them. The step is the pure function of :mod:`snnlstm.functional.ahp`; the modules keep
no hidden state: ``forward(input_, state)`` returns ``(spikes, state)``.

Constructor arguments are time constants in steps (``tau_v``, ``tau_a``, YAML-friendly); trainable
ones are stored as decays and kept in range by clamping in the forward pass (``tau >= 1``).
"""

from __future__ import annotations

import snntorch
import torch
from snntorch._neurons.neurons import SpikingNeuron
from torch import Tensor, nn

from ..functional.ahp import (
    AHPState,
    ALIFState,
    ahp_step,
    alif_step,
    check_tau,
    decay_from_tau,
    tau_from_decay,
)
from .neurons import MIN_THRESHOLD
from ..functional.surrogates import build_surrogate


def _check_refractory(refractory: int) -> None:
    if isinstance(refractory, bool) or not isinstance(refractory, int) or refractory < 0:
        raise ValueError(f"refractory must be an integer number of steps >= 0, got {refractory!r}")


def _scalar(module: nn.Module, name: str, value: float, learn: bool) -> None:
    tensor = torch.as_tensor(float(value))
    if learn:
        setattr(module, name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class _AdaptiveBase(snntorch.Leaky):
    """Shared set-up: snnTorch ``Leaky`` with ``beta = 1 - 1/tau_v``, plus a slow decay ``1 - 1/tau_a``."""

    def __init__(
        self,
        threshold: float,
        tau_v: float,
        tau_a: float,
        refractory: int,
        learn_threshold: bool,
        learn_tau: bool,
        surrogate: str,
        gamma: float,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        check_tau("tau_v", tau_v)
        check_tau("tau_a", tau_a)
        _check_refractory(refractory)
        super().__init__(
            beta=decay_from_tau(tau_v),
            threshold=float(threshold),
            spike_grad=build_surrogate(surrogate, gamma),
            learn_beta=learn_tau,
            learn_threshold=learn_threshold,
            reset_mechanism="zero",
            reset_delay=False,
        )
        SpikingNeuron.instances.remove(self)  # stateless: stay out of snnTorch's global registry
        _scalar(self, "slow_decay", decay_from_tau(tau_a), learn_tau)
        self.refractory = int(refractory)
        self.surrogate_name = surrogate
        self.gamma = float(gamma)

    def effective_threshold(self) -> Tensor:
        """``theta`` clamped to ``>= MIN_THRESHOLD``."""
        return self.threshold.clamp(min=MIN_THRESHOLD)

    @torch.no_grad()
    def project_parameters(self) -> None:
        """Move trained values back into their valid ranges (decays in [0, 1], threshold
        ``>= MIN_THRESHOLD``, AHP strength / beta ``>= 0``).

        The forward pass clamps too, but a clamp has no gradient outside its range, so a value that an
        optimiser step pushed over a bound would stay stuck there; projected onto the bound it keeps
        its gradient. Call after every optimiser step (``LSNNClassifier`` does).
        """
        self.beta.clamp_(0.0, 1.0)
        self.slow_decay.clamp_(0.0, 1.0)
        self.threshold.clamp_(min=MIN_THRESHOLD)
        self._strength_param().clamp_(min=0.0)

    def _strength_param(self) -> Tensor:
        """The stored strength of the slow current: ``ahp_strength`` (AHP) or ``adaptation`` (ALIF)."""
        raise NotImplementedError

    def strength(self) -> Tensor:
        """The slow current's strength clamped to ``>= 0``: ``w`` (AHP form) or ``beta`` (ALIF form)."""
        return self._strength_param().clamp(min=0.0)

    def mem_decay(self) -> Tensor:
        """``alpha = 1 - 1/tau_v`` clamped to [0, 1]."""
        return self.beta.clamp(0.0, 1.0)

    def slow_decay_value(self) -> Tensor:
        """``rho = 1 - 1/tau_a`` clamped to [0, 1]."""
        return self.slow_decay.clamp(0.0, 1.0)

    @property
    def tau_v(self) -> float:
        """Current membrane time constant in steps."""
        return float(tau_from_decay(self.mem_decay().detach()))

    @property
    def tau_a(self) -> float:
        """Current AHP / adaptation time constant in steps."""
        return float(tau_from_decay(self.slow_decay_value().detach()))


class AHPNeuron(_AdaptiveBase):
    """LIF neuron with a slow after-hyperpolarizing current (two compartments, as on Loihi).

    ``V(t) = (1 - 1/tau_v) V(t-1) + I(t) + A(t)``, spike when ``V > theta``, reset to 0 and
    ``refractory`` steps held at 0; ``A(t+1) = (1 - 1/tau_a) A(t) - w z(t)``
    (:func:`snnlstm.functional.ahp.ahp_step`). ``ahp_strength = 0`` gives a plain LIF neuron.

    Args:
        threshold: ``theta > 0``.
        tau_v: membrane time constant in steps, ``>= 1`` (Loihi default 20).
        tau_a: AHP time constant in steps, ``>= 1`` (Loihi default 700).
        ahp_strength: ``w >= 0``, the AHP current added per spike (negative sign applied).
        refractory: refractory steps after a spike (Loihi: 1).
        learn_threshold: make ``threshold`` a Parameter.
        learn_tau: make both decays Parameters (clamped to [0, 1]).
        learn_ahp: make ``ahp_strength`` a Parameter (clamped to ``>= 0``).
        surrogate, gamma: surrogate gradient (:func:`snnlstm.functional.surrogates.build_surrogate`).

    Inputs: ``input_`` ``[..., K]``; ``state`` an :class:`AHPState` or None (rest).
    Outputs: ``(spikes [..., K], AHPState)``.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        tau_v: float = 20.0,
        tau_a: float = 700.0,
        ahp_strength: float = 0.0,
        refractory: int = 1,
        learn_threshold: bool = False,
        learn_tau: bool = False,
        learn_ahp: bool = False,
        surrogate: str = "triangular",
        gamma: float = 0.3,
    ) -> None:
        if not ahp_strength >= 0:
            raise ValueError(f"ahp_strength (w) must be >= 0 (each spike adds -w to the AHP current), got {ahp_strength!r}")
        super().__init__(threshold, tau_v, tau_a, refractory, learn_threshold, learn_tau, surrogate, gamma)
        _scalar(self, "ahp_strength", ahp_strength, learn_ahp)

    def _strength_param(self) -> Tensor:
        return self.ahp_strength

    @staticmethod
    def initial_state(like: Tensor) -> AHPState:
        """Resting state (all zeros) shaped like ``like``."""
        zero = torch.zeros_like(like)
        return AHPState(zero, zero, zero)

    def forward(self, input_: Tensor, state: AHPState | None = None) -> tuple[Tensor, AHPState]:  # type: ignore[override]
        if state is None:
            state = self.initial_state(input_)
        return ahp_step(
            input_,
            state,
            self.effective_threshold(),
            self.mem_decay(),
            self.slow_decay_value(),
            self.strength(),
            self.spike_grad,
            self.refractory,
        )


class ALIFNeuron(_AdaptiveBase):
    """Adaptive-threshold LIF neuron (Bellec et al.'s LSNN neuron), the AHP neuron's twin.

    Threshold ``theta + beta b(t)`` with ``b(t+1) = (1 - 1/tau_a) b(t) + z(t)/tau_a``
    (:func:`snnlstm.functional.ahp.alif_step`). It spikes exactly as :class:`AHPNeuron` with
    ``ahp_strength = ahp_strength_from_adaptation(beta, tau_v, tau_a)`` when ``refractory >= 1``.

    Args:
        beta: adaptation strength ``>= 0``.
        learn_beta: make ``adaptation`` (beta) a Parameter (clamped to ``>= 0``).
        threshold, tau_v, tau_a, refractory, learn_threshold, learn_tau, surrogate, gamma: as
            :class:`AHPNeuron`.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        tau_v: float = 20.0,
        tau_a: float = 700.0,
        beta: float = 1.8,
        refractory: int = 1,
        learn_threshold: bool = False,
        learn_tau: bool = False,
        learn_beta: bool = False,
        surrogate: str = "triangular",
        gamma: float = 0.3,
    ) -> None:
        if not beta >= 0:
            raise ValueError(f"beta (adaptation strength) must be >= 0, got {beta!r}")
        super().__init__(threshold, tau_v, tau_a, refractory, learn_threshold, learn_tau, surrogate, gamma)
        _scalar(self, "adaptation", beta, learn_beta)

    def _strength_param(self) -> Tensor:
        return self.adaptation

    @staticmethod
    def initial_state(like: Tensor) -> ALIFState:
        """Resting state (all zeros) shaped like ``like``."""
        zero = torch.zeros_like(like)
        return ALIFState(zero, zero, zero)

    def forward(self, input_: Tensor, state: ALIFState | None = None) -> tuple[Tensor, ALIFState]:  # type: ignore[override]
        if state is None:
            state = self.initial_state(input_)
        return alif_step(
            input_,
            state,
            self.effective_threshold(),
            self.mem_decay(),
            self.slow_decay_value(),
            self.strength(),
            self.spike_grad,
            self.refractory,
        )
