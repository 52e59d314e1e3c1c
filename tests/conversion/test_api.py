"""convert(), spiking(), the recipes and the replacement of nn.LSTM layers (no Trainer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnlstm.conversion import (
    CalibrationError,
    DattaRecipe,
    HybridRecipe,
    convert,
    make_recipe,
    named_spiking_layers,
    replace_torch_lstms,
    spiking,
)
from snnlstm.nn.compat import LSTMCompat, NotConvertibleError
from snnlstm.nn.lstm import SpikingLSTM


class Net(nn.Module):
    """A foreign model: one nn.LSTM (or a given LSTM) and a head."""

    def __init__(self, lstm: nn.Module | None = None) -> None:
        super().__init__()
        self.rnn = lstm if lstm is not None else nn.LSTM(4, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rnn(x)
        return self.head((out[0] if isinstance(out, tuple) else out.output)[:, -1])


def _batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 5, 4, generator=g), torch.zeros(8, dtype=torch.long)) for _ in range(n)]


def _ours(**kwargs) -> Net:
    torch.manual_seed(0)
    return Net(SpikingLSTM(4, 6, **kwargs))


def _neurons(layer: SpikingLSTM) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in layer.state_dict().items() if k.startswith("neurons.")}


# ---------------------------------------------------------------------- convert
def test_convert_a_foreign_model_calibrates_its_sigmoid_tanh_lstm() -> None:
    torch.manual_seed(0)
    model = Net()
    weight = model.rnn.weight_ih_l0
    report = convert(model, DattaRecipe(timesteps=3), calibrate_with=_batches())
    assert isinstance(model.rnn, LSTMCompat) and model.rnn.weight_ih_l0 is weight
    assert report.replaced == ["rnn"] and report.converted == ["rnn"] and report.module is model
    assert (model.rnn.mode, model.rnn.timesteps) == ("snn", 3)
    assert report.thresholds["rnn"][0]["i.threshold"] != 4.0  # calibrated, not the hard default
    assert model(torch.randn(2, 5, 4)).shape == (2, 2)


def test_convert_refuses_to_run_a_sigmoid_tanh_lstm_uncalibrated() -> None:
    model = Net()
    with pytest.raises(CalibrationError, match=r"\['rnn'\].*sigmoid/tanh.*calibrate_with"):
        convert(model, DattaRecipe())
    assert model.rnn.mode == "ann"  # nothing half-done


def test_convert_is_idempotent_and_hard_layers_need_no_data() -> None:
    model = _ours(v_sig=3.0)
    first = convert(model, DattaRecipe(timesteps=2))
    assert first.converted == ["rnn"] and first.thresholds["rnn"][0]["f.threshold"] == 3.0
    with torch.no_grad():
        model.rnn.neurons[0].f.threshold.fill_(5.0)  # "fine-tuned"
    again = convert(model, DattaRecipe(timesteps=8))
    assert again.converted == [] and again.skipped == ["rnn"]
    assert model.rnn.timesteps == 2 and float(model.rnn.neurons[0].f.threshold) == 5.0  # left alone


def test_convert_a_bare_nn_lstm_returns_its_replacement() -> None:
    lstm = nn.LSTM(4, 6)
    report = convert(lstm, DattaRecipe(), calibrate_with=[torch.randn(5, 2, 4)])
    assert isinstance(report.module, LSTMCompat) and report.module.weight_hh_l0 is lstm.weight_hh_l0
    assert report.module.mode == "snn"


def test_hybrid_recipe_refuses_a_layer_that_is_not_a_modified_cell() -> None:
    model = nn.ModuleList([SpikingLSTM(4, 6, cell="modified"), SpikingLSTM(4, 6)])
    with pytest.raises(ValueError, match="cell='modified'"):
        convert(model, HybridRecipe(timesteps=4))
    assert [layer.mode for layer in model] == ["ann", "ann"]  # all or nothing
    model = nn.ModuleList([SpikingLSTM(4, 6, cell="modified")])
    convert(model, HybridRecipe(timesteps=4))
    assert (model[0].mode, model[0].timesteps) == ("hybrid", 4)


# ---------------------------------------------------------------------- replacing nn.LSTM layers
def test_an_aliased_lstm_is_replaced_under_every_name() -> None:
    model = Net()
    model.alias = model.rnn
    model.blocks = nn.ModuleList([model.rnn])
    names = replace_torch_lstms(model)
    assert names == ["alias", "blocks.0", "rnn"]
    assert model.rnn is model.alias is model.blocks[0] and isinstance(model.rnn, LSTMCompat)
    assert not any(isinstance(m, nn.LSTM) for m in model.modules())


class _Zeroed(nn.LSTM):
    def __init__(self) -> None:
        super().__init__(4, 6, batch_first=True)
        nn.init.zeros_(self.bias_ih_l0)


class _Doubling(nn.LSTM):
    def forward(self, x, hx=None):  # type: ignore[override]
        return super().forward(2 * x, hx)


def test_subclasses_convert_unless_they_override_forward() -> None:
    model = Net(_Zeroed())
    assert replace_torch_lstms(model) == ["rnn"] and isinstance(model.rnn, LSTMCompat)
    model = Net(_Doubling(4, 6, batch_first=True))
    model.other = nn.LSTM(4, 6)
    with pytest.raises(NotConvertibleError, match=r"'rnn' \(_Doubling\).*overrides forward"):
        replace_torch_lstms(model)
    assert type(model.other) is nn.LSTM  # checked before anything was replaced


@pytest.mark.parametrize(
    ("lstm", "match"),
    [(nn.LSTM(4, 6, bidirectional=True), "bidirectional"), (nn.LSTM(4, 6, proj_size=3), "proj_size=3")],
    ids=["bidirectional", "projection"],
)
def test_unconvertible_lstms_are_refused_by_name(lstm: nn.LSTM, match: str) -> None:
    with pytest.raises(NotConvertibleError, match=f"'rnn'.*{match}.*convert_torch_lstm=False"):
        convert(Net(lstm), DattaRecipe())


def test_inner_layers_are_named_by_their_lstmcompat() -> None:
    model = Net()
    replace_torch_lstms(model)
    assert list(named_spiking_layers(model)) == ["rnn"]


# ---------------------------------------------------------------------- spiking()
def test_spiking_restores_everything_it_changed() -> None:
    model = _ours(activation="standard", learn_leak=False, encoding="direct", bias_shift=True, timesteps=2)
    layer = model.rnn
    before, grads = _neurons(layer), [p.requires_grad for p in layer.spiking_parameters()]
    with spiking(model, timesteps=5, encoding="poisson", bias_shift=False, spiking_gates=["i", "f", "g", "o", "tanh_c"], calibrate_with=_batches()):
        assert (layer.mode, layer.timesteps, layer.encoding, layer.bias_shift) == ("snn", 5, "poisson", False)
        assert set(layer.spiking_gates) == {"i", "f", "g", "o", "tanh_c"}
        assert _neurons(layer)["neurons.0.i.threshold"] != before["neurons.0.i.threshold"]  # calibrated
        model(torch.randn(2, 5, 4))
    assert (layer.mode, layer.timesteps, layer.encoding, layer.bias_shift) == ("ann", 2, "direct", True)
    assert set(layer.spiking_gates) == {"i", "f", "o", "tanh_c"}
    assert all(torch.equal(v, before[k]) for k, v in _neurons(layer).items())
    assert [p.requires_grad for p in layer.spiking_parameters()] == grads
    assert layer.calibration_observer is None


def test_spiking_restores_after_an_error_and_nests() -> None:
    model = _ours(mode="snn", timesteps=2)
    with pytest.raises(KeyError):
        with spiking(model, mode="ann"):
            raise KeyError("boom")
    assert model.rnn.mode == "snn"
    with spiking(model, mode=None, timesteps=4):
        with spiking(model, mode="ann"):
            assert (model.rnn.mode, model.rnn.timesteps) == ("ann", 4)
        assert (model.rnn.mode, model.rnn.timesteps) == ("snn", 4)
    assert model.rnn.timesteps == 2


def test_spiking_calibrates_standard_layers_or_says_why_it_cannot() -> None:
    model = _ours(activation="standard")
    with pytest.raises(CalibrationError, match="no calibration data was given"):
        with spiking(model, timesteps=2):
            pass
    assert model.rnn.mode == "ann"
    loads = []

    def lazy():
        loads.append(1)
        return _batches()

    with spiking(_ours(), timesteps=2, calibrate_with=lazy):  # hard activations: nothing to load
        pass
    assert loads == []
    with spiking(model, timesteps=2, calibrate_with=lazy, calibration_batches=1):
        pass
    assert loads == [1]


def test_spiking_keeps_a_trained_snns_thresholds() -> None:
    model = _ours(activation="standard", mode="snn")
    with torch.no_grad():
        model.rnn.neurons[0].o.threshold.fill_(2.0)
    with spiking(model, timesteps=6):  # already spiking: no calibration needed, thresholds stay
        assert float(model.rnn.neurons[0].o.threshold) == 2.0 and model.rnn.timesteps == 6


def test_spiking_refuses_plain_lstms_and_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"\['rnn'\] would stay non-spiking"):
        with spiking(nn.ModuleDict({"rnn": nn.LSTM(4, 6), "ours": SpikingLSTM(4, 6)})):
            pass
    with pytest.raises(ValueError, match="found no snnlstm LSTM"):
        with spiking(nn.Linear(2, 2)):
            pass
    with pytest.raises(ValueError, match="unknown mode 'spiking'; allowed: None, ann, snn, hybrid"):
        with spiking(_ours(), mode="spiking"):
            pass
    with pytest.raises(ValueError, match="hybrid cell .* no encoding"):
        with spiking(_ours(cell="modified"), mode="hybrid", encoding="poisson"):
            pass


# ---------------------------------------------------------------------- recipes
@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: DattaRecipe(timesteps=0), "timesteps"),
        (lambda: DattaRecipe(encoding="burst"), "allowed: direct, poisson"),
        (lambda: DattaRecipe(spiking_gates=["i"]), "must include f, o and tanh_c"),
        (lambda: DattaRecipe(calibration_batches=0), "calibration_batches must be an integer >= 1"),
        (lambda: make_recipe("rate"), "unknown conversion method 'rate'; allowed: datta, hybrid"),
        (lambda: make_recipe("hybrid", encoding="direct"), "method='hybrid' has no encoding"),
    ],
    ids=["T0", "encoding", "gates", "calibration", "method", "hybrid-encoding"],
)
def test_recipe_arguments_are_validated(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_recipe_settings() -> None:
    recipe = make_recipe("datta", timesteps=4, encoding="poisson")
    assert recipe.settings == {"timesteps": 4, "spiking_gates": None, "encoding": "poisson", "bias_shift": None}
    assert repr(recipe) == "DattaRecipe(timesteps=4, encoding='poisson')"
    assert make_recipe("hybrid", timesteps=8).settings["timesteps"] == 8
