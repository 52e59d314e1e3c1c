"""Spike-rate / synaptic-operation / energy monitoring of every spiking LSTM in any LightningModule."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from snnlstm.measure.energy import E_AC_PJ, E_MAC_PJ, check_energy_costs, compute_energy_pj
from snnlstm.measure.metrics import SpikeStatsMetric, sum_spike_stats
from snnlstm.measure.stats import SpikeStats, StatsSource, named_stats_sources

#: Stages a :class:`SpikeMonitor` can watch (also the prefixes of the logged keys).
MONITOR_STAGES: tuple[str, ...] = ("train", "val", "test")


def current_stage(trainer: pl.Trainer) -> str | None:
    """``"train"``, ``"val"`` or ``"test"`` for the loop the trainer is running; None otherwise
    (sanity checking, prediction, no loop)."""
    if trainer.sanity_checking:
        return None
    if trainer.training:
        return "train"
    if trainer.validating:
        return "val"
    if trainer.testing:
        return "test"
    return None


class SpikeMonitor(Callback):
    """Log firing rates, sparsity, synaptic operations and the energy ratio of every spiking LSTM.

    Every :class:`snnlstm.measure.stats.StatsSource` submodule of the LightningModule (a
    :class:`snnlstm.nn.lstm.SpikingLSTM` or :class:`snnlstm.nn.lsnn.LSNN`, found by type, so
    :class:`snnlstm.nn.lstm.LSTMCompat` layers that replaced ``nn.LSTM`` in foreign models count too)
    gets a stats hook; each forward's :data:`snnlstm.measure.stats.SpikeStats` is added to one
    :class:`snnlstm.measure.metrics.SpikeStatsMetric` per (stage, module). At the end of each train / val /
    test epoch the metrics are computed (summed over all processes), logged through
    ``pl_module.log_dict`` (so every attached logger, wandb included, receives them) and reset.

    Logged keys (``stage`` in ``train``, ``val``, ``test``; ``name`` = the module's name in
    ``pl_module.named_modules()``, e.g. ``lstm`` or ``encoder.rnn``; ``key`` as in
    :func:`snnlstm.measure.metrics._spike_stats_compute`, e.g. ``l0.f/rate``, ``rate``, ``energy_ratio``):

    * ``{stage}/spikes/{name}/{key}``
    * ``{stage}/energy_ratio``: all modules, ``sum(E_ANN) / sum(E_SNN)`` (energy-weighted mean).
    * ``{stage}/energy/snn_uj``, ``{stage}/energy/ann_uj``: the epoch's total estimated compute energy of
      all modules in µJ, and of their iso-architecture non-spiking LSTMs (divide by the number of
      inputs for a per-input figure where one input makes several forward calls, e.g. a decoder).
    * ``{stage}/firing_rate`` and ``{stage}/sparsity`` (``1 - firing_rate``): total spikes over total
      updates of all spiking gate neurons of all modules (absent while every module runs as an ANN).

    Modules are re-scanned at the start of every epoch and at its first batch, so layers swapped in later (e.g. by the
    ANN-to-SNN conversion callback) are picked up; hooks are removed in ``teardown``.

    Args:
        e_mac_pj: energy per multiply-accumulate in pJ (45 nm: 4.6).
        e_ac_pj: energy per accumulate in pJ (45 nm: 0.9).
        stages: stages to monitor, a subset of ``train``, ``val``, ``test``.
        log_per_gate: also log the per-layer per-gate keys ``l{k}.{gate}/rate|sparsity``.

    Attributes:
        latest: stage -> the numbers last logged for that stage as floats, keys without the
            ``{stage}/`` prefix (e.g. ``monitor.latest["test"]["energy_ratio"]`` after ``trainer.test``).
    """

    def __init__(
        self,
        e_mac_pj: float = E_MAC_PJ,
        e_ac_pj: float = E_AC_PJ,
        stages: Sequence[str] = MONITOR_STAGES,
        log_per_gate: bool = True,
    ) -> None:
        super().__init__()
        check_energy_costs(e_mac_pj, e_ac_pj)
        if isinstance(stages, str):
            stages = [stages]
        stages = list(dict.fromkeys(stages))
        unknown = [s for s in stages if s not in MONITOR_STAGES]
        if unknown or not stages:
            raise ValueError(
                f"unknown SpikeMonitor stage(s) {unknown}; allowed: {', '.join(MONITOR_STAGES)}"
                if unknown
                else f"SpikeMonitor needs at least one stage; allowed: {', '.join(MONITOR_STAGES)}"
            )
        self.e_mac_pj = float(e_mac_pj)
        self.e_ac_pj = float(e_ac_pj)
        self.stages: tuple[str, ...] = tuple(stages)
        self.log_per_gate = bool(log_per_gate)
        self.latest: dict[str, dict[str, float]] = {}
        self._trainer: pl.Trainer | None = None
        #: module name -> (module, hook handle)
        self._hooks: dict[str, tuple[StatsSource, RemovableHandle]] = {}
        #: stage -> module name -> metric
        self._metrics: dict[str, dict[str, SpikeStatsMetric]] = {s: {} for s in self.stages}

    # ------------------------------------------------------------------ module discovery
    @staticmethod
    def _spiking_modules(pl_module: torch.nn.Module) -> dict[str, StatsSource]:
        return named_stats_sources(pl_module)

    def _new_metric(self, module: StatsSource, device: torch.device) -> SpikeStatsMetric:
        metric = SpikeStatsMetric(module.num_layers, self.e_mac_pj, self.e_ac_pj)
        return _to_device(metric, device)

    def _scan(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Hook new spiking LSTMs, unhook vanished/replaced ones, move metrics to the module's device."""
        self._trainer = trainer
        found = self._spiking_modules(pl_module)
        for name in list(self._hooks):
            module, handle = self._hooks[name]
            if found.get(name) is not module:
                handle.remove()
                del self._hooks[name]
        for stage_metrics in self._metrics.values():
            for name in list(stage_metrics):
                if name not in found or stage_metrics[name].num_layers != found[name].num_layers:
                    del stage_metrics[name]
        for name, module in found.items():
            if name not in self._hooks:
                self._hooks[name] = (module, module.register_stats_hook(self._make_hook(name)))
            for stage_metrics in self._metrics.values():
                if name not in stage_metrics:
                    stage_metrics[name] = self._new_metric(module, pl_module.device)
                else:
                    stage_metrics[name] = _to_device(stage_metrics[name], pl_module.device)

    def _make_hook(self, name: str) -> Callable[[StatsSource, SpikeStats], None]:
        def hook(module: StatsSource, stats: SpikeStats) -> None:
            # runs inside the module's forward: only accumulate (no logging, no host sync)
            trainer = self._trainer
            stage = current_stage(trainer) if trainer is not None else None
            metric = self._metrics.get(stage, {}).get(name) if stage is not None else None
            if metric is None:
                return
            device = torch.as_tensor(stats[0].ac).device
            if metric.device != device:
                metric = self._metrics[stage][name] = _to_device(metric, device)
            metric.update(stats)

        return hook

    @property
    def monitored(self) -> list[str]:
        """Names of the spiking LSTM modules currently hooked."""
        return list(self._hooks)

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._scan(trainer, pl_module)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for _, handle in self._hooks.values():
            handle.remove()
        self._hooks.clear()
        self._metrics = {s: {} for s in self.stages}
        self._trainer = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer, pl_module)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer, pl_module)

    # a module swapped in by another hook of the same epoch start (e.g. the LightningModule's own
    # on_train_epoch_start, which runs after the callbacks') is picked up at the epoch's first batch
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self._scan(trainer, pl_module)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if batch_idx == 0:
            self._scan(trainer, pl_module)

    def on_test_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if batch_idx == 0:
            self._scan(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_stage("train", trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            for metric in self._metrics.get("val", {}).values():
                metric.reset()
            return
        self._log_stage("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_stage("test", trainer, pl_module)

    # ------------------------------------------------------------------ logging
    def _log_stage(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = self._metrics.get(stage)
        if not metrics:
            return
        values: dict[str, Tensor] = {}
        results = []
        for name, metric in metrics.items():
            # compute() is collective under DDP (every rank holds the same modules, so the same
            # metrics in the same order); a metric without updates returns {} after its sync
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")
                result = metric.compute()
            metric.reset()
            if not result:
                continue
            results.append(result)
            for key, value in result.items():
                if not self.log_per_gate and _is_per_gate(key):
                    continue
                values[f"{stage}/spikes/{name}/{key}"] = value
        totals = sum_spike_stats(results)
        if totals is None:
            return
        ann_pj = compute_energy_pj(totals.ann_mac, totals.ann_ac, self.e_mac_pj, self.e_ac_pj)
        snn_pj = compute_energy_pj(totals.mac, totals.ac, self.e_mac_pj, self.e_ac_pj)
        values[f"{stage}/energy_ratio"] = ann_pj / snn_pj
        values[f"{stage}/energy/ann_uj"] = ann_pj * 1e-6
        values[f"{stage}/energy/snn_uj"] = snn_pj * 1e-6
        if totals.spiking:
            rate = totals.spikes / totals.neuron_steps
            values[f"{stage}/firing_rate"] = rate
            values[f"{stage}/sparsity"] = 1.0 - rate
        values = {k: v.float() for k, v in values.items()}
        _log_synced(pl_module, values)
        keys = list(values)
        floats = torch.stack([values[k].detach() for k in keys]).double().cpu().tolist()
        prefix = f"{stage}/"
        self.latest[stage] = {k[len(prefix) :]: f for k, f in zip(keys, floats)}

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"latest": self.latest}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.latest = dict(state_dict.get("latest", {}))


def _log_synced(pl_module: pl.LightningModule, values: dict[str, Tensor]) -> None:
    """Log epoch-level values that are already identical on every process.

    ``SpikeStatsMetric.compute()`` has summed the states over all processes, so every rank holds the
    same numbers. ``sync_dist=False`` would make Lightning warn once per key under DDP (it cannot know
    the values are synced), and its default mean reduction would average the ranks' copies (inexact in
    floating point for world sizes that are not powers of two). ``reduce_fx="max"`` with
    ``sync_dist=True`` is the identity on rank-identical values, exact in every dtype, and keeps the
    keys in ``trainer.callback_metrics`` on every rank (usable as a ``ModelCheckpoint`` monitor), at
    the cost of one scalar all-reduce per key per epoch. (``rank_zero_only=True`` would skip the
    all-reduce but declares that only rank 0 logs, which is not the case here.)

    Args:
        pl_module: the module whose ``log_dict`` records the values.
        values: logged key -> 0-dim float tensor, the same on every process.
    """
    pl_module.log_dict(values, on_epoch=True, on_step=False, sync_dist=True, reduce_fx="max")


def _is_per_gate(key: str) -> bool:
    """True for ``l{k}.{population}/...`` keys."""
    head = key.split("/", 1)[0]
    return head.startswith("l") and "." in head and head[1 : head.index(".")].isdigit()


def _to_device(metric: SpikeStatsMetric, device: torch.device) -> SpikeStatsMetric:
    """Move a metric; MPS has no float64, so its states become float32 there."""
    device = torch.device(device)
    if device.type == "mps":
        metric.set_dtype(torch.float32)
    return metric.to(device)
