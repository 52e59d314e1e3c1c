"""Closed forms of the time-averaged IF/LIF outputs (Datta et al. 2022, Sec. "Conversion to SNN").

These are what conversion analysis and the tests compare the neuron simulations against.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def if_sigmoid_rate(z: Tensor, v_sig: float, timesteps: int, shift: bool = False) -> Tensor:
    """Average output of the converted hard-sigmoid IF neuron over ``T`` steps, constant input ``z``.

    ``Y = (1/T) clip(floor((T / V_sig) (z + V_sig/2 + s)), 0, T)`` with the optimal shift
    ``s = V_sig / (2T)`` when ``shift`` (which turns the floor into rounding).
    """
    s = v_sig / (2 * timesteps) if shift else 0.0
    return torch.clamp(torch.floor(timesteps / v_sig * (z + v_sig / 2 + s)), 0, timesteps) / timesteps


def if_tanh_rate(z: Tensor, v_pos: float, v_neg: float, timesteps: int, shift: bool = False) -> Tensor:
    """Average output of the converted ternary hard-tanh IF neuron over ``T`` steps, constant ``z``.

    Positive side ``(1/T) clip(floor(T (z + s+) / V+), 0, T)``, negative side
    ``-(1/T) clip(floor(T (z + s-) / V-), 0, T)`` with shifts ``s± = V± / (2T)`` when ``shift``.
    """
    t = timesteps
    sp, sn = (v_pos / (2 * t), v_neg / (2 * t)) if shift else (0.0, 0.0)
    pos = torch.clamp(torch.floor(t * (z + sp) / v_pos), 0, t)
    neg = torch.clamp(torch.floor(t * (z + sn) / v_neg), 0, t)
    return torch.where(z >= 0, pos, -neg) / t


def lif_first_spike_time(current: float, threshold: float, leak: float) -> float:
    """Eq. (6): first step ``t*`` at which a LIF neuron with constant input fires (``inf`` if never).

    ``t* = ceil(log(1 - V (1 - lambda) / I) / log(lambda))``; never fires when ``I <= V (1 - lambda)``.
    For ``lambda = 1`` (IF) this is ``ceil(V / I)``.
    """
    if current <= 0 or current <= threshold * (1 - leak):
        return math.inf
    if leak == 1.0:
        return float(math.ceil(threshold / current))
    return float(math.ceil(math.log(1 - threshold * (1 - leak) / current) / math.log(leak)))


def lif_rate(current: float, threshold: float, leak: float, timesteps: int) -> float:
    """Eq. (7): average LIF output ``(1/T) floor(T / t*)`` (reset to zero), 0 if it never fires."""
    t_star = lif_first_spike_time(current, threshold, leak)
    return 0.0 if math.isinf(t_star) else math.floor(timesteps / t_star) / timesteps
