"""Input encodings of the first LSTM layer (Datta et al. 2022: direct and Poisson)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Encoding = Literal["direct", "poisson"]
ENCODINGS: tuple[str, ...] = ("direct", "poisson")


def check_encoding(encoding: str) -> None:
    """Raise ``ValueError`` naming the allowed encodings when ``encoding`` is unknown."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")


def poisson_encode(x: Tensor, timesteps: int, generator: torch.Generator | None = None) -> Tensor:
    """Signed rate (Poisson/Bernoulli) coding.

    Each value becomes ``T`` independent spikes ``sign(x) * Bernoulli(min(|x|, 1))``, so the spike
    rate equals ``|x|`` for inputs in [-1, 1] (larger magnitudes saturate at one spike per step).

    Args:
        x: analog inputs ``[N, B, F]`` (time-major).
        timesteps: ``T >= 1``.
        generator: optional RNG for reproducible spike trains.

    Returns:
        Spikes ``[N, T, B, F]`` in {-1, 0, 1}.
    """
    n, b, f = x.shape
    prob = x.abs().clamp(max=1.0).unsqueeze(1).expand(n, timesteps, b, f)
    rand = torch.rand(prob.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (rand < prob).to(x.dtype) * torch.sign(x).unsqueeze(1)
