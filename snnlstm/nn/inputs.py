"""Input checks and padding helpers of :class:`snnlstm.nn.lstm.SpikingLSTM` (clear errors, not deep traces)."""

from __future__ import annotations

import torch
from torch import Tensor

#: dtypes in which spike decisions are not kept
HALF_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)


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
    if not torch.isfinite(x).all():
        raise ValueError("SpikingLSTM input contains NaN or infinite values; clean or impute the data first")
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


def check_lengths(x: Tensor, lengths: Tensor, batch_first: bool) -> Tensor:
    """``lengths`` as a long tensor on ``x``'s device; ``ValueError`` unless ``[B]`` integers in ``[1, N]``."""
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else x.shape[:2]
    lengths = torch.as_tensor(lengths, device=x.device).long()
    if lengths.shape != (batch,) or lengths.min() < 1 or lengths.max() > steps:
        raise ValueError(f"lengths must be [batch={batch}] integers in [1, {steps}], got {lengths.tolist()}")
    return lengths


def mask_padding(seq: Tensor, lengths: Tensor) -> Tensor:
    """Zero the padded positions of ``seq [N, ..., B, H]`` (``[N, B, H]`` or ``[N, T, B, H]``)."""
    real = torch.arange(seq.shape[0], device=seq.device).unsqueeze(1) < lengths.unsqueeze(0)  # [N, B]
    shape = (seq.shape[0],) + (1,) * (seq.dim() - 3) + (seq.shape[-2], 1)
    return seq * real.view(shape).to(seq.dtype)
