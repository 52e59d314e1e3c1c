"""Test-time reports: accuracy vs SNN time steps, and spike rasters of one sample.

Both callbacks run after the regular test loop (``snnlstm test``, ``trainer.test``), write CSV/PNG
files and log them to every attached logger (images and tables to wandb). Use them from the
command line by appending them to the config's callbacks::

    snnlstm test --config configs/smnist_row.yaml --ckpt_path last.ckpt \\
        --trainer.callbacks+=snnlstm.callbacks.TimestepSweep \\
        --trainer.callbacks.timesteps='[1, 2, 4, 8, 16]'
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from snnlstm.conversion.data import trainer_calibration_data
from snnlstm.nn.lstm import spiking_layers
from snnlstm.evaluation.raster import firing_rates, plot_firing_rates, plot_spike_raster, record_spike_trains
from snnlstm.evaluation.sweep import (
    SWEEP_MODES,
    SWEEP_COLUMNS,
    SweepRow,
    check_sweep_settings,
    format_sweep_table,
    plot_sweep,
    timestep_sweep,
    write_sweep_csv,
)


def _out_dir(trainer: pl.Trainer, out_dir: str | None, name: str) -> Path:
    if out_dir is not None:
        return Path(out_dir)
    base = trainer.log_dir or trainer.default_root_dir
    return Path(base) / name


def _test_loader(trainer: pl.Trainer) -> Any:
    loaders = trainer.test_dataloaders
    if isinstance(loaders, (list, tuple)):
        loaders = loaders[0]
    if loaders is None:
        raise RuntimeError("no test dataloader: run these callbacks with `snnlstm test` / trainer.test")
    return loaders


def _data_fact(trainer: pl.Trainer, pl_module: pl.LightningModule, name: str) -> Any:
    value = getattr(trainer.datamodule, name, None) if trainer.datamodule is not None else None
    if value is None:
        value = getattr(pl_module, "hparams", {}).get(name)
    if value is None:
        raise ValueError(f"cannot tell the task's {name}: give the DataModule a `{name}` property")
    return value


class TimestepSweep(Callback):
    """After testing, evaluate the model at several SNN time steps T and report accuracy vs T.

    A model still in ANN mode is converted for the sweep (conversion-only accuracy, Datta et al.
    Fig. 3b); a converted / fine-tuned one gives Fig. 3a. With several ``encodings`` and
    ``bias_shifts`` every combination is evaluated. Writes ``timestep_sweep.csv`` and
    ``timestep_sweep.png`` (ANN accuracy as a dashed reference line), prints the table, logs
    ``sweep/acc/{encoding}/{shift|noshift}/T{T}`` metrics to every logger and the plot and table to wandb.

    Args:
        timesteps: T values, each ``>= 1``.
        encodings: input encodings to evaluate (``direct``, ``poisson``); default: the model's own.
        bias_shifts: bias-shift settings to evaluate; default: the model's own.
        reference: also evaluate the non-spiking (ANN-mode) accuracy.
        out_dir: where to write files (default ``<log_dir>/timestep_sweep``).
        mode: ``snn`` (Datta et al.'s conversion) or ``hybrid`` (Ponghiran & Roy's hybrid cell, a model
            trained with ``cell: modified``; metrics ``sweep/acc/hybrid/T{T}``).
        calibration_batches: training batches (of the trainer's DataModule) a sigmoid/tanh model in ANN
            mode is calibrated on before the ``snn`` sweep (hard-activation and trained SNN models need none).
    """

    def __init__(
        self,
        timesteps: Sequence[int] = (1, 2, 4, 8, 16),
        encodings: Sequence[str] | None = None,
        bias_shifts: Sequence[bool] | None = None,
        reference: bool = True,
        out_dir: str | None = None,
        mode: Literal["snn", "hybrid"] = "snn",
        calibration_batches: int = 8,
    ) -> None:
        super().__init__()
        if isinstance(calibration_batches, bool) or not isinstance(calibration_batches, int) or calibration_batches < 1:
            raise ValueError(f"calibration_batches must be an integer >= 1, got {calibration_batches!r}")
        check_sweep_settings(timesteps, encodings)
        if mode not in SWEEP_MODES:
            raise ValueError(f"unknown sweep mode {mode!r}; allowed: {', '.join(SWEEP_MODES)}")
        if mode == "hybrid" and (encodings or bias_shifts):
            raise ValueError("a hybrid sweep has its own input spike generator and no bias shift: leave encodings and bias_shifts unset")
        self.mode = mode
        self.timesteps = [int(t) for t in timesteps]
        self.encodings = list(encodings) if encodings else None
        self.bias_shifts = [bool(b) for b in bias_shifts] if bias_shifts is not None else None
        self.reference = reference
        self.calibration_batches = calibration_batches
        self.out_dir = out_dir
        #: set after a test run: the rows and the ANN accuracy
        self.rows: list[SweepRow] = []
        self.ann_accuracy: float | None = None
        self.files: dict[str, Path] = {}

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows, ann = timestep_sweep(
            pl_module,
            _test_loader(trainer),
            num_classes=int(_data_fact(trainer, pl_module, "num_classes")),
            timesteps=self.timesteps,
            seq_len=int(_data_fact(trainer, pl_module, "seq_len")),
            encodings=self.encodings,
            bias_shifts=self.bias_shifts,
            reference=self.reference,
            mode=self.mode,
            calibrate_with=trainer_calibration_data(trainer, self.calibration_batches, "TimestepSweep"),
            calibration_batches=self.calibration_batches,
        )
        self.rows, self.ann_accuracy = rows, ann
        metrics = {
            (
                f"sweep/acc/hybrid/T{r.timesteps}"
                if r.mode == "hybrid"
                else f"sweep/acc/{r.encoding}/{'shift' if r.bias_shift else 'noshift'}/T{r.timesteps}"
            ): r.accuracy
            for r in rows
        }
        if ann is not None:
            metrics["sweep/acc/ann"] = ann
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        if not trainer.is_global_zero:
            return
        out = _out_dir(trainer, self.out_dir, "timestep_sweep")
        self.files = {
            "csv": write_sweep_csv(rows, out / "timestep_sweep.csv", ann),
            "png": plot_sweep(rows, out / "timestep_sweep.png", ann),
        }
        print(format_sweep_table(rows, ann), flush=True)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                data = [[_cell(v) for v in r] for r in rows]
                logger.log_table(key="sweep/table", columns=list(SWEEP_COLUMNS), data=data)
                logger.log_image(key="sweep/accuracy_vs_T", images=[str(self.files["png"])])


def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


class SpikeRaster(Callback):
    """After testing, record the spike trains of one test sample and plot them.

    Writes ``raster_l{k}.png`` (one panel per gate: i, f, o, g, tanh_c, h) and ``rates.png`` (per-gate
    firing rates of that sample) for every spiking LSTM layer, and logs them to wandb.

    Args:
        sample_index: which test sample (in the test dataloader's order).
        max_units: units drawn per gate.
        out_dir: where to write files (default ``<log_dir>/spike_raster``).
    """

    def __init__(self, sample_index: int = 0, max_units: int = 64, out_dir: str | None = None) -> None:
        super().__init__()
        if sample_index < 0 or max_units < 1:
            raise ValueError(f"sample_index must be >= 0 and max_units >= 1, got {sample_index}, {max_units}")
        self.sample_index = sample_index
        self.max_units = max_units
        self.out_dir = out_dir
        self.rates: dict[str, float] = {}
        self.files: list[Path] = []

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        layers = spiking_layers(pl_module)
        if not layers:
            raise ValueError("SpikeRaster needs a model with snnlstm SpikingLSTM layers")
        x = _nth_sample(_test_loader(trainer), self.sample_index)
        lstm = layers[0]
        x = x.to(next(lstm.parameters()).device)
        if not lstm.batch_first:
            raise ValueError("SpikeRaster expects a batch_first layer")
        out = _out_dir(trainer, self.out_dir, "spike_raster")
        self.rates, self.files = {}, []
        for k, trains in enumerate(record_spike_trains(lstm, x)):
            title = f"layer {k}, test sample {self.sample_index}, T={lstm.timesteps}"
            self.files.append(plot_spike_raster(trains, out / f"raster_l{k}.png", lstm.timesteps, self.max_units, title))
            self.rates.update({f"l{k}.{g}": r for g, r in firing_rates(trains).items()})
        self.files.append(plot_firing_rates(self.rates, out / "rates.png", f"firing rates, test sample {self.sample_index}"))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="spikes/raster", images=[str(f) for f in self.files])


def _nth_sample(loader: Any, index: int) -> Any:
    seen = 0
    for batch in loader:
        x = batch[0]
        if index < seen + x.shape[0]:
            return x[index - seen]
        seen += x.shape[0]
    raise ValueError(f"sample_index {index} is beyond the test set ({seen} samples)")
