"""Evaluate one trained model at several SNN time steps T (Datta et al. 2022, Fig. 3 and Table 2).

:func:`timestep_sweep` runs a model's spiking LSTM layers at every T of a list (optionally for
several input encodings and with/without the bias shift) over a dataloader and returns one
:class:`SweepRow` per setting: accuracy, firing rate, synaptic operations, the estimated compute
energy against the iso-architecture non-spiking LSTM, and the latency in time steps of the
pipelined (T+N-1) and sequential (T*N) schedules. A model still in ANN mode is converted for the
sweep (thresholds from its hard activations, or calibrated on ``calibrate_with`` batches for a
sigmoid/tanh model): that is the paper's conversion-only curve (Fig. 3b); a fine-tuned SNN checkpoint
gives Fig. 3a. The switching goes through :func:`snnlstm.conversion.spiking`, so the layers' settings
and thresholds are restored afterwards.

:func:`write_sweep_csv`, :func:`format_sweep_table` and :func:`plot_sweep` write the result as a
CSV file, a plain-text table like the paper's and a PNG (accuracy vs T, the non-spiking accuracy as
a reference line); :func:`plot_sweep_panels` draws several sweeps side by side (Fig. 3b next to 3a).
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import nn
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import MulticlassAccuracy

from ..conversion.api import CalibrationData, spiking
from ..functional.encoding import check_encoding
from ..measure.energy import latency_steps
from ..nn.lstm import check_timesteps, spiking_layers
from ..measure.metrics import SpikeStatsMetric, model_spike_stats, sum_spike_stats
from ..measure.stats import SpikeStats, named_stats_sources

#: modes :func:`timestep_sweep` can evaluate
SWEEP_MODES: tuple[str, ...] = ("snn", "hybrid")


class SweepRow(NamedTuple):
    """One evaluated setting (accuracy in percent; NaN where not applicable, e.g. rates in ANN mode).

    ``stage`` is ``converted`` when the sweep converted an ANN-mode model (no SNN training, paper Fig. 3b)
    and ``trained`` when the model already was a trained spiking LSTM (fine-tuned or from scratch, Fig. 3a).
    """

    stage: str
    mode: str
    encoding: str
    bias_shift: bool
    timesteps: int
    accuracy: float
    firing_rate: float
    ac_per_sample: float
    mac_per_sample: float
    energy_ratio: float
    latency_pipelined: int
    latency_sequential: int


#: CSV columns of :func:`write_sweep_csv`, in order.
SWEEP_COLUMNS: tuple[str, ...] = SweepRow._fields


def check_sweep_settings(timesteps: Sequence[int], encodings: Sequence[str] | None) -> None:
    """Raise ``ValueError`` for an empty T list, a T below 1 or an unknown encoding (names the allowed)."""
    if not timesteps:
        raise ValueError("a time-step sweep needs at least one value in timesteps")
    for t in timesteps:
        check_timesteps(t)
    for enc in encodings or ():
        check_encoding(enc)


@torch.no_grad()
def evaluate(
    module: nn.Module, loader: Iterable[Any], num_classes: int, device: torch.device | str | None = None
) -> tuple[float, dict[str, float]]:
    """Accuracy (percent) and spike statistics of ``module`` over ``loader``.

    Every spiking layer stack of ``module`` (each :class:`~snnlstm.measure.stats.StatsSource`: a
    translator's encoder and decoder, two ``SpikingLSTM`` s of one classifier, ...) is hooked, so the
    operations and energy are those of the whole model.

    Args:
        module: maps inputs ``[B, N, F]`` to logits ``[B, num_classes]`` (spiking LSTM layers or an
            :class:`~snnlstm.nn.lsnn.LSNN`).
        loader: yields ``(inputs, targets)``.
        num_classes: number of classes.
        device: where to run (default: the module's parameters' device).

    Returns:
        ``(accuracy_percent, stats)``. ``stats`` (empty if the module has no spiking layer stack):

        * the model's totals over all stacks, per input sample (:func:`~snnlstm.measure.metrics.model_spike_stats`
          keys: ``rate``, ``synops/ac_per_sample``, ``energy/snn_pj_per_sample``, ``energy_ratio``, ...);
        * ``{name}/{key}`` for each stack (``name`` as in ``module.named_modules()``, ``key`` a
          :class:`~snnlstm.measure.metrics.SpikeStatsMetric` key, e.g. ``encoder/l0.f/rate``;
          its per-sample keys are per forward-call sample);
        * with a single stack, also its per-layer keys unprefixed (``l0.f/rate``).

        All are reduced across processes under DDP (torchmetrics).
    """
    sources = named_stats_sources(module)
    if device is None:
        device = next(module.parameters()).device
    accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro").to(device)
    samples = SumMetric().to(device)
    metrics = {name: SpikeStatsMetric(m.num_layers).to(device) for name, m in sources.items()}
    handles = [m.register_stats_hook(_updater(metrics[name])) for name, m in sources.items()]
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            x, y = batch[0].to(device), batch[1].to(device)
            accuracy.update(module(x), y)
            samples.update(float(x.shape[0]))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    stats = _model_stats({name: _compute(metric) for name, metric in metrics.items()}, samples.compute())
    return 100.0 * float(accuracy.compute()), stats


def _updater(metric: SpikeStatsMetric) -> Callable[[Any, SpikeStats], None]:
    """A stats hook that adds every forward's stats to ``metric``."""
    return lambda _module, stats: metric.update(stats)


