"""Spiking neuron modules: snnTorch ``Leaky`` neurons with trainable threshold and leak.

Each module subclasses :class:`snntorch.Leaky`, so threshold (``threshold``), leak (``beta``,
clamped to [0, 1] as in snnTorch) and the surrogate (``spike_grad``) are snnTorch's own parameters
and machinery; the step itself is the pure function of :mod:`snnlstm.functional.neurons`. The
modules keep no hidden state: ``forward(input_, mem)`` returns ``(spikes, mem)``.

Learnable parameters:
    threshold: ``V_th`` (``V+`` for the ternary neuron), 0-dim; a Parameter when ``learn_threshold``.
    threshold_neg: ``V-`` of :class:`TernaryNeuron`, 0-dim.
    beta: leak ``lambda``, 0-dim; a Parameter when ``learn_leak``.
"""

from __future__ import annotations

import snntorch
import torch
from snntorch._neurons.neurons import SpikingNeuron
from torch import Tensor, nn

from ..functional.neurons import if_step, ternary_step
from ..functional.surrogates import build_surrogate

#: smallest threshold magnitude used in the forward pass (keeps ``U / V`` finite while training)
MIN_THRESHOLD = 1e-3


def _check_common(leak: float) -> None:
    if not 0.0 <= leak <= 1.0:
        raise ValueError(f"leak (lambda) must be in [0, 1] (1 = IF, < 1 = LIF), got {leak}")


class IFNeuron(snntorch.Leaky):
    """IF/LIF neuron with spikes in {0, 1}, reset by subtraction, trainable threshold and leak.

    Args:
        threshold: initial ``V_th > 0``.
        leak: initial ``lambda`` in [0, 1].
        learn_threshold: make ``threshold`` a Parameter.
        learn_leak: make ``beta`` (the leak) a Parameter.
        surrogate: surrogate name (see :data:`snnlstm.functional.surrogates.SURROGATES`).
        gamma: height of the triangular surrogate.

    Inputs: ``input_`` ``[..., K]`` current, ``mem`` same shape or None (zeros).
    Outputs: ``(spikes, mem)``.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        leak: float = 1.0,
        learn_threshold: bool = True,
        learn_leak: bool = True,
        surrogate: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        _check_common(leak)
        super().__init__(
            beta=float(leak),
            threshold=float(threshold),
            spike_grad=build_surrogate(surrogate, gamma),
            learn_beta=learn_leak,
            learn_threshold=learn_threshold,
            reset_mechanism="subtract",
            reset_delay=False,
        )
        # snnTorch keeps a class-level list of every neuron for init_hidden bookkeeping; our neurons
        # are stateless, so take ourselves out of it (no global references, no leaks).
        SpikingNeuron.instances.remove(self)
        self.surrogate_name = surrogate
        self.gamma = gamma

    def effective_threshold(self) -> Tensor:
        """``V_th`` clamped to ``>= MIN_THRESHOLD``."""
        return self.threshold.clamp(min=MIN_THRESHOLD)

    def effective_leak(self) -> Tensor:
        """``lambda`` clamped to [0, 1] (snnTorch's convention)."""
        return self.beta.clamp(0.0, 1.0)

    def forward(self, input_: Tensor, mem: Tensor | None = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if mem is None:
            mem = torch.zeros_like(input_)
        return if_step(input_, mem, self.effective_threshold(), self.effective_leak(), self.spike_grad)


class TernaryNeuron(IFNeuron):
    """Ternary tanh neuron (+1 over ``V+``, -1 under ``V-``, 0 else), reset by subtraction.

    Args:
        threshold: initial ``V+ > 0``.
        threshold_neg: initial ``V- < 0``.
        leak, learn_threshold, learn_leak, surrogate, gamma: as :class:`IFNeuron`.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        threshold_neg: float = -1.0,
        leak: float = 1.0,
        learn_threshold: bool = True,
        learn_leak: bool = True,
        surrogate: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        if not threshold_neg < 0:
            raise ValueError(f"threshold_neg (V-) must be < 0, got {threshold_neg}")
        super().__init__(threshold, leak, learn_threshold, learn_leak, surrogate, gamma)
        value = torch.as_tensor(float(threshold_neg))
        if learn_threshold:
            self.threshold_neg = nn.Parameter(value)
        else:
            self.register_buffer("threshold_neg", value)

    def effective_threshold_neg(self) -> Tensor:
        """``V-`` clamped to ``<= -MIN_THRESHOLD``."""
        return self.threshold_neg.clamp(max=-MIN_THRESHOLD)

    def forward(self, input_: Tensor, mem: Tensor | None = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if mem is None:
            mem = torch.zeros_like(input_)
        return ternary_step(
            input_,
            mem,
            self.effective_threshold(),
            self.effective_threshold_neg(),
            self.effective_leak(),
            self.spike_grad,
        )
