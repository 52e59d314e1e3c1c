import pytest
import torch

from snnlstm.nn.settings import LSTMSettings
from snnlstm.models import SequenceClassifier
from tests.conftest import TinySequences, make_trainer


def model(**kwargs) -> SequenceClassifier:
    torch.manual_seed(0)
    kwargs.setdefault("hidden_size", 8)
    return SequenceClassifier(input_size=4, num_classes=3, **kwargs)


@pytest.mark.parametrize("head_sizes", [(), (5,)], ids=["linear", "fc32-style"])
@pytest.mark.parametrize("mode", ["ann", "snn"])
def test_forward_shapes(head_sizes, mode) -> None:
    logits = model(head_sizes=head_sizes, mode=mode, num_layers=2)(torch.randn(2, 6, 4))
    assert logits.shape == (2, 3)


def test_optimizer_groups_keep_thresholds_apart() -> None:
    m = model(weight_decay=0.1, spiking_lr=0.5)
    opt = m.configure_optimizers()
    weights, spiking = opt.param_groups
    assert weights["weight_decay"] == 0.1 and spiking["weight_decay"] == 0.0 and spiking["lr"] == 0.5
    assert {id(p) for p in spiking["params"]} == {id(p) for p in m.lstm.spiking_parameters()}


def test_eval_timesteps_and_mode_apply_to_test_only(tmp_path, tiny_data) -> None:
    m = model(mode="snn", timesteps=2, eval_timesteps=5)
    seen = []
    original = m.test_step

    def spy(*args, **kwargs):
        seen.append((m.lstm.mode, m.lstm.timesteps))
        return original(*args, **kwargs)

    m.test_step = spy
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.test(m, tiny_data, verbose=False)
    assert set(seen) == {("snn", 5)}
    assert m.lstm.timesteps == 2  # restored after testing
    m2 = model(mode="snn", eval_mode="ann")
    m2.test_step = lambda *args, **kwargs: seen.append(m2.lstm.mode)
    trainer.test(m2, tiny_data, verbose=False)
    assert seen[-1] == "ann" and m2.lstm.mode == "snn"


def test_logs_stage_accuracy_keys(tmp_path, tiny_data) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(model(), tiny_data)
    assert {"train/acc", "val/acc", "val/loss", "val/acc_best"} <= set(trainer.callback_metrics)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "lion"}, "allowed"),
        ({"eval_mode": "latency"}, "allowed: auto, ann, snn, hybrid"),
        ({"eval_timesteps": 0}, "eval_timesteps"),
        ({"num_classes": 1}, "num_classes"),
        ({"head_sizes": [0]}, "head_sizes"),
        ({"lr": 0.0}, "lr"),
    ],
    ids=["optimizer", "eval_mode", "eval_T", "classes", "head", "lr"],
)
def test_bad_arguments(kwargs, match) -> None:
    args = dict(input_size=4, num_classes=3, hidden_size=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SequenceClassifier(**args)


def test_set_mode_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="allowed"):
        model().set_mode("spiking")


def test_init_from_checkpoint(tmp_path, tiny_data) -> None:
    source = model(hidden_size=8)
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(source, tiny_data)
    path = tmp_path / "ann.ckpt"
    trainer.save_checkpoint(path)
    started = model(hidden_size=8, init_from=str(path))
    for (name, a), (_, b) in zip(source.state_dict().items(), started.state_dict().items()):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, msg=name)


def test_init_from_errors(tmp_path, tiny_data) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model(init_from=str(tmp_path / "missing.ckpt"))
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(model(hidden_size=8), tiny_data)
    trainer.save_checkpoint(tmp_path / "h8.ckpt")
    with pytest.raises(ValueError, match="architecture"):
        model(hidden_size=16, init_from=str(tmp_path / "h8.ckpt"))


def test_cosine_schedule_anneals(tmp_path, tiny_data) -> None:
    m = model(lr_schedule="cosine", lr=0.1)
    trainer = make_trainer(tmp_path, max_epochs=4)
    trainer.fit(m, tiny_data)
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="allowed"):
        model(lr_schedule="step")


def test_checkpoints_with_a_boolean_compile_flag_still_load(tmp_path) -> None:
    """Checkpoints written before the compile modes stored ``compile: true``."""
    model = SequenceClassifier(input_size=4, num_classes=2, layer=LSTMSettings(hidden_size=8, compile=True))
    assert model.lstm.compile_mode == "step"
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, TinySequences())
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    loaded = SequenceClassifier.load_from_checkpoint(path, map_location="cpu")
    assert loaded.lstm.compile_mode == "step" and loaded.hparams.layer["compile"] is True


def test_init_from_an_ann_keeps_this_models_snn_settings(tmp_path) -> None:
    source = SequenceClassifier(input_size=4, num_classes=2, layer=LSTMSettings(hidden_size=8, timesteps=2))
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(source, TinySequences())
    path = tmp_path / "ann.ckpt"
    trainer.save_checkpoint(path)
    model = SequenceClassifier(input_size=4, num_classes=2, init_from=str(path), layer=LSTMSettings(hidden_size=8, timesteps=8, encoding="poisson"))
    assert (model.lstm.timesteps, model.lstm.encoding, model.lstm.mode) == (8, "poisson", "ann")
    torch.testing.assert_close(model.lstm.weight_hh_l0, source.lstm.weight_hh_l0)
    # a converted source keeps its conversion
    source.lstm.configure(mode="snn", timesteps=3)
    trainer.save_checkpoint(path)
    model = SequenceClassifier(input_size=4, num_classes=2, init_from=str(path), layer=LSTMSettings(hidden_size=8, timesteps=8))
    assert (model.lstm.timesteps, model.lstm.mode) == (3, "snn")
