"""TimestepSweep and SpikeRaster with a real Trainer on tiny data, and through the real CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.callbacks import SpikeRaster, TimestepSweep
from snnlstm.cli import cli_main
from snnlstm.models import SequenceClassifier
from snnlstm.evaluation.sweep import SWEEP_COLUMNS, format_sweep_table, plot_sweep_panels, timestep_sweep
from tests.conftest import TinySequences, make_trainer
from tests.wandb_utils import read_wandb_offline


def _trained(tmp_path: Path, data: TinySequences, mode: str = "ann", cell: str = "lstm") -> SequenceClassifier:
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, num_classes=2, seq_len=6, lr=0.02, layer=LSTMSettings(hidden_size=8, mode=mode, cell=cell))
    make_trainer(tmp_path, max_epochs=3).fit(model, data)
    return model


def test_sweep_after_test_writes_csv_png_and_restores_the_model(tmp_path: Path, tiny_data: TinySequences) -> None:
    model = _trained(tmp_path, tiny_data)
    sweep = TimestepSweep(timesteps=[1, 2, 4], bias_shifts=[False, True], out_dir=str(tmp_path / "sweep"))
    make_trainer(tmp_path, callbacks=[sweep]).test(model, tiny_data, verbose=False)
    assert model.lstm.mode == "ann" and model.lstm.timesteps == 2  # put back as it was
    assert [(r.bias_shift, r.timesteps) for r in sweep.rows] == [(s, t) for s in (False, True) for t in (1, 2, 4)]
    assert {r.stage for r in sweep.rows} == {"converted"}  # an ANN-mode model: conversion-only accuracy
    assert sweep.ann_accuracy is not None and sweep.ann_accuracy > 60.0  # learnt something
    for r in sweep.rows:
        assert 0.0 <= r.accuracy <= 100.0 and 0.0 < r.firing_rate < 1.0 and r.energy_ratio > 0
        assert r.latency_pipelined == r.timesteps + 6 - 1 and r.latency_sequential == r.timesteps * 6
    with open(sweep.files["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == SWEEP_COLUMNS and table[0]["mode"] == "ann" and len(table) == 7
    assert float(table[1]["accuracy"]) == pytest.approx(sweep.rows[0].accuracy, abs=1e-3)
    png = sweep.files["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_conversion_only_accuracy_rises_with_timesteps(tmp_path: Path, tiny_data: TinySequences) -> None:
    """The conversion-only curve approaches the ANN as T grows (hard activations are the T->inf limit)."""
    model = _trained(tmp_path, tiny_data)
    sweep = TimestepSweep(timesteps=[1, 64], out_dir=str(tmp_path / "s"))
    make_trainer(tmp_path, callbacks=[sweep]).test(model, tiny_data, verbose=False)
    low, high = sweep.rows
    assert abs(high.accuracy - sweep.ann_accuracy) <= abs(low.accuracy - sweep.ann_accuracy)
    assert abs(high.accuracy - sweep.ann_accuracy) <= 10.0


def test_hybrid_sweep_of_a_modified_cell(tmp_path: Path, tiny_data: TinySequences) -> None:
    """Ponghiran & Roy's test-time switch over T: accuracy approaches the non-spiking model as T grows."""
    model = _trained(tmp_path, tiny_data, cell="modified")
    sweep = TimestepSweep(timesteps=[2, 256], mode="hybrid", out_dir=str(tmp_path / "h"))
    make_trainer(tmp_path, callbacks=[sweep]).test(model, tiny_data, verbose=False)
    low, high = sweep.rows
    assert (low.mode, low.encoding, low.bias_shift) == ("hybrid", "generator", False)
    # (randn inputs beyond [-1, 1] saturate the generator, so the limit is not exactly the ANN here)
    assert abs(high.accuracy - sweep.ann_accuracy) < abs(low.accuracy - sweep.ann_accuracy)
    assert high.latency_sequential == 256 * 6 and 0.0 < high.firing_rate < 1.0
    assert model.lstm.mode == "ann"  # put back


def test_sweep_of_a_trained_snn_is_labelled_trained(tmp_path: Path, tiny_data: TinySequences) -> None:
    model = _trained(tmp_path, tiny_data, mode="snn")
    rows, ann = timestep_sweep(model, tiny_data.test_dataloader(), 2, [1, 2], 6, reference=False)
    assert ann is None and [(r.stage, r.timesteps) for r in rows] == [("trained", 1), ("trained", 2)]
    assert "trained" in format_sweep_table(rows)


def test_sweep_panels_plot(tmp_path: Path, tiny_data: TinySequences) -> None:
    model = _trained(tmp_path, tiny_data)
    converted, ann = timestep_sweep(model, tiny_data.test_dataloader(), 2, [1, 2], 6, encodings=["direct", "poisson"])
    png = plot_sweep_panels({"conversion only": converted, "other": converted[:2]}, tmp_path / "p.png", ann, suptitle="x")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="at least one panel"):
        plot_sweep_panels({}, tmp_path / "q.png")


def test_spike_raster_of_one_sample(tmp_path: Path, tiny_data: TinySequences) -> None:
    model = _trained(tmp_path, tiny_data, mode="snn")
    raster = SpikeRaster(sample_index=3, out_dir=str(tmp_path / "raster"))
    make_trainer(tmp_path, callbacks=[raster]).test(model, tiny_data, verbose=False)
    assert [f.name for f in raster.files] == ["raster_l0.png", "rates.png"]
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in raster.files)
    assert set(raster.rates) == {f"l0.{g}" for g in ("i", "f", "o", "g", "tanh_c", "h")}
    assert all(0.0 <= r <= 1.0 for r in raster.rates.values())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(timesteps=[]), "at least one"),
        (dict(timesteps=[0]), r"timesteps .* >= 1, got 0"),
        (dict(encodings=["latency"]), "latency"),
        (dict(mode="rate"), "unknown sweep mode 'rate'; allowed: snn, hybrid"),
        (dict(mode="hybrid", encodings=["poisson"]), "own input spike generator"),
    ],
    ids=["no-T", "T0", "bad-encoding", "bad-mode", "hybrid-with-encoding"],
)
def test_sweep_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TimestepSweep(**kwargs)