def _compute(metric: SpikeStatsMetric) -> dict[str, torch.Tensor]:
    """``metric.compute()``; ``{}`` without torchmetrics' warning for a stack that never ran."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")
        return metric.compute()


def _model_stats(per_stack: Mapping[str, Mapping[str, torch.Tensor]], samples: torch.Tensor) -> dict[str, float]:
    """The keys :func:`evaluate` returns, from each stack's ``SpikeStatsMetric.compute()`` result."""
    totals = sum_spike_stats(list(per_stack.values()))
    if totals is None or float(samples) <= 0:
        return {}
    stats = {k: float(v) for k, v in model_spike_stats(totals, samples).items()}
    for name, result in per_stack.items():
        stats.update({f"{name}/{k}": float(v) for k, v in result.items()})
    if len(per_stack) == 1:
        (result,) = per_stack.values()
        stats.update({k: float(v) for k, v in result.items() if k.startswith("l")})
    return stats


def timestep_sweep(
    module: nn.Module,
    loader: Iterable[Any],
    num_classes: int,
    timesteps: Sequence[int],
    seq_len: int,
    encodings: Sequence[str] | None = None,
    bias_shifts: Sequence[bool] | None = None,
    reference: bool = True,
    mode: str = "snn",
    calibrate_with: CalibrationData = None,
    calibration_batches: int = 8,
) -> tuple[list[SweepRow], float | None]:
    """Evaluate ``module`` at every ``T`` (x encoding x bias shift) in SNN (or hybrid) mode.

    Args:
        module: a model containing :class:`SpikingLSTM` layers (ANN or SNN mode).
        loader: yields ``(inputs, targets)``.
        num_classes: classes of the task.
        timesteps: the T values, each ``>= 1``.
        seq_len: sequence length N (for the latency columns).
        encodings: input encodings to try (default: the layers' current one).
        bias_shifts: bias-shift settings to try (default: the layers' current one).
        reference: also evaluate the layers in ANN mode (the non-spiking reference accuracy).
        mode: ``"snn"`` (Datta et al.'s spiking LSTM) or ``"hybrid"`` (Ponghiran & Roy's hybrid cell;
            its rows have encoding ``"generator"``, its own input spike generator, and no bias shift,
            and ``encodings``/``bias_shifts`` must be left unset).
        calibrate_with: calibration batches (or a callable returning them) for a sigmoid/tanh model in ANN
            mode: its thresholds are calibrated once, before the first T.
        calibration_batches: use at most this many of them.

    Returns:
        ``(rows, ann_accuracy)``; ``ann_accuracy`` is None without ``reference``.

    Raises:
        ValueError: no spiking LSTM layers in ``module``, bad T, unknown encoding.
        snnlstm.conversion.CalibrationError: a sigmoid/tanh model in ANN mode and no ``calibrate_with``.
    """
    layers = spiking_layers(module)
    if not layers:
        raise ValueError("timestep_sweep needs a model with snnlstm SpikingLSTM layers (or convert it first)")
    check_sweep_settings(timesteps, encodings)
    if mode not in SWEEP_MODES:
        raise ValueError(f"unknown sweep mode {mode!r}; allowed: {', '.join(SWEEP_MODES)}")
    if mode == "hybrid" and (encodings or bias_shifts):
        raise ValueError("a hybrid sweep has its own input spike generator and no bias shift: leave encodings and bias_shifts unset")
    stage = "converted" if layers[0].mode == "ann" else "trained"
    encodings = list(encodings) if encodings else [layers[0].encoding]
    bias_shifts = list(bias_shifts) if bias_shifts is not None and len(bias_shifts) else [layers[0].bias_shift]
    rows: list[SweepRow] = []
    ann_accuracy = None
    if reference:
        with spiking(module, mode="ann"):
            ann_accuracy, _ = evaluate(module, loader, num_classes)
    settings = [(enc, shift) for enc in encodings for shift in bias_shifts] if mode == "snn" else [("generator", False)]
    # convert (and calibrate) once; each setting then only changes T, encoding and shift
    with spiking(module, mode=mode, calibrate_with=calibrate_with, calibration_batches=calibration_batches):
        for enc, shift in settings:
            for t in timesteps:
                snn = mode == "snn"
                with spiking(module, mode=None, timesteps=int(t), encoding=enc if snn else None, bias_shift=bool(shift) if snn else None):
                    acc, stats = evaluate(module, loader, num_classes)
                rows.append(
                    SweepRow(
                        stage=stage,
                        mode=mode,
                        encoding=enc,
                        bias_shift=bool(shift),
                        timesteps=int(t),
                        accuracy=acc,
                        firing_rate=stats.get("rate", math.nan),
                        ac_per_sample=stats.get("synops/ac_per_sample", math.nan),
                        mac_per_sample=stats.get("synops/mac_per_sample", math.nan),
                        energy_ratio=stats.get("energy_ratio", math.nan),
                        latency_pipelined=latency_steps(seq_len, int(t), "pipelined"),
                        latency_sequential=latency_steps(seq_len, int(t), "sequential"),
                    )
                )
    return rows, ann_accuracy


