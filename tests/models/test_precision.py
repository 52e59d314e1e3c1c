"""Lightning's bf16-mixed precision: fit, convert and test (16-mixed on the CPU is bf16 in Lightning;
float16 autocast itself is tested in tests/nn/test_lstm_precision.py)."""

from __future__ import annotations

import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.callbacks import ANNToSNNConversion
from snnlstm.models import SequenceClassifier
from tests.conftest import TinySequences, make_trainer


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["hard", "standard"])
def test_mixed_precision_fit_converts_and_tests(tmp_path, activation: str) -> None:
    """bf16-mixed used to crash in ANN mode ("z, w_hh_t, h0 and c0 must share one dtype")."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, num_classes=2, layer=LSTMSettings(hidden_size=8, activation=activation))
    conversion = ANNToSNNConversion(epoch=1, timesteps=2, calibration_batches=2)
    trainer = make_trainer(tmp_path, max_epochs=2, precision="bf16-mixed", callbacks=[conversion])
    trainer.fit(model, TinySequences())
    assert model.lstm.mode == "snn"
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    result = trainer.test(model, TinySequences(), verbose=False)[0]
    assert 0.0 <= result["test/acc"] <= 1.0
