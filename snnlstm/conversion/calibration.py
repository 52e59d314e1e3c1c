"""Threshold calibration for converting standard (sigmoid/tanh) LSTMs to spiking ones.

A hard-activation source LSTM gives the spiking thresholds directly (``V_sig``, ``V_tanh±``). For a
standard sigmoid/tanh source the conversion callback first observes the gate pre-activations on a
few training batches (:class:`PreactivationHistogram`, a torchmetrics ``Metric`` whose histograms
are summed across processes under DDP, so every rank fits the same thresholds) and then fits, per
layer and gate, the hard activation closest to the source activation under that distribution
(:func:`fit_thresholds`)::

    V_sig = argmin_V  sum_z p(z) (sigmoid(z) - clip(z/V + 1/2, 0, 1))^2
    V+    = argmin_V  sum_{z>0} p(z) (tanh(z) - clip(z/V, 0, 1))^2      (V- likewise on z < 0)

:class:`Calibrator` attaches one histogram per layer and fits all of them; the callback feeds it
training batches while the model keeps training, :func:`calibrate` runs given batches through the
model (evaluation mode, no gradients) for :func:`snnlstm.conversion.convert` and
:func:`snnlstm.conversion.spiking`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from ..functional.activations import hard_sigmoid
from ..nn.lstm import SpikingLSTM

#: ``forward(module, batch)``: runs one calibration batch through the module
CalibrationForward = Callable[[nn.Module, Any], Any]


class CalibrationError(ValueError):
    """A sigmoid/tanh layer has to be calibrated before it can spike, and no usable calibration data was given."""

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


class Calibrator:
    """Pre-activation histograms of several layers, then their fitted thresholds.

    Args:
        layers: name -> layer to calibrate (each in ANN mode while it is observed).
        bins: histogram bins.
        value_range: histogram half-range.

    Attributes:
        batches: forward passes observed so far (counted by the caller through :meth:`count`).
    """

    def __init__(self, layers: Mapping[str, SpikingLSTM], bins: int = 1024, value_range: float = 16.0) -> None:
        self.layers = dict(layers)
        self.observers = {name: PreactivationHistogram(layer.num_layers, bins, value_range) for name, layer in self.layers.items()}
        self.batches = 0

    def attach(self) -> None:
        """Start observing: every layer's ANN forward feeds its histogram."""
        for name, layer in self.layers.items():
            device = next(layer.parameters()).device
            self.observers[name] = self.observers[name].to(device)
            layer.calibration_observer = self.observers[name]

    def detach(self) -> None:
        """Stop observing (the histograms are kept)."""
        for layer in self.layers.values():
            layer.calibration_observer = None

    def count(self) -> None:
        """Record one observed batch."""
        self.batches += 1

    def fit(self) -> dict[str, list[dict[str, float]]]:
        """Detach and fit: name -> per LSTM layer, :func:`fit_thresholds`' result. Histograms are summed
        across processes first (under DDP every rank fits the same values).

        Raises:
            CalibrationError: a layer saw no pre-activation (it did not run in ANN mode).
        """
        self.detach()
        fitted = {}
        for name, layer in self.layers.items():
            observer = self.observers[name]
            hist = observer.compute()
            empty = [k for k in range(layer.num_layers) if float(hist[k].sum()) == 0.0]
            if empty:
                raise CalibrationError(
                    f"layer {name!r} saw no pre-activations in LSTM layer(s) {empty} while calibrating: it must run "
                    f"in ANN mode on the calibration batches (mode is {layer.mode!r})"
                )
            fitted[name] = [fit_thresholds(hist[k], observer.centers()) for k in range(layer.num_layers)]
        return fitted


def default_forward(module: nn.Module, batch: Any) -> Any:
    """Run ``module`` on a batch's inputs: ``batch[0]`` of a tuple/list batch (``(inputs, targets)``),
    else the batch itself, moved to the module's device."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if isinstance(x, Tensor):
        x = x.to(next(module.parameters()).device)
    return module(x)


def calibrate(
    module: nn.Module,
    layers: Mapping[str, SpikingLSTM],
    batches: Iterable[Any],
    forward: CalibrationForward | None = None,
    max_batches: int | None = None,
    bins: int = 1024,
    value_range: float = 16.0,
) -> dict[str, list[dict[str, float]]]:
    """Fit the thresholds of ``layers`` on ``batches`` run through ``module`` (evaluation mode, no gradients).

    Args:
        module: the model that contains ``layers``.
        layers: name -> standard-activation layer in ANN mode.
        batches: calibration batches (a few training batches).
        forward: ``forward(module, batch)`` (default :func:`default_forward`: ``module(batch[0])``).
        max_batches: use at most this many batches.
        bins, value_range: histogram resolution.

    Returns:
        name -> per LSTM layer, the fitted thresholds.

    Raises:
        CalibrationError: no batch, or a layer that saw nothing.
    """
    run = forward or default_forward
    calibrator = Calibrator(layers, bins, value_range)
    was_training = module.training
    module.eval()
    calibrator.attach()
    try:
        with torch.no_grad():
            for batch in batches:
                if max_batches is not None and calibrator.batches >= max_batches:
                    break
                run(module, batch)
                calibrator.count()
    finally:
        calibrator.detach()
        module.train(was_training)
    if calibrator.batches == 0:
        raise CalibrationError(f"the calibration data gave no batch: layers {sorted(layers)} cannot be calibrated")
    return calibrator.fit()
