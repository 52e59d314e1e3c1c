import inspect
from pathlib import Path

import pytest
import torch

from snnlstm.checkpoint import load_checkpoint
from snnlstm.models import LSNNClassifier, SequenceClassifier
from snnlstm.nn.lsnn import LSNN
from snnlstm.nn.lstm import SpikingLSTM
from snnlstm.nn.settings import LSNNSettings, LSTMSettings

SHIPPED = sorted((Path(__file__).parents[2] / "benchmarks" / "checkpoints").rglob("*.ckpt"))
MODELS = {"SequenceClassifier": (SequenceClassifier, LSTMSettings), "LSNNClassifier": (LSNNClassifier, LSNNSettings)}
OLD_FORM = [(p, name) for p in SHIPPED for name in MODELS if load_checkpoint(p)["hyper_parameters"].get("_class_path", "").endswith(name)]


@pytest.mark.parametrize(
    ("settings", "layer", "model_sets"),
    [(LSTMSettings, SpikingLSTM, ("input_size", "batch_first")), (LSNNSettings, LSNN, ("input_size", "readout_size"))],
    ids=["lstm", "lsnn"],
)
def test_settings_are_the_layer_arguments_with_the_same_defaults(settings: type, layer: type, model_sets: tuple[str, ...]) -> None:
    """One place for the layer's options: the block cannot drift from the layer's signature."""
    params = inspect.signature(layer.__init__).parameters
    expected = [name for name in params if name not in ("self", *model_sets)]
    assert sorted(settings.field_names()) == sorted(expected)
    defaults = settings()
    for name in expected:
        if params[name].default is not inspect.Parameter.empty:
            assert getattr(defaults, name) == params[name].default, name


def test_build_and_plain_dict_round_trip() -> None:
    settings = LSTMSettings(hidden_size=6, num_layers=2, mode="snn", timesteps=3, spiking_gates=["f", "o", "tanh_c"])
    assert settings.spiking_gates == ("f", "o", "tanh_c")  # a YAML list becomes a tuple
    layer = settings.build(5)
    assert (layer.input_size, layer.hidden_size, layer.num_layers, layer.mode, layer.timesteps) == (5, 6, 2, "snn", 3)
    assert layer.batch_first and layer.spiking_gates == frozenset({"f", "o", "tanh_c"})
    plain = settings.as_dict()
    assert all(isinstance(v, (int, float, str, bool, list)) for v in plain.values())
    assert LSTMSettings.coerce(plain) == settings


def test_unknown_settings_are_named() -> None:
    with pytest.raises(TypeError, match=r"unknown layer setting\(s\) \['timestep'\]; allowed: hidden_size"):
        LSTMSettings.coerce({"timestep": 2})
    with pytest.raises(TypeError, match=r"SequenceClassifier got unexpected argument\(s\) \['bogus'\]"):
        SequenceClassifier(input_size=3, num_classes=2, bogus=1)
    with pytest.raises(ValueError, match="unknown mode 'banana'; allowed: ann, snn, hybrid"):
        LSTMSettings(mode="banana").build(3)  # type: ignore[arg-type]


def test_top_level_settings_move_into_the_block() -> None:
    old = {"_class_path": "x.Y", "hidden_size": 32, "timesteps": 4, "spiking_gates": ("i", "f", "o", "tanh_c"), "lr": 0.1}
    new = LSTMSettings.migrate(old)
    assert set(new) == {"_class_path", "lr", "layer"}
    assert new["layer"] == LSTMSettings(hidden_size=32, timesteps=4).as_dict()
    assert LSTMSettings.migrate(new) == new  # the current form is left as it is
    assert LSNNSettings.migrate({"beta": 0.0, "tau_out": 5.0}) == {"tau_out": 5.0, "layer": LSNNSettings(beta=0.0).as_dict()}


def test_a_classifier_stores_one_plain_layer_block(tmp_path) -> None:
    block = SequenceClassifier(input_size=3, num_classes=2, layer=LSTMSettings(hidden_size=5, timesteps=3, mode="snn"))
    as_dict = SequenceClassifier(input_size=3, num_classes=2, layer={"hidden_size": 5, "timesteps": 3, "mode": "snn"})
    flat = SequenceClassifier(input_size=3, num_classes=2, hidden_size=5, timesteps=3, mode="snn")  # the older form
    for model in (block, as_dict, flat):
        assert model.hparams.layer == LSTMSettings(hidden_size=5, timesteps=3, mode="snn").as_dict()
        assert not set(model.hparams) & (set(LSTMSettings.field_names()) - {"layer"})
        assert model.hparams_initial.layer == model.hparams.layer  # what the logger records
        assert (model.lstm.hidden_size, model.lstm.timesteps, model.lstm.mode) == (5, 3, "snn")
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": flat.state_dict(), "hyper_parameters": dict(flat.hparams)}, path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []


def test_an_lsnn_classifier_stores_one_plain_layer_block() -> None:
    model = LSNNClassifier(input_size=3, num_classes=2, layer=LSNNSettings(n_lif=4, n_ahp=2, beta=0.0))
    flat = LSNNClassifier(input_size=3, num_classes=2, n_lif=4, n_ahp=2, beta=0.0)  # the older form
    for m in (model, flat):
        assert m.hparams.layer == LSNNSettings(n_lif=4, n_ahp=2, beta=0.0).as_dict() and "beta" not in m.hparams
        assert (m.lsnn.n_lif, m.lsnn.n_ahp, m.lsnn.readout_size) == (4, 2, 2)
        assert not m.lsnn.ahp.ahp_strength.requires_grad  # beta 0: the AHP strength stays frozen


@pytest.mark.parametrize(("path", "name"), OLD_FORM, ids=[f"{p.parent.name}/{p.name}" for p, _ in OLD_FORM])
def test_shipped_checkpoints_with_top_level_settings_load_as_before(path: Path, name: str) -> None:
    """The shipped checkpoints predate the block: their layer settings load into it, weights strict."""
    model_cls, settings_cls = MODELS[name]
    hparams = load_checkpoint(path)["hyper_parameters"]
    assert "layer" not in hparams  # the old form, unchanged on disk
    model = model_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    for field in settings_cls.field_names():
        if field in hparams and field != "compile":
            value = list(hparams[field]) if isinstance(hparams[field], tuple) else hparams[field]
            assert model.hparams.layer[field] == value, field