def write_sweep_csv(rows: Sequence[SweepRow], path: str | Path, ann_accuracy: float | None = None) -> Path:
    """Write ``rows`` (plus an ``ann`` row with the reference accuracy) as CSV; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(SWEEP_COLUMNS)
        if ann_accuracy is not None:
            n = rows[0].latency_pipelined - rows[0].timesteps + 1 if rows else ""
            writer.writerow(["", "ann", "", "", "", f"{ann_accuracy:.4f}", "", "", "", 1.0, n, n])
        for row in rows:
            writer.writerow([_fmt(v) for v in row])
    return path


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def format_sweep_table(rows: Sequence[SweepRow], ann_accuracy: float | None = None) -> str:
    """A plain-text table: one line per setting, like the paper's accuracy-vs-T tables."""
    header = f"{'stage':<9} {'encoding':<9} {'shift':<5} {'T':>4} {'acc %':>7} {'rate':>6} {'E_ANN/E_SNN':>11} {'T+N-1':>6} {'T*N':>6}"
    lines = [header, "-" * len(header)]
    if ann_accuracy is not None:
        lines.append(f"{'(ANN)':<9} {'':<9} {'':<5} {'-':>4} {ann_accuracy:>7.2f} {'':>6} {'1.00':>11}")
    for r in rows:
        lines.append(
            f"{r.stage:<9} {r.encoding:<9} {str(r.bias_shift).lower():<5} {r.timesteps:>4} {r.accuracy:>7.2f} "
            f"{r.firing_rate:>6.3f} {r.energy_ratio:>11.2f} {r.latency_pipelined:>6} {r.latency_sequential:>6}"
        )
    return "\n".join(lines)


def plot_sweep(
    rows: Sequence[SweepRow], path: str | Path, ann_accuracy: float | None = None, title: str = "Accuracy vs SNN time steps"
) -> Path:
    """PNG of accuracy vs T (log2 axis), one line per (stage, encoding, shift), the ANN accuracy dashed."""
    return plot_sweep_panels({title: rows}, path, ann_accuracy)


def plot_sweep_panels(
    panels: Mapping[str, Sequence[SweepRow]], path: str | Path, ann_accuracy: float | None = None, suptitle: str | None = None
) -> Path:
    """PNG with one accuracy-vs-T panel per entry of ``panels`` (title -> rows), side by side.

    E.g. ``{"conversion only": converted_rows, "conversion + SNN fine-tuning": trained_rows}`` draws the
    paper's Fig. 3b next to Fig. 3a. Each panel has its own accuracy axis, one line per (stage, encoding,
    shift) in the same colour in every panel, and the non-spiking accuracy as a dashed reference line.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("plot_sweep_panels needs at least one panel")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), dpi=120, squeeze=False)
    keys = sorted({(r.encoding, r.bias_shift) for rows in panels.values() for r in rows})
    colours = {key: f"C{k % 10}" for k, key in enumerate(keys)}
    for ax, (title, rows) in zip(axes[0], panels.items()):
        _draw_sweep(ax, rows, ann_accuracy, title, colours)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_sweep(
    ax: Any, rows: Sequence[SweepRow], ann_accuracy: float | None, title: str, colours: Mapping[tuple[str, bool], str]
) -> None:
    groups: dict[tuple[str, str, bool], list[SweepRow]] = {}
    for r in rows:
        groups.setdefault((r.stage, r.encoding, r.bias_shift), []).append(r)
    stages = {key[0] for key in groups}
    for (stage, enc, shift), group in groups.items():
        group = sorted(group, key=lambda r: r.timesteps)
        label = f"{enc}, {'bias shift' if shift else 'no shift'}" + (f", {stage}" if len(stages) > 1 else "")
        ax.plot([r.timesteps for r in group], [r.accuracy for r in group], marker="o", label=label, color=colours[(enc, shift)])
    if ann_accuracy is not None:
        ax.axhline(ann_accuracy, color="black", linestyle="--", linewidth=1, label=f"non-spiking ({ann_accuracy:.2f}%)")
    ts = sorted({r.timesteps for r in rows})
    ax.set_xscale("log", base=2)
    if ts:
        ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("SNN time steps T per input element")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def rows_as_dicts(rows: Sequence[SweepRow]) -> list[dict[str, Any]]:
    """Rows as plain dicts (for JSON, wandb tables)."""
    return [r._asdict() for r in rows]
