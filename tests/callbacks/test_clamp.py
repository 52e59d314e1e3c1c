"""ParameterClamp: Loihi's weight/bias range, applied after every optimiser step."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from snnlstm.nn.settings import LSTMSettings
from snnlstm.callbacks import ANNToSNNConversion, ParameterClamp
from snnlstm.models import SequenceClassifier
from tests.conftest import make_trainer


class AfterStep(Callback):
    """Largest |parameter| of the LSTM weights and of the head after each batch."""

    def __init__(self) -> None:
        self.lstm: list[float] = []
        self.head: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.lstm.append(max(p.abs().max().item() for n, p in pl_module.named_parameters() if n.startswith("lstm.weight")))
        self.head.append(max(p.abs().max().item() for n, p in pl_module.named_parameters() if n.startswith("head")))


def _model() -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(input_size=4, num_classes=2, lr=0.5, layer=LSTMSettings(hidden_size=8, cell="modified"))  # huge steps


@pytest.mark.parametrize(
    ("include", "clamped"),
    [(None, {"lstm", "head"}), (["^lstm\\."], {"lstm"})],
    ids=["every-weight", "lstm-only"],
)
def test_parameters_stay_in_range_after_every_step(tmp_path, tiny_data, include, clamped: set) -> None:
    record = AfterStep()
    model = _model()
    make_trainer(tmp_path, max_epochs=1, callbacks=[ParameterClamp(-0.25, 0.25, include=include), record]).fit(model, tiny_data)
    assert max(record.lstm) <= 0.25
    assert (max(record.head) <= 0.25) == ("head" in clamped)


def test_thresholds_are_never_clamped(tmp_path, tiny_data) -> None:
    model = SequenceClassifier(input_size=4, num_classes=2, layer=LSTMSettings(hidden_size=8))  # thresholds V_sig = 4
    callbacks = [ANNToSNNConversion(epoch=0), ParameterClamp()]
    make_trainer(tmp_path, max_epochs=1, callbacks=callbacks).fit(model, tiny_data)
    assert model.lstm.mode == "snn"
    assert model.lstm.neurons[0].f.threshold.item() > 1.0
    assert max(p.abs().max().item() for n, p in model.named_parameters() if "neurons" not in n) <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"min_value": 1.0, "max_value": -1.0}, "max_value > min_value"), ({"include": ["("]}, "regular expression")],
    ids=["empty-range", "bad-regex"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ParameterClamp(**kwargs)


def test_pattern_matching_nothing_is_reported(tmp_path, tiny_data) -> None:
    with pytest.raises(ValueError, match="no parameter of SequenceClassifier matches"):
        make_trainer(tmp_path, max_epochs=1, callbacks=[ParameterClamp(include=["decoder"])]).fit(_model(), tiny_data)
