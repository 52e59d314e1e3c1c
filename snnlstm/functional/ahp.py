"""Pure step functions of the AHP neuron and of its adaptive-threshold (ALIF/LSNN) twin.

Rao, Plank, Wild & Maass (2021/22), as deployed on Loihi: a leaky membrane ``V`` and a second
compartment carrying a slow after-hyperpolarizing (AHP) current ``A`` that every spike pushes down
(decay ``alpha = 1 - 1/tau_v`` of the membrane, ``rho = 1 - 1/tau_a`` of the AHP current,
``tau_a >> tau_v``)::

    V(t) = 0                                       during a refractory step (no spike)
    V(t) = alpha * V(t-1) + I(t) + A(t)            otherwise
    z(t) = 1 if V(t) > theta else 0                (surrogate gradient on V / theta - 1)
    V(t) = 0 after a spike (reset to zero), then ``refractory`` steps held at 0
    A(t+1) = rho * A(t) - w * z(t)

The adaptive-threshold form (Bellec et al.'s ALIF/LSNN neuron) keeps the AHP out of the membrane
``U`` and raises the threshold instead::

    b(t+1) = rho * b(t) + z(t) / tau_a             threshold theta + beta * b(t)
    U(t)   = beta * b(t)                           during a refractory step
    U(t)   = alpha * U(t-1) + I(t)                 otherwise
    z(t)   = 1 if U(t) - beta * b(t) > theta else 0,  then U(t) = beta * b(t) (effective membrane 0)

With at least one refractory step the two forms give identical spike trains and
``V(t) = U(t) - beta * b(t)`` at every step when

.. math::  w = \\frac{\\beta (1/\\tau_v - 1/\\tau_a)}{\\tau_a - 1}
           = \\frac{\\beta}{\\rho} \\left(\\frac{1}{\\tau_a \\tau_v} - \\frac{1}{\\tau_a^2}\\right)

(:func:`ahp_strength_from_adaptation`). This is the paper's continuous-time relation
``w = beta (1/(tau_a tau_v) - 1/tau_a^2)`` divided by ``rho``: in discrete time the AHP kick of the
step right after a spike falls on the refractory step and reaches the membrane one step later,
already decayed by ``rho``. (Proof: ``A(t) = -beta (rho - alpha) b(t) / rho`` satisfies both
recursions; on a non-refractory step ``z(t-1) = 0``, so ``alpha U(t-1) + I(t) - beta b(t)`` equals
``alpha V(t-1) + I(t) + A(t)``.) At Loihi's ``tau_a = 700`` the two relations differ by 0.14%.

Shapes: ``current`` and every state tensor ``[..., K]``; parameters are scalars or broadcast over
``K``. The reset uses a detached spike (as snnTorch's neurons do), so gradients flow through the
membrane and the AHP current but not through the reset.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .surrogates import SpikeFn
from .neurons import _as


class AHPState(NamedTuple):
    """State of AHP neurons between steps.

    Attributes:
        mem: membrane ``V(t-1)``, ``[..., K]``.
        ahp: AHP current ``A(t)`` to add at the next step, ``[..., K]``.
        refractory: remaining refractory steps for the next step (integer-valued), ``[..., K]``.
    """

    mem: Tensor
    ahp: Tensor
    refractory: Tensor


class ALIFState(NamedTuple):
    """State of adaptive-threshold neurons between steps.

    Attributes:
        mem: membrane ``U(t-1)`` (without the adaptation), ``[..., K]``.
        adaptation: threshold variable ``b(t)`` of the next step, ``[..., K]``.
        refractory: remaining refractory steps for the next step, ``[..., K]``.
    """

    mem: Tensor
    adaptation: Tensor
    refractory: Tensor


def check_tau(name: str, tau: float) -> None:
    """Raise ``ValueError`` unless ``tau >= 1`` time step (so ``1 - 1/tau`` is a decay in [0, 1)).

    ``math.inf`` is allowed (no decay).
    """
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or math.isnan(tau) or not tau >= 1.0:
        raise ValueError(
            f"{name} must be a time constant >= 1 time step (decay 1 - 1/{name} in [0, 1]), got {tau!r}"
        )


def decay_from_tau(tau: float) -> float:
    """``1 - 1/tau`` (the per-step decay of a time constant ``tau >= 1``; 1 for ``inf``)."""
    return 1.0 - 1.0 / float(tau)


def tau_from_decay(decay: Tensor) -> Tensor:
    """``1 / (1 - decay)``: the time constant of a per-step decay in [0, 1) (inf at 1)."""
    return 1.0 / (1.0 - decay)


def ahp_strength_from_adaptation(beta: float, tau_v: float, tau_a: float) -> float:
    """AHP strength ``w`` whose spike trains equal those of the ALIF neuron with threshold jump
    ``beta / tau_a`` per spike (module docstring): ``w = beta (1/tau_v - 1/tau_a) / (tau_a - 1)``.

    Args:
        beta: adaptation strength of the ALIF form, ``>= 0``.
        tau_v: membrane time constant, ``> 1``.
        tau_a: AHP / adaptation time constant, ``> 1``.

    Raises:
        ValueError: ``beta < 0`` or a time constant ``<= 1``.
    """
    if not beta >= 0:
        raise ValueError(f"beta (adaptation strength) must be >= 0, got {beta!r}")
    for name, tau in (("tau_v", tau_v), ("tau_a", tau_a)):
        check_tau(name, tau)
        if not tau > 1:
            raise ValueError(f"{name} must be > 1 for the AHP/ALIF equivalence, got {tau!r}")
    return float(beta) * (1.0 / tau_v - 1.0 / tau_a) / (tau_a - 1.0)


def _refractory_update(refractory: Tensor, spikes: Tensor, steps: int) -> Tensor:
    """Remaining refractory steps after this step: ``steps`` after a spike, else one fewer."""
    if steps == 0:
        return refractory
    return torch.where(spikes.detach() > 0, torch.full_like(refractory, float(steps)), (refractory - 1.0).clamp(min=0.0))


def ahp_step(
    current: Tensor,
    state: AHPState,
    threshold: Tensor | float,
    mem_decay: Tensor | float,
    ahp_decay: Tensor | float,
    ahp_strength: Tensor | float,
    spike_fn: SpikeFn,
    refractory_steps: int = 1,
) -> tuple[Tensor, AHPState]:
    """One step of the two-compartment AHP neuron (module docstring).

    A neuron with ``ahp_strength = 0`` is a plain LIF neuron with reset to zero.

    Args:
        current: synaptic input ``I(t)``, ``[..., K]``.
        state: :class:`AHPState` after step ``t - 1``.
        threshold: ``theta > 0``.
        mem_decay: ``alpha = 1 - 1/tau_v`` in [0, 1].
        ahp_decay: ``rho = 1 - 1/tau_a`` in [0, 1].
        ahp_strength: ``w >= 0`` (each spike adds ``-w`` to the AHP current).
        spike_fn: surrogate spike function of ``V / theta - 1``.
        refractory_steps: steps held at ``V = 0`` after a spike (Loihi: 1).

    Returns:
        ``(spikes z(t) in {0, 1}, AHPState after step t)``.
    """
    refractory = state.refractory > 0
    mem = torch.where(refractory, torch.zeros_like(current), mem_decay * state.mem + current + state.ahp)
    spikes = _as(spike_fn(mem / threshold - 1.0), mem)
    if refractory_steps > 0:
        spikes = spikes * (~refractory).to(mem.dtype)
    mem = mem * (1.0 - spikes.detach())
    ahp = ahp_decay * state.ahp - ahp_strength * spikes
    return spikes, AHPState(mem, ahp, _refractory_update(state.refractory, spikes, refractory_steps))


def alif_step(
    current: Tensor,
    state: ALIFState,
    threshold: Tensor | float,
    mem_decay: Tensor | float,
    adaptation_decay: Tensor | float,
    beta: Tensor | float,
    spike_fn: SpikeFn,
    refractory_steps: int = 1,
) -> tuple[Tensor, ALIFState]:
    """One step of the adaptive-threshold (ALIF) form of the AHP neuron (module docstring).

    Args:
        current: synaptic input ``I(t)``, ``[..., K]``.
        state: :class:`ALIFState` after step ``t - 1``.
        threshold: base threshold ``theta > 0``.
        mem_decay: ``alpha = 1 - 1/tau_v``.
        adaptation_decay: ``rho = 1 - 1/tau_a`` (``b`` grows by ``1 - rho = 1/tau_a`` per spike).
        beta: adaptation strength (threshold ``theta + beta * b``).
        spike_fn: surrogate spike function, called on ``(U - beta b) / theta - 1``.
        refractory_steps: steps held at the effective membrane 0 after a spike.

    Returns:
        ``(spikes z(t) in {0, 1}, ALIFState after step t)``.
    """
    refractory = state.refractory > 0
    offset = beta * state.adaptation
    mem = torch.where(refractory, offset.expand_as(current), mem_decay * state.mem + current)
    spikes = _as(spike_fn((mem - offset) / threshold - 1.0), mem)
    if refractory_steps > 0:
        spikes = spikes * (~refractory).to(mem.dtype)
    keep = spikes.detach()
    mem = mem * (1.0 - keep) + offset * keep
    adaptation = adaptation_decay * state.adaptation + (1.0 - adaptation_decay) * spikes
    return spikes, ALIFState(mem, adaptation, _refractory_update(state.refractory, spikes, refractory_steps))
