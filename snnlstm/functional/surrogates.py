"""Surrogate gradients: one registry, read by every implementation that needs them.

All neurons in snnlstm call their surrogate on the *normalised* membrane ``x = U / V_th - 1``, so a
spike is ``S = H(x)`` (``x > 0``) and the chain rule supplies the ``1 / V_th`` factor. Each surrogate
is one :class:`Surrogate` entry of :data:`REGISTRY` holding everything the implementations need:

* ``build``: the snnTorch spike function, for the autograd schedules (:mod:`snnlstm.nn.neurons`);
* ``derivative``: the closed-form ``dS/dx`` (exactly what snnTorch's backward computes), for the
  hand-written backward pass of the fused torch wavefront (:mod:`snnlstm.backends.fused_snn`);
* ``kernel_id``: the integer the C++ kernels (``snnlstm/kernels/csrc/fused_cell.cpp``, ``surr<T, ID>``)
  select the same formula by.

The registered derivatives, with ``x = U / V_th - 1``:

.. math::
    \\text{triangular:}\\quad \\frac{\\partial S}{\\partial x} = \\gamma \\max(0, 1 - |x|) \\qquad
    \\text{fast\\_sigmoid:}\\quad \\frac{1}{(k |x| + 1)^2},\\ k = 25 \\qquad
    \\text{atan:}\\quad \\frac{\\alpha / 2}{1 + (\\pi \\alpha x / 2)^2},\\ \\alpha = 2 \\qquad
    \\text{straight\\_through:}\\quad 1

The paper's triangle (Datta et al. 2022, after Bellec et al. 2018)

.. math::
    \\frac{\\partial O}{\\partial U} = \\frac{\\gamma}{V_{th}} \\max\\left(0, 1 - \\left|\\frac{U}{V_{th}} - 1\\right|\\right)

is therefore ``gamma * max(0, 1 - |x|)`` in ``x``. It is written through
``snntorch.surrogate.custom_surrogate`` because snnTorch 1.0.0's own ``surrogate.triangular()``
returns ``+threshold`` below and ``-threshold`` above the threshold everywhere (no window), which
is not the triangle. ``fast_sigmoid`` and ``atan`` are snnTorch's own with the constants above.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from snntorch import surrogate as _snn_surrogate
from torch import Tensor

SpikeFn = Callable[[Tensor], Tensor]

#: slope ``k`` of the fast-sigmoid surrogate (snnTorch's default; the C++ kernels hard-code it too)
FAST_SIGMOID_SLOPE = 25.0
#: ``alpha`` of the arctan surrogate (snnTorch's default; the C++ kernels use ``pi * alpha / 2 = pi``)
ATAN_ALPHA = 2.0


@dataclass(frozen=True)
class Surrogate:
    """One surrogate gradient of the Heaviside spike ``S = H(x)``, ``x = U / V_th - 1``.

    Attributes:
        name: the name layers select it by (``surrogate=``).
        kernel_id: the id the C++ kernels take for it (``surr<T, ID>`` in ``fused_cell.cpp``); unique.
        derivative: ``derivative(x, gamma)``: ``dS/dx`` at ``x`` (any shape; a new tensor of the same
            shape and dtype), equal to snnTorch's backward of ``build(gamma)``.
        build: ``build(gamma)``: the snnTorch spike function (``x`` of any shape to spikes in {0, 1},
            with this surrogate as its gradient). ``gamma`` is read by the triangle only.
    """

    name: str
    kernel_id: int
    derivative: Callable[[Tensor, float], Tensor]
    build: Callable[[float], SpikeFn]


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
    return grad_input * _triangular_derivative(input_, gamma)


def _triangular_derivative(x: Tensor, gamma: float) -> Tensor:
    """``gamma * max(0, 1 - |x|)``."""
    return (1.0 - x.abs()).clamp_(min=0.0).mul_(gamma)


def _fast_sigmoid(gamma: float) -> SpikeFn:
    """snnTorch's fast sigmoid with slope :data:`FAST_SIGMOID_SLOPE`; ``gamma`` unused."""
    return _snn_surrogate.fast_sigmoid(slope=FAST_SIGMOID_SLOPE)


def _fast_sigmoid_derivative(x: Tensor, gamma: float) -> Tensor:
    """``1 / (k |x| + 1)^2``, the operations of snnTorch's ``FastSigmoid.backward``; ``gamma`` unused."""
    return 1.0 / (x.abs() * FAST_SIGMOID_SLOPE + 1.0).pow_(2)


def _atan(gamma: float) -> SpikeFn:
    """snnTorch's arctan with :data:`ATAN_ALPHA`; ``gamma`` unused."""
    return _snn_surrogate.atan(alpha=ATAN_ALPHA)


def _atan_derivative(x: Tensor, gamma: float) -> Tensor:
    """``(alpha / 2) / (1 + (pi alpha x / 2)^2)``, the operations of snnTorch's ``ATan.backward``;
    ``gamma`` unused."""
    return (ATAN_ALPHA / 2) / (x * (math.pi / 2 * ATAN_ALPHA)).pow_(2).add_(1.0)


def _straight_through(gamma: float) -> SpikeFn:
    """snnTorch's straight-through estimator (gradient passed unchanged); ``gamma`` unused."""
    return _snn_surrogate.straight_through_estimator()


def _straight_through_derivative(x: Tensor, gamma: float) -> Tensor:
    """``1`` everywhere; ``gamma`` unused."""
    return torch.ones_like(x)


#: every surrogate, by name; :data:`SURROGATES` lists the names in kernel-id order
REGISTRY: dict[str, Surrogate] = {
    s.name: s
    for s in (
        Surrogate("triangular", 0, _triangular_derivative, triangular),
        Surrogate("fast_sigmoid", 1, _fast_sigmoid_derivative, _fast_sigmoid),
        Surrogate("atan", 2, _atan_derivative, _atan),
        Surrogate("straight_through", 3, _straight_through_derivative, _straight_through),
    )
}

#: Surrogate names accepted by :func:`build_surrogate` (and by layers' ``surrogate=``).
SURROGATES: tuple[str, ...] = tuple(REGISTRY)


def get_surrogate(name: str) -> Surrogate:
    """The registry entry called ``name``.

    Raises:
        ValueError: unknown name (the message lists the allowed ones).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; allowed: {', '.join(SURROGATES)}") from None


def surrogate_derivative(x: Tensor, name: str, gamma: float) -> Tensor:
    """``dS/dx`` of the surrogate called ``name`` at the normalised membrane ``x`` (any shape).

    Args:
        x: ``U / V_th - 1``, any shape.
        name: one of :data:`SURROGATES`.
        gamma: height of the triangle (ignored by the others).

    Returns:
        A new tensor shaped like ``x``: what snnTorch's backward of ``build_surrogate(name, gamma)``
        multiplies the incoming gradient by.

    Raises:
        ValueError: unknown name.
    """
    return get_surrogate(name).derivative(x, gamma)


def build_surrogate(name: str = "triangular", gamma: float = 1.0) -> SpikeFn:
    """Return the spike function called ``name``.

    Args:
        name: one of :data:`SURROGATES`. ``fast_sigmoid`` and ``atan`` are snnTorch's own
            (slope ``25`` / ``alpha = 2``), ``straight_through`` passes gradients unchanged.
        gamma: height of the triangular surrogate (ignored by the others), ``> 0``.

    Raises:
        ValueError: unknown name or non-positive gamma.
    """
    entry = get_surrogate(name)
    if not gamma > 0:
        raise ValueError(f"surrogate gamma must be > 0, got {gamma}")
    return entry.build(gamma)
