"""Which implementation runs a :class:`~snnlstm.nn.lstm.SpikingLSTM` layer: chosen once, explicitly.

A layer asks for a backend by name (``backend=`` in its constructor):

* ``"cpp"``: the fused C++ CPU kernels (:mod:`snnlstm.kernels`): the whole non-spiking sequence
  (:mod:`snnlstm.backends.fused_ann`), the spiking T+N-1 wavefront with its hand-written backward pass
  (:mod:`snnlstm.backends.fused_snn`), the event-driven hybrid cell. CPU, float32/float64 (hybrid:
  float32), a C++ compiler; SNN mode needs ``schedule="fused"``, no ``clamp_c`` and no ``compile``.
* ``"torch"``: torch operators only, on any device torch supports: in ANN mode torch's own LSTM
  kernel (oneDNN on the CPU, cuDNN on GPUs) for standard activations without ``clamp_c``, else the
  eager loop; in SNN mode the chosen ``schedule`` (fused autograd node, pipelined or sequential
  wavefront), optionally through ``torch.compile``; the dense hybrid cell.
* ``"auto"`` (default): ``"cpp"`` where it can run and applies, else ``"torch"``; the choice and
  its reason are visible as ``layer.backend`` / ``layer.backend_reason`` and logged once.

An explicit name that cannot run raises :class:`BackendError` naming the obstacle and the fix.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from ..nn.options import check_choice
from .fused_snn import FUSED_SURROGATES

#: backend names a layer accepts
BACKENDS: tuple[str, ...] = ("auto", "cpp", "torch")
#: the implementations a resolved backend runs, per mode
KERNELS: dict[str, tuple[str, ...]] = {
    "ann": ("cpp-sequence", "torch-native", "torch-eager"),
    "snn": ("cpp-fused", "torch-fused", "torch-pipelined", "torch-sequential"),
    "hybrid": ("cpp-event", "torch-dense"),
}


class BackendError(RuntimeError):
    """The requested backend cannot run this layer here (device, dtype, option or build)."""


class LayerSettings(NamedTuple):
    """What the choice depends on besides the mode, device and dtype (read off the layer)."""

    activation: str
    schedule: str
    compile: str
    clamp_c: bool
    surrogate: str
    calibrating: bool


class Resolved(NamedTuple):
    """A resolved backend.

    Attributes:
        backend: ``"cpp"`` or ``"torch"``.
        kernel: the implementation (one of :data:`KERNELS` of the mode).
        reason: why ``"auto"`` chose it, or why it differs from the settings' default; empty if neither.
    """

    backend: str
    kernel: str
    reason: str


def check_backend(name: str) -> None:
    """Raise ``ValueError`` naming the allowed values when ``name`` is not a backend."""
    check_choice("backend", name, BACKENDS)


def cpp_or_torch(request: str, obstacle: Callable[[], str | None], cpp_kernel: str, torch_kernel: str, what: str) -> Resolved:
    """Resolve a module with one C++ and one torch kernel (the LSNN's time loop, the streamers).

    Args:
        request: ``"auto"``, ``"cpp"`` or ``"torch"``.
        obstacle: why the C++ kernel cannot run, or None; called only when C++ is in question (it may
            build the kernels).
        cpp_kernel, torch_kernel: the two kernels' names.
        what: the error's verb phrase, e.g. ``"run this LSNN layer"``.

    Returns:
        ``Resolved("cpp", cpp_kernel, "")``, or ``Resolved("torch", torch_kernel, reason)`` with the
        obstacle as the reason under ``"auto"`` (empty when ``"torch"`` was asked for).

    Raises:
        ValueError: ``request`` is not a backend name (the message lists them).
        BackendError: ``request="cpp"`` where the C++ kernel cannot run, naming the obstacle.
    """
    check_backend(request)
    if request == "torch":
        return Resolved("torch", torch_kernel, "")
    reason = obstacle()
    if reason is None:
        return Resolved("cpp", cpp_kernel, "")
    if request == "cpp":
        raise BackendError(f"backend='cpp' cannot {what}: {reason}; use backend='auto' or 'torch'")
    return Resolved("torch", torch_kernel, reason)


def cpp_obstacle(mode: str, device: torch.device, dtype: torch.dtype, s: LayerSettings) -> str | None:
    """Why the C++ kernels cannot run this layer, or None when they can.

    Builds the kernels on first call (cached by torch; about a minute).
    """
    if device.type != "cpu":
        return f"the C++ kernels run on the CPU only and the layer is on {device}"
    allowed = (torch.float32,) if mode == "hybrid" else (torch.float32, torch.float64)
    if dtype not in allowed:
        names = "/".join(str(d).removeprefix("torch.") for d in allowed)
        return f"the C++ kernels take {names} and the layer is {str(dtype).removeprefix('torch.')}"
    if s.compile != "none":
        return f"compile={s.compile!r} compiles the torch backend's step functions"
    if mode == "ann" and s.schedule != "fused":
        return f"schedule={s.schedule!r} runs the eager per-element loop in ANN mode"
    if mode == "snn":
        if s.schedule != "fused":
            return f"schedule={s.schedule!r} runs through autograd; the C++ kernels run schedule='fused'"
        if s.clamp_c:
            return "the fused spiking wavefront does not clamp c (clamp_c=True)"
        if s.surrogate not in FUSED_SURROGATES:
            return f"the C++ kernels have no derivative for surrogate {s.surrogate!r}"
    from ..kernels.build import fused_cell_kernels

    if fused_cell_kernels() is None:
        return "the C++ kernels are not built (SNNLSTM_NO_CPP is set, or no C++ compiler/ninja)"
    return None


def _torch_kernel(mode: str, s: LayerSettings) -> tuple[str, str]:
    """The torch implementation for the settings, and the reason when it is not the settings' default."""
    if mode == "hybrid":
        return "torch-dense", ""
    if mode == "ann":
        if s.calibrating:
            return "torch-eager", "a calibration observer reads every pre-activation"
        if s.schedule != "fused":
            return "torch-eager", ""
        if s.activation == "standard" and not s.clamp_c:
            return "torch-native", ""
        return "torch-eager", ""
    if s.schedule == "fused" and s.clamp_c:
        return "torch-pipelined", "the fused wavefront does not clamp c (clamp_c=True)"
    return f"torch-{s.schedule}", ""


def resolve(request: str, mode: str, device: torch.device, dtype: torch.dtype, s: LayerSettings) -> Resolved:
    """Choose the implementation that runs a layer.

    Args:
        request: ``"auto"``, ``"cpp"`` or ``"torch"``.
        mode: ``"ann"``, ``"snn"`` or ``"hybrid"``.
        device: the layer's device.
        dtype: the layer's parameter dtype.
        s: the layer's settings.

    Returns:
        :class:`Resolved`.

    Raises:
        BackendError: ``request="cpp"`` where the C++ kernels cannot run.
    """
    check_backend(request)
    if request != "torch" and not (mode == "ann" and s.calibrating):
        prefer_native = mode == "ann" and s.activation == "standard" and not s.clamp_c and s.schedule == "fused"
        if request == "cpp" or not prefer_native:
            obstacle = cpp_obstacle(mode, device, dtype, s)
            if obstacle is None:
                kernel = {"ann": "cpp-sequence", "snn": "cpp-fused", "hybrid": "cpp-event"}[mode]
                return Resolved("cpp", kernel, "")
            if request == "cpp":
                raise BackendError(f"backend='cpp' cannot run this {mode.upper()}-mode layer: {obstacle}; use backend='auto' or 'torch'")
            kernel, reason = _torch_kernel(mode, s)
            return Resolved("torch", kernel, reason or obstacle)
    kernel, reason = _torch_kernel(mode, s)
    return Resolved("torch", kernel, reason)
