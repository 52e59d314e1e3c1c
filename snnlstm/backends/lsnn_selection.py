"""Which implementation runs an :class:`~snnlstm.nn.lsnn.LSNN` layer: chosen once, explicitly.

The LSNN layer asks for a backend by name (``backend=`` in its constructor), with the names and the
error of :mod:`snnlstm.backends.selection`:

* ``"cpp"``: the fused C++ time loop (:mod:`snnlstm.backends.fused_lsnn`, kernel ``"cpp-fused"``):
  CPU, float32/float64, the ``ahp`` neuron form with the triangular surrogate, ``schedule="fused"``,
  a C++ compiler.
* ``"torch"``: the eager Python loop of :func:`~snnlstm.functional.ahp.ahp_step` /
  :func:`~snnlstm.functional.ahp.alif_step` (kernel ``"torch-eager"``), on any device and dtype,
  every neuron form and surrogate.
* ``"auto"`` (default): ``"cpp"`` where it can run, else ``"torch"``, with the reason.

``schedule="eager"`` (the LSNN's older switch, still read from configs and code) asks for the torch
loop: ``"auto"`` resolves to it and says so, an explicit ``"cpp"`` is refused.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from ..kernels import build
from .selection import BackendError, Resolved, cpp_or_torch

#: the implementations a resolved LSNN backend runs
LSNN_KERNELS: tuple[str, ...] = ("cpp-fused", "torch-eager")
#: the one surrogate the C++ LSNN kernels differentiate
LSNN_CPP_SURROGATES: tuple[str, ...] = ("triangular",)

__all__ = ["LSNN_CPP_SURROGATES", "LSNN_KERNELS", "BackendError", "LSNNOptions", "Resolved", "lsnn_cpp_obstacle", "resolve_lsnn"]


class LSNNOptions(NamedTuple):
    """What the LSNN's choice depends on besides the device and dtype (read off the layer).

    Attributes:
        neuron_form: ``"ahp"`` or ``"alif"``.
        surrogate: surrogate gradient name of the neurons.
        schedule: ``"fused"`` or ``"eager"``.
    """

    neuron_form: str
    surrogate: str
    schedule: str


def lsnn_cpp_obstacle(device: torch.device, dtype: torch.dtype, s: LSNNOptions) -> str | None:
    """Why the C++ LSNN kernels cannot run the layer, or None when they can.

    Builds the kernels on first call (cached by torch; about a minute) only when nothing else rules
    them out.

    Args:
        device: the layer's device.
        dtype: the layer's parameter dtype.
        s: the layer's settings.

    Returns:
        The obstacle in words, or None.
    """
    if device.type != "cpu":
        return f"the C++ LSNN kernels run on the CPU only and the layer is on {device}"
    if dtype not in (torch.float32, torch.float64):
        return f"the C++ LSNN kernels take float32/float64 and the layer is {str(dtype).removeprefix('torch.')}"
    if s.schedule != "fused":
        return f"schedule={s.schedule!r} runs the eager Python loop; the C++ kernels run schedule='fused'"
    if s.neuron_form != "ahp":
        return f"the C++ LSNN kernels run neuron_form='ahp' only, not {s.neuron_form!r}"
    if s.surrogate not in LSNN_CPP_SURROGATES:
        return f"the C++ LSNN kernels have the triangular surrogate only, not {s.surrogate!r}"
    if build.fused_cell_kernels() is None:
        return "the C++ kernels are not built (SNNLSTM_NO_CPP is set, or no C++ compiler/ninja)"
    return None


def resolve_lsnn(request: str, device: torch.device, dtype: torch.dtype, settings: LSNNOptions) -> Resolved:
    """Choose the implementation that runs an LSNN layer.

    Args:
        request: ``"auto"``, ``"cpp"`` or ``"torch"``.
        device: the layer's device.
        dtype: the layer's parameter dtype.
        settings: the layer's settings.

    Returns:
        :class:`~snnlstm.backends.selection.Resolved`: ``("cpp", "cpp-fused", "")``, or
        ``("torch", "torch-eager", reason)`` with the obstacle as the reason under ``"auto"`` (empty
        when ``"torch"`` was asked for).

    Raises:
        ValueError: ``request`` is not a backend name (the message lists them).
        BackendError: ``request="cpp"`` where the C++ kernels cannot run, naming the obstacle.
    """
    obstacle = functools.partial(lsnn_cpp_obstacle, device, dtype, settings)
    return cpp_or_torch(request, obstacle, "cpp-fused", "torch-eager", "run this LSNN layer")
