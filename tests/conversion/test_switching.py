"""Test-time switches (eval_mode, TimestepSweep) calibrate sigmoid/tanh models, or say why they cannot."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.callbacks import TimestepSweep
from snnlstm.conversion import CalibrationError
from snnlstm.models import SequenceClassifier, Translator
from tests.conftest import make_trainer


def _standard(**kwargs) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(input_size=4, num_classes=2, seq_len=6, hidden_size=8, activation="standard", **kwargs)


class _Thresholds:
    """Records (mode, i threshold) of a layer at every forward."""

    def __init__(self, layer: torch.nn.Module) -> None:
        self.seen: list[tuple[str, float]] = []
        layer.register_forward_pre_hook(lambda m, args: self.seen.append((m.mode, float(m.neurons[0].i.threshold))))


def test_eval_mode_snn_calibrates_a_sigmoid_tanh_classifier(tmp_path, tiny_data) -> None:
    model = _standard(eval_mode="snn", eval_timesteps=3)
    probe = _Thresholds(model.lstm)
    make_trainer(tmp_path).test(model, tiny_data, verbose=False)
    batches = len(tiny_data.train_dataloader())  # 4 (< the 8 it would take)
    calibration, tested = probe.seen[:batches], probe.seen[batches:]  # training batches observed in ANN mode first
    assert {mode for mode, _ in calibration} == {"ann"} and len(tested) == len(tiny_data.test_dataloader())
    assert {mode for mode, _ in tested} == {"snn"}
    assert all(v != 4.0 for _, v in tested)  # calibrated thresholds, not the hard-sigmoid default
    assert (model.lstm.mode, model.lstm.timesteps, float(model.lstm.neurons[0].i.threshold)) == ("ann", 2, 4.0)


def test_eval_mode_snn_without_training_data_is_an_error(tmp_path, tiny_data) -> None:
    model = _standard(eval_mode="snn")
    with pytest.raises(CalibrationError, match="eval_mode='snn'.*no training data"):
        make_trainer(tmp_path).test(model, dataloaders=tiny_data.test_dataloader(), verbose=False)
    assert model.lstm.mode == "ann"


def test_a_hard_classifier_needs_no_calibration(tmp_path, tiny_data) -> None:
    model = SequenceClassifier(input_size=4, num_classes=2, eval_mode="snn", layer=LSTMSettings(hidden_size=8))
    make_trainer(tmp_path).test(model, dataloaders=tiny_data.test_dataloader(), verbose=False)
    assert model.lstm.mode == "ann"


def test_timestep_sweep_calibrates_a_sigmoid_tanh_classifier(tmp_path, tiny_data) -> None:
    model = _standard()
    probe = _Thresholds(model.lstm)
    sweep = TimestepSweep(timesteps=[1, 4], out_dir=str(tmp_path / "sweep"), calibration_batches=2)
    make_trainer(tmp_path, callbacks=[sweep]).test(model, tiny_data, verbose=False)
    spiking = [v for mode, v in probe.seen if mode == "snn"]
    assert spiking and all(v != 4.0 for v in spiking) and len(sweep.rows) == 2
    assert (model.lstm.mode, float(model.lstm.neurons[0].i.threshold)) == ("ann", 4.0)
    with pytest.raises(CalibrationError, match="TimestepSweep"):
        make_trainer(tmp_path, callbacks=[sweep]).test(model, dataloaders=tiny_data.test_dataloader(), verbose=False)
    with pytest.raises(ValueError, match="calibration_batches must be an integer >= 1"):
        TimestepSweep(calibration_batches=0)


def test_eval_mode_snn_calibrates_a_baseline_translator(tmp_path: Path) -> None:
    from tests.models.test_translator import _data

    dm = _data(tmp_path, test_subset=3)
    dm.setup("test")
    torch.manual_seed(0)
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=8, hidden_size=8, cell="baseline", beam_size=1, eval_mode="snn", eval_timesteps=2)
    probe = _Thresholds(model.net.decoder)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.test(model, datamodule=dm, verbose=False)
    tested = [v for mode, v in probe.seen if mode == "snn"]
    assert tested and all(v != 4.0 for v in tested)
    assert {layer.mode for layer in model.lstm_layers()} == {"ann"}
