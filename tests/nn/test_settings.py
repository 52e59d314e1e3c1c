import inspect
from pathlib import Path

import pytest
import torch

from snnlstm.checkpoint import load_checkpoint
from snnlstm.models import SequenceClassifier
from snnlstm.nn.lstm import SpikingLSTM
from snnlstm.nn.settings import LSTMSettings, merge_flat_settings, split_flat_settings

SHIPPED = sorted((Path(__file__).parents[2] / "benchmarks" / "checkpoints").rglob("*.ckpt"))
CLASSIFIERS = [p for p in SHIPPED if load_checkpoint(p)["hyper_parameters"].get("_class_path", "").endswith("SequenceClassifier")]


def test_settings_are_the_layer_arguments_with_the_same_defaults() -> None:
    """One place for the layer's options: the block cannot drift from SpikingLSTM's signature."""
    params = inspect.signature(SpikingLSTM.__init__).parameters
    expected = [name for name in params if name not in ("self", "input_size", "batch_first")]
    assert list(LSTMSettings.field_names()) == expected
    defaults = LSTMSettings()
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
        merge_flat_settings(None, {"bogus": 1}, "SequenceClassifier")
    with pytest.raises(ValueError, match="unknown mode 'banana'; allowed: ann, snn, hybrid"):
        LSTMSettings(mode="banana").build(3)  # type: ignore[arg-type]


def test_top_level_settings_move_into_the_block() -> None:
    old = {"_class_path": "x.Y", "hidden_size": 32, "timesteps": 4, "spiking_gates": ("i", "f", "o", "tanh_c"), "lr": 0.1}
    new = split_flat_settings(old)
    assert set(new) == {"_class_path", "lr", "layer"}
    assert new["layer"] == LSTMSettings(hidden_size=32, timesteps=4).as_dict()
    assert split_flat_settings(new) == new  # the current form is left as it is


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


@pytest.mark.parametrize("path", CLASSIFIERS, ids=[f"{p.parent.name}/{p.name}" for p in CLASSIFIERS])
def test_shipped_checkpoints_with_top_level_settings_load_as_before(path: Path) -> None:
    """The shipped checkpoints predate the block: their layer settings load into it, weights strict."""
    hparams = load_checkpoint(path)["hyper_parameters"]
    assert "layer" not in hparams  # the old form, unchanged on disk
    model = SequenceClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    for name in LSTMSettings.field_names():
        if name in hparams and name != "compile":
            assert model.hparams.layer[name] == (list(hparams[name]) if name == "spiking_gates" else hparams[name]), name
    assert model.lstm.hidden_size == hparams["hidden_size"] and model.lstm.num_layers == hparams["num_layers"]
