"""Tests of :class:`snnlstm.callbacks.spike_monitor.SpikeMonitor` with real Lightning Trainers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.loggers import CSVLogger, Logger
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from snnlstm.callbacks.conversion import ANNToSNNConversion
from snnlstm.callbacks.spike_monitor import SpikeMonitor, current_stage
from snnlstm.nn.compat import LSTMCompat
from snnlstm.nn.lstm import SpikingLSTM
from snnlstm.measure.metrics import spike_stats
from tests.wandb_utils import read_wandb_offline


def _data(n: int = 32, batch_size: int = 16, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    ds = TensorDataset(torch.randn(n, 6, 4, generator=g), torch.randint(0, 3, (n,), generator=g))
    return DataLoader(ds, batch_size=batch_size)


class _Classifier(L.LightningModule):
    """Minimal SpikingLSTM + linear head classifier."""

    def __init__(self, layers: int = 1) -> None:
        super().__init__()
        self.lstm = SpikingLSTM(4, 8, num_layers=layers, mode="snn", timesteps=2)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.lstm(x).output[:, -1])

    def _loss(self, batch: Any) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._loss(batch)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class _Foreign(L.LightningModule):
    """Someone else's model: nn.LSTM layers swapped for spiking LSTMCompat at its first train epoch."""

    def __init__(self, convert_itself: bool = True) -> None:
        super().__init__()
        self.convert_itself = convert_itself
        self.encoder = nn.ModuleDict({"rnn": nn.LSTM(4, 8, batch_first=True)})
        self.decoder = nn.LSTM(8, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def convert(self) -> None:
        self.encoder["rnn"] = LSTMCompat.from_torch(self.encoder["rnn"], mode="snn", timesteps=2)
        self.decoder = LSTMCompat.from_torch(self.decoder, mode="snn", timesteps=2)

    def on_train_epoch_start(self) -> None:  # runs after the callbacks' on_train_epoch_start
        if self.convert_itself and not isinstance(self.decoder, LSTMCompat):
            self.convert()

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.encoder["rnn"](x)
        h, _ = self.decoder(h)
        return self.head(h[:, -1])

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(monitor: SpikeMonitor, logger: Logger | bool = False, **kwargs: Any) -> L.Trainer:
    kwargs.setdefault("max_epochs", 1)
    kwargs.setdefault("num_sanity_val_steps", 0)
    kwargs.setdefault("log_every_n_steps", 1)
    return L.Trainer(
        accelerator="cpu",
        logger=logger,
        callbacks=[monitor],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stages": ["train", "predict"]}, "allowed: train, val, test"),
        ({"stages": []}, "allowed: train, val, test"),
        ({"e_mac_pj": 0.0}, "e_mac_pj"),
        ({"e_ac_pj": -0.9}, "e_ac_pj"),
    ],
    ids=["unknown-stage", "no-stage", "zero-mac-energy", "negative-ac-energy"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpikeMonitor(**kwargs)


def test_yaml_settable() -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(SpikeMonitor, "monitor")
    cfg = parser.parse_args(["--monitor.stages=[val, test]", "--monitor.e_mac_pj=3.1", "--monitor.log_per_gate=false"])
    monitor = SpikeMonitor(**cfg.monitor.as_dict())
    assert monitor.stages == ("val", "test") and monitor.e_mac_pj == 3.1 and not monitor.log_per_gate


# ---------------------------------------------------------------------- numbers
def test_test_rates_match_forward() -> None:
    torch.manual_seed(0)
    model = _Classifier(layers=2)
    monitor = SpikeMonitor()
    loader = _data(batch_size=32)
    _trainer(monitor).test(model, loader)
    x = loader.dataset.tensors[0]
    with torch.no_grad():
        expected = spike_stats(model.lstm(x).stats)
    got = monitor.latest["test"]
    for key in ("l0.f/rate", "l1.h/rate", "rate", "sparsity", "energy_ratio", "synops/ac_per_sample"):
        assert got[f"spikes/lstm/{key}"] == pytest.approx(expected[key].item(), rel=1e-6)
    assert got["firing_rate"] == pytest.approx(expected["rate"].item(), rel=1e-6)
    assert got["sparsity"] == pytest.approx(1 - got["firing_rate"])
    assert got["energy_ratio"] == pytest.approx(expected["energy_ratio"].item(), rel=1e-6)
    assert got["spikes/lstm/count/samples"] == 32
    assert monitor.monitored == [] and set(monitor.latest) == {"test"}  # hooks removed in teardown


def test_ann_mode_logs_ops_only() -> None:
    model = _Classifier()
    model.lstm.mode = "ann"
    monitor = SpikeMonitor(stages=["test"])
    _trainer(monitor).test(model, _data())
    got = monitor.latest["test"]
    assert got["energy_ratio"] == pytest.approx(1.0)
    assert "firing_rate" not in got and not any(k.endswith("/rate") for k in got)


def test_fit_stages_and_foreign_module(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Foreign()
    monitor = SpikeMonitor(stages=["train", "val"], log_per_gate=False)
    trainer = _trainer(monitor, CSVLogger(str(tmp_path), name="csv"), max_epochs=2, num_sanity_val_steps=1)
    trainer.fit(model, _data(), _data(n=16, seed=1))
    assert set(monitor.latest) == {"train", "val"}
    for stage in ("train", "val"):
        got = monitor.latest[stage]
        assert {"spikes/encoder.rnn/rate", "spikes/decoder/rate", "firing_rate", "sparsity", "energy_ratio"} <= set(got)
        assert not any(".f/" in k for k in got)  # log_per_gate=False
        assert got["spikes/encoder.rnn/count/samples"] == (32 if stage == "train" else 16)  # one epoch
        ann = sum(got[f"spikes/{m}/energy/ann_pj_per_sample"] for m in ("encoder.rnn", "decoder"))
        snn = sum(got[f"spikes/{m}/energy/snn_pj_per_sample"] for m in ("encoder.rnn", "decoder"))
        assert got["energy_ratio"] == pytest.approx(ann / snn, rel=1e-5)
        samples = got["spikes/decoder/count/samples"]
        assert got["energy/snn_uj"] == pytest.approx(snn * samples * 1e-6, rel=1e-5)  # both modules see every sample
        assert got["energy/ann_uj"] == pytest.approx(ann * samples * 1e-6, rel=1e-5)
        spikes = sum(got[f"spikes/{m}/count/spikes"] for m in ("encoder.rnn", "decoder"))
        steps = sum(got[f"spikes/{m}/count/neuron_steps"] for m in ("encoder.rnn", "decoder"))
        assert got["firing_rate"] == pytest.approx(spikes / steps, rel=1e-5)
    rows = list(csv.DictReader(open(Path(trainer.logger.log_dir) / "metrics.csv")))
    columns = set(rows[0])
    assert {"train/energy_ratio", "val/energy_ratio", "val/firing_rate", "train/spikes/decoder/l0/rate"} <= columns
    val_rows = [r for r in rows if r["val/energy_ratio"]]
    assert len(val_rows) == 2  # one per epoch, sanity check not logged
    # the LSTMs were swapped in by the module's own on_train_epoch_start: epoch 0 is monitored too
    assert len([r for r in rows if r["train/energy_ratio"]]) == 2
    assert float(val_rows[-1]["val/energy_ratio"]) == pytest.approx(monitor.latest["val"]["energy_ratio"], rel=1e-5)


@pytest.mark.slow
def test_with_conversion_callback(tmp_path: Path) -> None:
    """nn.LSTM layers become LSTMCompat in the converter's setup and spike from epoch 1 on."""
    torch.manual_seed(0)
    monitor = SpikeMonitor(stages=["val"])  # before the converter: its setup scan sees plain nn.LSTMs
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=CSVLogger(str(tmp_path), name="csv"),
        callbacks=[monitor, ANNToSNNConversion(epoch=1, timesteps=2, calibration_batches=1)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(_Foreign(convert_itself=False), _data(), _data(n=16, seed=1))
    assert monitor.latest["val"]["firing_rate"] > 0 and monitor.latest["val"]["energy_ratio"] != 1.0
    rows = [r for r in csv.DictReader(open(Path(trainer.logger.log_dir) / "metrics.csv")) if r["val/energy_ratio"]]
    assert len(rows) == 2
    assert float(rows[0]["val/energy_ratio"]) == pytest.approx(1.0) and rows[0]["val/firing_rate"] == ""  # ANN epoch
    assert float(rows[1]["val/firing_rate"]) > 0


@pytest.mark.slow
def test_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="t")
    monitor = SpikeMonitor()
    trainer = _trainer(monitor, logger)
    trainer.fit(_Classifier(), _data(), _data(n=16))
    logger.experiment.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    expected = ("val/energy_ratio", "val/firing_rate", "train/sparsity", "val/spikes/lstm/l0.f/rate")
    logged = read_wandb_offline(run_dir, expect=expected)
    for key in expected:
        assert key in logged
    assert logged["val/energy_ratio"] == pytest.approx(monitor.latest["val"]["energy_ratio"], rel=1e-5)
    assert logged["train/firing_rate"] == pytest.approx(monitor.latest["train"]["firing_rate"], rel=1e-5)


# ---------------------------------------------------------------------- hooks
def test_hooks_registered_and_removed() -> None:
    model = _Classifier()
    monitor = SpikeMonitor(stages=["val"])
    trainer = _trainer(monitor)
    monitor.setup(trainer, model, "validate")
    assert monitor.monitored == ["lstm"] and len(model.lstm._stats_hooks) == 1
    monitor.setup(trainer, model, "validate")  # re-scan does not register twice
    assert len(model.lstm._stats_hooks) == 1
    model.lstm = SpikingLSTM(4, 8, num_layers=2, mode="snn")  # replaced module: old hook dropped
    old = model.lstm
    monitor.on_validation_epoch_start(trainer, model)
    assert len(old._stats_hooks) == 1 and monitor._metrics["val"]["lstm"].num_layers == 2
    monitor.teardown(trainer, model, "validate")
    assert len(old._stats_hooks) == 0 and monitor.monitored == []


def test_hook_ignores_outside_loops() -> None:
    model = _Classifier()
    monitor = SpikeMonitor()
    trainer = _trainer(monitor)
    monitor.setup(trainer, model, "fit")
    assert current_stage(trainer) is None
    model(torch.randn(2, 6, 4))  # no loop running: nothing accumulated
    assert all(m.samples.item() == 0 for stage in monitor._metrics.values() for m in stage.values())
    monitor.teardown(trainer, model, "fit")


def test_validate_only_monitors_val() -> None:
    monitor = SpikeMonitor(stages=["test"])
    _trainer(monitor).validate(_Classifier(), _data())
    assert monitor.latest == {}
