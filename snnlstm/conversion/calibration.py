"""Threshold calibration for converting standard (sigmoid/tanh) LSTMs to spiking ones.

A hard-activation source LSTM gives the spiking thresholds directly (``V_sig``, ``V_tanh±``). For a
standard sigmoid/tanh source the conversion callback first observes the gate pre-activations on a
few training batches (:class:`PreactivationHistogram`, a torchmetrics ``Metric`` whose histograms
are summed across processes under DDP, so every rank fits the same thresholds) and then fits, per
layer and gate, the hard activation closest to the source activation under that distribution
(:func:`fit_thresholds`)::

    V_sig = argmin_V  sum_z p(z) (sigmoid(z) - clip(z/V + 1/2, 0, 1))^2
    V+    = argmin_V  sum_{z>0} p(z) (tanh(z) - clip(z/V, 0, 1))^2      (V- likewise on z < 0)
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from ..functional.activations import hard_sigmoid

#: histogram rows per layer: pre-activations of i, f, o, g and the cell state c (tanh_c input)
CALIBRATED: tuple[str, ...] = ("i", "f", "o", "g", "tanh_c")


class PreactivationHistogram(Metric):
    """Histograms of gate pre-activations per layer, summed across processes.

    Args:
        num_layers: LSTM layers L.
        bins: histogram bins over ``[-value_range, value_range]`` (values outside fall in the edge bins).
        value_range: half-width of the histogram range.

    State:
        hist: ``[L, 5, bins]`` counts for (i, f, o, g, tanh_c).
    """

    full_state_update = False

    def __init__(self, num_layers: int, bins: int = 1024, value_range: float = 16.0) -> None:
        super().__init__()
        if num_layers < 1 or bins < 8 or not value_range > 0:
            raise ValueError(
                f"PreactivationHistogram needs num_layers >= 1, bins >= 8, value_range > 0; "
                f"got {num_layers}, {bins}, {value_range}"
            )
        self.bins, self.value_range = bins, float(value_range)
        self.add_state("hist", torch.zeros(num_layers, len(CALIBRATED), bins), dist_reduce_fx="sum")

    def update(self, layer: int, z: Tensor, c: Tensor) -> None:  # type: ignore[override]
        """Add one step's pre-activations.

        Args:
            layer: layer index.
            z: gate pre-activations ``[B, 4H]`` ordered (i, f, o, g).
            c: cell state ``[B, H]``.
        """
        hidden = c.shape[-1]
        rows = list(z.detach().float().reshape(-1, 4, hidden).unbind(1)) + [c.detach().float()]
        scale = self.bins / (2 * self.value_range)
        for g, values in enumerate(rows):
            idx = ((values.reshape(-1) + self.value_range) * scale).long().clamp(0, self.bins - 1)
            self.hist[layer, g] += torch.bincount(idx, minlength=self.bins).to(self.hist.dtype)

    def compute(self) -> Tensor:
        """Summed histograms ``[L, 5, bins]``."""
        return self.hist

    def centers(self) -> Tensor:
        """Bin centres ``[bins]``."""
        width = 2 * self.value_range / self.bins
        return torch.arange(self.bins, device=self.hist.device, dtype=self.hist.dtype) * width - self.value_range + width / 2


def _best(errors: Tensor, grid: Tensor) -> float:
    return float(grid[int(torch.argmin(errors))])


def fit_thresholds(hist: Tensor, centers: Tensor, grid_size: int = 400) -> dict[str, float]:
    """Fit hard-activation thresholds of one layer to its pre-activation histograms.

    Args:
        hist: ``[5, bins]`` counts for (i, f, o, g, tanh_c).
        centers: bin centres ``[bins]``.
        grid_size: candidate thresholds per search.

    Returns:
        ``{"i": V, "f": V, "o": V, "g+": V+, "g-": V-, "tanh_c+": V+, "tanh_c-": V-}``; a gate whose
        histogram is empty gets the defaults (4, 1, -1).
    """
    z = centers.double().cpu()
    sig_grid = torch.linspace(0.25, 24.0, grid_size, dtype=torch.float64)
    tanh_grid = torch.linspace(0.05, 8.0, grid_size, dtype=torch.float64)
    out: dict[str, float] = {}
    for g, name in enumerate(CALIBRATED):
        p = hist[g].double().cpu()
        if name in ("i", "f", "o"):
            if p.sum() == 0:
                out[name] = 4.0
                continue
            err = (p * (torch.sigmoid(z) - hard_sigmoid(z.unsqueeze(0), sig_grid.unsqueeze(1))) ** 2).sum(1)
            out[name] = _best(err, sig_grid)
            continue
        pos, neg = p * (z > 0), p * (z < 0)
        if pos.sum() > 0:
            err = (pos * (torch.tanh(z) - torch.clamp(z / tanh_grid.unsqueeze(1), 0, 1)) ** 2).sum(1)
            out[name + "+"] = _best(err, tanh_grid)
        else:
            out[name + "+"] = 1.0
        if neg.sum() > 0:
            err = (neg * (torch.tanh(z) - torch.clamp(z / tanh_grid.unsqueeze(1), -1, 0)) ** 2).sum(1)
            out[name + "-"] = -_best(err, tanh_grid)
        else:
            out[name + "-"] = -1.0
    return out
