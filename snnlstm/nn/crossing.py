"""Threshold-crossing spike encoder of the LSNN sequential-MNIST setup (Bellec et al. 2018; Rao,
Plank, Wild & Maass 2021/22 on Loihi).

Each input feature ``x`` gets ``levels`` thresholds ``l_k`` evenly spaced inside ``(low, high)``
(``l_k = low + (k + 1)(high - low)/(levels + 1)``) and two neurons per threshold: the *up* neuron
spikes at step ``t`` when the signal crosses ``l_k`` upwards, the *down* neuron when it crosses
downwards::

    up_k(t)   = [x(t-1) <  l_k <= x(t)]
    down_k(t) = [x(t-1) >= l_k >  x(t)]          with x(-1) = low

Optional cue steps follow the sequence: ``cue_steps`` silent steps in which ``cue_neurons`` extra
input neurons spike every step (the reference's answer period: the network reads out at its end).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .inputs import check_finite


class ThresholdCrossingEncoder(nn.Module):
    """Turn analog sequences into up/down threshold-crossing spikes, plus optional cue steps.

    Args:
        levels: thresholds per input feature (the reference: 40, so 80 input neurons for one pixel).
        low: value below every threshold (the signal's resting value, e.g. 0 for raw pixels).
        high: value above every threshold (e.g. 1 for pixels in [0, 1]).
        cue_steps: silent steps appended after the sequence (the reference: 56).
        cue_neurons: input neurons that spike at every cue step (0: the cue is silence).

    Inputs: ``x`` ``[B, N, F]`` (batch first); NaN or infinite values raise a ``ValueError`` (on a
    device: a device-side assertion, no host synchronisation; see :mod:`snnlstm.nn.inputs`).
    Outputs: spikes ``[B, N + cue_steps, 2 * levels * F + cue_neurons]`` in {0, 1}; for each feature
    ``f`` the columns ``[f * 2L, f * 2L + L)`` are its up neurons and the next ``L`` its down neurons.
    """

    def __init__(self, levels: int = 40, low: float = 0.0, high: float = 1.0, cue_steps: int = 0, cue_neurons: int = 0) -> None:
        super().__init__()
        for name, value, minimum in (("levels", levels, 1), ("cue_steps", cue_steps, 0), ("cue_neurons", cue_neurons, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not high > low:
            raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
        self.levels, self.low, self.high = levels, float(low), float(high)
        self.cue_steps, self.cue_neurons = cue_steps, cue_neurons
        step = (self.high - self.low) / (levels + 1)
        self.register_buffer("thresholds", self.low + step * torch.arange(1, levels + 1, dtype=torch.float32), persistent=False)

    def output_size(self, input_size: int) -> int:
        """Input neurons produced for ``input_size`` features."""
        return 2 * self.levels * input_size + self.cue_neurons

    def output_steps(self, seq_len: int) -> int:
        """Steps produced for a sequence of ``seq_len`` elements."""
        return seq_len + self.cue_steps

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"ThresholdCrossingEncoder expects [batch, steps, features], got shape {tuple(x.shape)}")
        check_finite(x, "ThresholdCrossingEncoder got NaN or infinite inputs")
        b, n, f = x.shape
        levels = self.thresholds.to(x.dtype)
        prev = torch.cat([x.new_full((b, 1, f), self.low), x[:, :-1]], dim=1).unsqueeze(-1)  # [B, N, F, 1]
        cur = x.unsqueeze(-1)
        up = (prev < levels) & (cur >= levels)
        down = (prev >= levels) & (cur < levels)
        spikes = torch.cat([up, down], dim=-1).to(x.dtype).reshape(b, n, 2 * self.levels * f)
        if self.cue_neurons:
            spikes = torch.cat([spikes, spikes.new_zeros(b, n, self.cue_neurons)], dim=-1)
        if self.cue_steps:
            cue = spikes.new_zeros(b, self.cue_steps, spikes.shape[-1])
            if self.cue_neurons:
                cue[..., -self.cue_neurons :] = 1.0
            spikes = torch.cat([spikes, cue], dim=1)
        return spikes

    def extra_repr(self) -> str:
        return f"levels={self.levels}, low={self.low}, high={self.high}, cue_steps={self.cue_steps}, cue_neurons={self.cue_neurons}"
