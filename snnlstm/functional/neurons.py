"""Pure step functions of the spiking neurons (Datta et al. 2022, eqs. 1-5).

Every function takes the input current and the membrane of the previous step and returns
``(spikes, membrane)``; nothing is stored. Shapes are arbitrary but must broadcast with the
parameters (scalars, or vectors over the last dimension).

Dynamics (leak ``lambda``; ``lambda = 1`` is IF, ``lambda < 1`` LIF)::

    U_temp(t) = lambda * U(t-1) + I(t)
    S(t)      = 1 if U_temp(t) > V_th else 0          (ternary: +1 over V+, -1 under V-)
    U(t)      = U_temp(t) - S(t) * V_th               (reset by subtraction)

which is snnTorch's ``Leaky(reset_mechanism="subtract", reset_delay=False)`` update.
"""

from __future__ import annotations

from torch import Tensor

from .surrogates import SpikeFn


def _as(spikes: Tensor, like: Tensor) -> Tensor:
    """snnTorch's spike functions return float32; keep the membrane's dtype (float64, bf16, ...)."""
    return spikes if spikes.dtype == like.dtype else spikes.to(like.dtype)


def if_step(
    current: Tensor,
    mem: Tensor,
    threshold: Tensor | float,
    leak: Tensor | float,
    spike_fn: SpikeFn,
    reset_to_zero: bool = False,
) -> tuple[Tensor, Tensor]:
    """One step of an IF/LIF neuron with spikes in {0, 1}.

    Args:
        current: input current ``I(t)``, shape ``[..., K]``.
        mem: membrane ``U(t-1)``, same shape.
        threshold: ``V_th > 0`` (scalar or ``[K]``).
        leak: ``lambda`` (scalar or ``[K]``).
        spike_fn: surrogate spike function of the normalised membrane ``U / V_th - 1``.
        reset_to_zero: reset to 0 instead of by subtraction (used to check eqs. 6-7).

    Returns:
        ``(spikes, mem)``, both shaped like ``current``.
    """
    mem = leak * mem + current
    spikes = _as(spike_fn(mem / threshold - 1.0), mem)
    mem = mem * (1.0 - spikes) if reset_to_zero else mem - spikes * threshold
    return spikes, mem


def ternary_step(
    current: Tensor,
    mem: Tensor,
    threshold_pos: Tensor | float,
    threshold_neg: Tensor | float,
    leak: Tensor | float,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor]:
    """One step of the ternary tanh neuron (eq. 5): +1 over ``V+``, -1 under ``V-``, else 0.

    Reset by subtraction of the crossed threshold; the surrogate of each side is taken at
    ``U / V± - 1`` so both sides get the paper's ``gamma / |V±|`` triangle.

    Args:
        current: input current, shape ``[..., K]``.
        mem: membrane of the previous step, same shape.
        threshold_pos: ``V+ > 0``.
        threshold_neg: ``V- < 0``.
        leak: ``lambda``.
        spike_fn: surrogate spike function.

    Returns:
        ``(spikes in {-1, 0, 1}, mem)``.
    """
    mem = leak * mem + current
    pos = _as(spike_fn(mem / threshold_pos - 1.0), mem)
    neg = _as(spike_fn(mem / threshold_neg - 1.0), mem)
    mem = mem - pos * threshold_pos - neg * threshold_neg
    return pos - neg, mem
