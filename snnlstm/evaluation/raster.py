"""Spike trains of one input sample, per layer and gate, and their raster / firing-rate plots.

:func:`record_spike_trains` re-runs a :class:`~snnlstm.nn.lstm.SpikingLSTM` on one sequence through the
reference schedule (:func:`snnlstm.backends.reference.sequential`) with a recorder, keeping every
neuron's output at every SNN step instead of only the counts that the layer returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from ..backends.ann import cell_weights
from ..backends.reference import sequential
from ..functional.cells import SpikingCellOutput
from ..functional.encoding import poisson_encode
from ..nn.lstm import SpikingLSTM

#: gate populations recorded per layer (``h`` is the layer output ``o * S_tanh_c``)
RECORDED: tuple[str, ...] = ("i", "f", "o", "g", "tanh_c", "h")


@torch.no_grad()
def record_spike_trains(layer: SpikingLSTM, x: Tensor) -> list[dict[str, Tensor]]:
    """Outputs of every gate population at every SNN step for one sequence.

    Runs the reference schedule (:func:`snnlstm.backends.reference.sequential`) with a recorder, so the
    trains are those of the layer's own model (weights, thresholds, leaks, encoding, shift, ``clamp_c``).

    Args:
        layer: a spiking LSTM in SNN mode (or converted on the fly: ANN mode is run as SNN with its
            current thresholds).
        x: one sequence ``[N, F]`` (or ``[1, N, F]``).

    Returns:
        Per layer, gate -> ``[N * T, H]`` (row ``n * T + t``): spikes in {0, 1} for i, f, o, in
        {-1, 0, 1} for tanh_c and h; for g spikes in {-1, 0, 1}, or its analog value when g does not
        spike. Analog i likewise.

    Raises:
        ValueError: ``x`` is not one sequence of the layer's input width.
    """
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2 or x.shape[-1] != layer.input_size:
        raise ValueError(f"record_spike_trains expects one sequence [N, {layer.input_size}], got {tuple(x.shape)}")
    t_max, hid = layer.timesteps, layer.hidden_size
    layer_in = x.unsqueeze(1)  # [N, 1, F]
    direct = True
    if layer.encoding == "poisson":
        layer_in, direct = poisson_encode(layer_in, t_max), False  # [N, T, 1, F]
    recorded = []
    for k in range(layer.num_layers):
        w_ih, w_hh_t, b = cell_weights(layer, k)
        neurons = layer.neurons[k]
        p = neurons.cell_params(hid, t_max, layer.bias_shift, layer.spiking_gates, layer.activation, layer.clamp_c)
        proj = layer_in @ w_ih.t()
        if b is not None:
            proj = proj + b
        trains: dict[str, list[Tensor]] = {g: [] for g in RECORDED}

        def record(n: int, t: int, out: SpikingCellOutput) -> None:
            _, f, o = out.sig_spikes.chunk(3, dim=-1)
            for name, value in zip(RECORDED, (out.i, f, o, out.g, out.c_spikes, out.h)):
                trains[name].append(value[0])

        zero = x.new_zeros(1, hid)
        h_nt, _, _ = sequential(proj, direct, w_hh_t, zero, zero, p, neurons.f.spike_grad, t_max, record=record)
        recorded.append({g: torch.stack(v) for g, v in trains.items()})
        layer_in, direct = h_nt, False  # spikes [N, T, 1, H] into the next layer
    return recorded


def firing_rates(trains: Mapping[str, Tensor]) -> dict[str, float]:
    """Fraction of non-zero outputs per gate population of one recorded layer."""
    return {g: float(v.ne(0).float().mean()) for g, v in trains.items()}


def plot_spike_raster(
    trains: Mapping[str, Tensor], path: str | Path, timesteps: int, max_units: int = 64, title: str = ""
) -> Path:
    """PNG raster: one panel per gate, SNN steps on x (element boundaries marked), units on y.

    +1 spikes are dark, -1 spikes (ternary neurons) red; analog gates are drawn as grey levels.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(trains)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.3 * len(names) + 0.6), dpi=110, sharex=True)
    axes = [axes] if len(names) == 1 else list(axes)
    ternary = ListedColormap(["#d62728", "white", "black"])
    rates = firing_rates(trains)
    for ax, name in zip(axes, names):
        data = trains[name][:, :max_units].T.float().cpu().numpy()  # [units, steps]
        is_spikes = bool(((data == 0) | (data == 1) | (data == -1)).all())
        if is_spikes:
            ax.imshow(data, aspect="auto", interpolation="nearest", cmap=ternary, vmin=-1, vmax=1)
        else:
            ax.imshow(data, aspect="auto", interpolation="nearest", cmap="Greys", vmin=-1, vmax=1)
        rate = f"{rates[name]:.2f}" if is_spikes else "analog"
        ax.set_ylabel(f"{name}\n{rate}", rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        for boundary in range(timesteps, data.shape[1], timesteps):
            ax.axvline(boundary - 0.5, color="#1f77b4", linewidth=0.3, alpha=0.5)
    axes[-1].set_xlabel(f"SNN step (input element x T={timesteps}); label: firing rate")
    if title:
        axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_firing_rates(rates: Mapping[str, float], path: str | Path, title: str = "Firing rate per gate") -> Path:
    """PNG bar chart of per-gate firing rates (keys such as ``l0.f``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.55 * len(rates) + 1.5), 3.0), dpi=110)
    ax.bar(list(rates), list(rates.values()), color="#1f77b4")
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of neuron-steps with a spike")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
