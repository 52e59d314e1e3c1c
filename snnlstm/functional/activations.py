"""Gate activations of the source (non-spiking) LSTM.

Hard versions follow Datta et al. 2022: hard sigmoid with threshold ``V_sig`` and hard tanh split into
two hard sigmoids with thresholds ``V_tanh+ > 0`` and ``V_tanh- < 0``; these are exactly the limits
(T -> inf) of the IF neurons they convert to.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Activation = Literal["hard", "standard"]
ACTIVATIONS: tuple[str, ...] = ("hard", "standard")


def hard_sigmoid(z: Tensor, v_sig: Tensor | float) -> Tensor:
    """``clip(z / V_sig + 1/2, 0, 1)``: linear from ``-V_sig/2`` to ``V_sig/2``. Any shape."""
    return torch.clamp(z / v_sig + 0.5, 0.0, 1.0)


def hard_tanh(z: Tensor, v_pos: Tensor | float, v_neg: Tensor | float) -> Tensor:
    """``clip(z / V+, 0, 1) + clip(z / |V-|, -1, 0)``: two hard sigmoids, one per sign. Any shape."""
    return torch.clamp(z / v_pos, 0.0, 1.0) + torch.clamp(z / (-v_neg), -1.0, 0.0)


def gate_sigmoid(z: Tensor, activation: str, v_sig: Tensor | float) -> Tensor:
    """Sigmoid-type gate activation: standard ``sigmoid`` or :func:`hard_sigmoid`."""
    return torch.sigmoid(z) if activation == "standard" else hard_sigmoid(z, v_sig)


def gate_tanh(z: Tensor, activation: str, v_pos: Tensor | float, v_neg: Tensor | float) -> Tensor:
    """Tanh-type gate activation: standard ``tanh`` or :func:`hard_tanh`."""
    return torch.tanh(z) if activation == "standard" else hard_tanh(z, v_pos, v_neg)


def check_activation(activation: str) -> None:
    """Raise ``ValueError`` naming the allowed values when ``activation`` is unknown."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