def test_raster_sample_out_of_range(tmp_path: Path, tiny_data: TinySequences) -> None:
    model = _trained(tmp_path, tiny_data, mode="snn")
    with pytest.raises(ValueError, match="beyond the test set"):
        make_trainer(tmp_path, callbacks=[SpikeRaster(sample_index=10_000)]).test(model, tiny_data, verbose=False)


@pytest.mark.slow
def test_sweep_from_the_cli_logs_to_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    config = str(Path(__file__).parents[2] / "configs" / "quickstart.yaml")
    args = ["test", "--config", config, "--trainer.default_root_dir", str(tmp_path)]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    args += ["--trainer.callbacks+=snnlstm.callbacks.TimestepSweep", "--trainer.callbacks.timesteps=[1, 2]"]
    args += ["--trainer.callbacks.out_dir", str(tmp_path / "sweep")]
    cli = cli_main(args)
    sweep = next(cb for cb in cli.trainer.callbacks if isinstance(cb, TimestepSweep))
    assert [r.timesteps for r in sweep.rows] == [1, 2] and (tmp_path / "sweep" / "timestep_sweep.png").exists()
    cli.trainer.logger.experiment.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    logged = read_wandb_offline(run_dir, expect=("sweep/acc/direct/shift/T2",))
    assert logged["sweep/acc/direct/shift/T2"] == pytest.approx(sweep.rows[1].accuracy, rel=1e-6)
    assert logged["sweep/accuracy_vs_T/_type"] == "images/separated" and logged["sweep/accuracy_vs_T/count"] == 1
    assert logged["sweep/table/_type"] == "table-file" and logged["sweep/table/nrows"] == 2


def test_raster_rejects_bad_arguments_and_shapes() -> None:
    from snnlstm.nn.lstm import SpikingLSTM
    from snnlstm.evaluation.raster import record_spike_trains

    with pytest.raises(ValueError, match="sample_index must be >= 0 and max_units >= 1"):
        SpikeRaster(sample_index=-1)
    with pytest.raises(ValueError, match=r"one sequence \[N, 4\], got \(2, 6, 4\)"):
        record_spike_trains(SpikingLSTM(4, 8, mode="snn"), torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"one sequence \[N, 4\], got \(6, 3\)"):
        record_spike_trains(SpikingLSTM(4, 8, mode="snn"), torch.randn(6, 3))


class _TwoStacks(torch.nn.Module):
    """Two spiking LSTM stacks in series (like an encoder and a decoder), the second called twice."""

    def __init__(self) -> None:
        super().__init__()
        from snnlstm.nn.lstm import SpikingLSTM

        self.encoder = SpikingLSTM(4, 8, mode="snn", timesteps=2)
        self.decoder = SpikingLSTM(8, 5, num_layers=2, mode="snn", timesteps=2)
        self.head = torch.nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x).output
        self.decoder(h[:, :3])  # a second call per input (a decoder step), its operations count too
        return self.head(self.decoder(h).output[:, -1])


def test_evaluate_counts_every_stack(tiny_data: TinySequences) -> None:
    """Operations, energy and spikes are those of all stacks, per input sample."""
    from snnlstm.evaluation.sweep import evaluate
    from snnlstm.measure.energy import compute_energy_pj

    torch.manual_seed(0)
    model = _TwoStacks()
    x = tiny_data.x
    forwards = []
    for stack in (model.encoder, model.decoder):
        stack.register_stats_hook(lambda _m, stats: forwards.append(stats))
    with torch.no_grad():
        model(x)  # the same calls evaluate makes, on the whole data in one batch
    layers = [layer for stats in forwards for layer in stats]
    assert len(forwards) == 3
    ac, mac = sum(float(s.ac) for s in layers), sum(float(s.mac) for s in layers)
    ann_ac, ann_mac = sum(s.ann_ac for s in layers), sum(s.ann_mac for s in layers)
    spikes = sum(float(v) for s in layers for k, v in s.spikes.items() if k != "h")
    steps = sum(s.neuron_steps * len([k for k in s.spikes if k != "h"]) for s in layers)
    acc, stats = evaluate(model, [(x, tiny_data.y)], num_classes=2)
    n = len(x)
    assert stats["count/samples"] == n
    assert stats["synops/ac_per_sample"] == pytest.approx(ac / n, rel=1e-9)
    assert stats["synops/mac_per_sample"] == pytest.approx(mac / n, rel=1e-9)
    assert stats["energy/snn_pj_per_sample"] == pytest.approx(compute_energy_pj(mac, ac) / n, rel=1e-9)
    assert stats["energy_ratio"] == pytest.approx(compute_energy_pj(ann_mac, ann_ac) / compute_energy_pj(mac, ac), rel=1e-9)
    assert stats["rate"] == pytest.approx(spikes / steps, rel=1e-9)
    assert stats["encoder/l0.f/rate"] > 0 and "decoder/l1.i/rate" in stats  # each stack's own keys
    assert "l0.f/rate" not in stats  # ambiguous with two stacks: only under the stacks' names
    assert len(model.encoder._stats_hooks) == 1 and len(model.decoder._stats_hooks) == 1  # evaluate's removed
