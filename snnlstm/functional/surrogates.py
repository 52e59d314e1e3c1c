"""Surrogate gradients, built on snnTorch's surrogate machinery and selectable by name.

All neurons in snnlstm call their surrogate on the *normalised* membrane ``x = U / V_th - 1``, so a
spike is ``x > 0`` and the chain rule supplies the ``1 / V_th`` factor. The paper's triangle
(Datta et al. 2022, after Bellec et al. 2018)

.. math::
    \\frac{\\partial O}{\\partial U} = \\frac{\\gamma}{V_{th}} \\max\\left(0, 1 - \\left|\\frac{U}{V_{th}} - 1\\right|\\right)

is therefore ``gamma * max(0, 1 - |x|)`` in ``x``. It is written through
``snntorch.surrogate.custom_surrogate`` because snnTorch 1.0.0's own ``surrogate.triangular()``
returns ``+threshold`` below and ``-threshold`` above the threshold everywhere (no window), which
is not the triangle.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from snntorch import surrogate as _snn_surrogate
from torch import Tensor

SpikeFn = Callable[[Tensor], Tensor]

#: Surrogate names accepted by :func:`build_surrogate`.
SURROGATES: tuple[str, ...] = ("triangular", "fast_sigmoid", "atan", "straight_through")


def triangular(gamma: float = 1.0) -> SpikeFn:
    """Datta/Bellec windowed triangle: Heaviside forward, ``gamma * max(0, 1 - |x|)`` backward.

    Args:
        gamma: maximum gradient (at ``x = 0``, i.e. ``U = V_th``), ``> 0``.

    Returns:
        A spike function mapping the normalised membrane ``x`` (any shape) to spikes in {0, 1}.
    """
    return _snn_surrogate.custom_surrogate(functools.partial(_triangular_grad, gamma=float(gamma)))


def _triangular_grad(input_: Tensor, grad_input: Tensor, spikes: Tensor, gamma: float) -> Tensor:
    """Backward of :func:`triangular` in snnTorch's custom-surrogate signature."""
    return grad_input * (gamma * torch.clamp(1.0 - input_.abs(), min=0.0))


def build_surrogate(name: str = "triangular", gamma: float = 1.0) -> SpikeFn:
    """Return the spike function called ``name``.

    Args:
        name: one of :data:`SURROGATES`. ``fast_sigmoid`` and ``atan`` are snnTorch's own
            (slope ``25`` / ``alpha = 2``), ``straight_through`` passes gradients unchanged.
        gamma: height of the triangular surrogate (ignored by the others), ``> 0``.

    Raises:
        ValueError: unknown name or non-positive gamma.
    """
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; allowed: {', '.join(SURROGATES)}")
    if not gamma > 0:
        raise ValueError(f"surrogate gamma must be > 0, got {gamma}")
    if name == "triangular":
        return triangular(gamma)
    if name == "fast_sigmoid":
        return _snn_surrogate.fast_sigmoid()
    if name == "atan":
        return _snn_surrogate.atan()
    return _snn_surrogate.straight_through_estimator()
