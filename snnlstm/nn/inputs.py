"""Input checks and padding helpers of :class:`snnlstm.nn.lstm.SpikingLSTM` (clear errors, not deep traces).

Value checks never synchronise with an accelerator: a check that reads tensor values (NaN inputs,
padding lengths) runs on the host, and raises a ``ValueError`` at once, only where the values are on the
host already (CPU tensors in eager mode). On any other device, and while ``torch.compile`` traces, the
same condition becomes a device-side assertion (``torch._assert_async``): no host synchronisation and no
graph break, but a violation surfaces asynchronously, at the next synchronisation, as a device-side
assert error (on CUDA the context is unusable afterwards; ``CUDA_LAUNCH_BLOCKING=1`` pins it to the
forward call). Shape checks read only metadata and raise at once everywhere.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

#: dtypes in which spike decisions are not kept
HALF_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)


def reads_host(t: Tensor) -> bool:
    """Whether a value check of ``t`` may read its values on the host: ``t`` is on the CPU (no device
    synchronisation) and ``torch.compile`` is not tracing (a data-dependent branch breaks the graph)."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def check_condition(ok: Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` unless the 0-dim boolean ``ok`` holds, without synchronising.

    On the host (:func:`reads_host`) the check is immediate; elsewhere it is ``torch._assert_async``:
    it queues a device-side assertion and returns at once (the error comes at the next
    synchronisation, as a ``RuntimeError`` of the device, without ``message`` on CUDA).

    Raises:
        ValueError: ``ok`` is false, on the host.
        RuntimeError: ``ok`` is false in a ``torch.compile`` graph on the CPU (``torch._assert_async``).
    """
    if reads_host(ok):
        if not bool(ok):
            raise ValueError(message)
    else:
        torch._assert_async(ok, message)


def check_finite(x: Tensor, message: str) -> None:
    """``ValueError(message)`` when ``x`` holds a NaN or an infinity (see :func:`check_condition`: a
    device-side assertion, no host synchronisation, on a device)."""
    check_condition(torch.isfinite(x).all(), message)


def check_input(
    x: Tensor,
    state: tuple[Tensor, Tensor] | None,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    timesteps: int,
    batch_first: bool,
    mode: str,
) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the problem when ``x`` or ``state`` do not fit the layer.

    Args:
        x: ``[B, N, F]`` (``[N, B, F]`` unless ``batch_first``).
        state: optional ``(h0, c0)``, each ``[L, B, H]``, or in SNN mode ``[L, T, B, H]``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"SpikingLSTM expects a tensor input, got {type(x).__name__} (PackedSequence is not supported)")
    layout = "[batch, time, features]" if batch_first else "[time, batch, features]"
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"SpikingLSTM expects input of shape {layout} with features={input_size}, got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"SpikingLSTM got an empty input of shape {tuple(x.shape)}")
    check_finite(x, "SpikingLSTM input contains NaN or infinite values; clean or impute the data first")
    if state is None:
        return
    batch = x.shape[0] if batch_first else x.shape[1]
    want = (num_layers, batch, hidden_size)
    per_step = (num_layers, timesteps, batch, hidden_size)
    for name, t in zip(("h0", "c0"), state):
        if tuple(t.shape) == per_step and mode == "snn":
            continue
        if tuple(t.shape) != want:
            also = f" or, in SNN mode, {per_step} (a step_state)" if mode == "snn" else ""
            raise ValueError(f"initial state {name} must have shape {want}{also}, got {tuple(t.shape)}")
    if state[0].dim() != state[1].dim():
        raise ValueError(
            f"h0 and c0 must both be [L, B, H] or both [L, T, B, H], got {tuple(state[0].shape)} and {tuple(state[1].shape)}"
        )


def check_precision(mode: str, dtype: torch.dtype) -> None:
    """Refuse SNN/hybrid mode on a module cast wholly to half precision (autocast is the way).

    Raises:
        TypeError: ``mode`` is not ``"ann"`` and ``dtype`` is float16/bfloat16.
    """
    if mode != "ann" and dtype in HALF_DTYPES:
        raise TypeError(
            f"SpikingLSTM in {mode.upper()} mode needs float32/float64 weights, got {dtype}: spike decisions "
            "in half precision flip. Keep the module in float32 and train with autocast "
            "(Trainer(precision='bf16-mixed') or torch.autocast)"
        )


def check_lengths(x: Tensor, lengths: Tensor | Sequence[int], batch_first: bool) -> Tensor:
    """Validate the padding lengths of ``x``: ``[B]`` integers in ``[1, N]``.

    Args:
        x: the layer input ``[B, N, F]`` (``[N, B, F]`` unless ``batch_first``).
        lengths: a tensor or a sequence of ints (as ``pack_padded_sequence`` takes them: usually on the CPU).
        batch_first: layout of ``x``.

    Returns:
        ``lengths`` as a long tensor on the device it came on (a sequence: the CPU). It is not moved to
        ``x``'s device here: the torch LSTM kernel packs sequences with host lengths, so a CPU tensor is
        kept for it and the stack copies it to the device without synchronising.

    Raises:
        ValueError: wrong shape (always at once), or a value outside ``[1, N]``: at once for CPU lengths;
            for lengths on a device a device-side assertion (:func:`check_condition`), no host
            synchronisation.
    """
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else x.shape[:2]
    lengths = torch.as_tensor(lengths).long()
    if lengths.shape != (batch,):
        got = lengths.tolist() if reads_host(lengths) else f"shape {tuple(lengths.shape)}"
        raise ValueError(f"lengths must be [batch={batch}] integers in [1, {steps}], got {got}")
    if reads_host(lengths):
        if lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(f"lengths must be [batch={batch}] integers in [1, {steps}], got {lengths.tolist()}")
    else:
        ok = ((lengths >= 1) & (lengths <= steps)).all()
        check_condition(ok, f"lengths must be [batch={batch}] integers in [1, {steps}]")
    return lengths


def mask_padding(seq: Tensor, lengths: Tensor) -> Tensor:
    """Zero the padded positions of ``seq [N, ..., B, H]`` (``[N, B, H]`` or ``[N, T, B, H]``)."""
    real = torch.arange(seq.shape[0], device=seq.device).unsqueeze(1) < lengths.unsqueeze(0)  # [N, B]
    shape = (seq.shape[0],) + (1,) * (seq.dim() - 3) + (seq.shape[-2], 1)
    return seq * real.view(shape).to(seq.dtype)
