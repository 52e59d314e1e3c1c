import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from snnlstm.callbacks import ANNToSNNConversion
from snnlstm.nn.lstm import LSTMCompat, SpikingLSTM
from snnlstm.models import SequenceClassifier
from tests.callbacks.helpers import ForeignLSTMModule
from tests.conftest import make_trainer


def classifier(**kwargs) -> SequenceClassifier:
    torch.manual_seed(0)
    kwargs.setdefault("hidden_size", 8)
    return SequenceClassifier(input_size=4, num_classes=2, lr=0.01, **kwargs)


class Capture(Callback):
    """Records (epoch, mode, thresholds) at each train epoch start/end."""

    def __init__(self) -> None:
        self.start: list[tuple[int, str, dict]] = []
        self.end: list[tuple[int, str, dict]] = []

    @staticmethod
    def _state(pl_module):
        layer = next(m for m in pl_module.modules() if isinstance(m, SpikingLSTM))
        return layer.mode, {k: v.clone() for k, v in layer.neurons[0].state_dict().items()}

    def on_train_epoch_start(self, trainer, pl_module):
        self.start.append((trainer.current_epoch, *self._state(pl_module)))

    def on_train_epoch_end(self, trainer, pl_module):
        self.end.append((trainer.current_epoch, *self._state(pl_module)))


def test_converts_our_model_at_epoch_and_finetunes_thresholds(tmp_path, tiny_data) -> None:
    model = classifier(activation="hard", v_sig=3.0, v_tanh_pos=0.8, v_tanh_neg=-1.2)
    conv = ANNToSNNConversion(epoch=1, timesteps=3)
    cap = Capture()
    make_trainer(tmp_path, max_epochs=3, callbacks=[conv, cap]).fit(model, tiny_data)
    assert conv.converted and conv.converted_at["epoch"] == 1
    assert [mode for _, mode, _ in cap.end] == ["ann", "snn", "snn"]
    assert model.lstm.timesteps == 3
    recorded = conv.thresholds["lstm"][0]  # thresholds at conversion = the hard-activation constants
    assert recorded["i.threshold"] == 3.0 and recorded["g.threshold"] == 0.8 and recorded["tanh_c.threshold_neg"] == -1.2
    before, after = cap.end[0][2], cap.end[-1][2]
    assert torch.equal(before["f.threshold"], after["f.threshold"]) is False  # fine-tuned
    assert not torch.equal(before["f.beta"], after["f.beta"])  # leak trained as well


def test_step_based_conversion(tmp_path, tiny_data) -> None:
    model = classifier()
    conv = ANNToSNNConversion(epoch=None, step=5)
    make_trainer(tmp_path, max_epochs=2, callbacks=[conv]).fit(model, tiny_data)
    assert conv.converted_at == {"epoch": 1, "global_step": 5}
    assert model.lstm.mode == "snn"


@pytest.mark.parametrize("only_trainable", [False, True], ids=["optimizer-has-all", "optimizer-skips-frozen"])
def test_converts_foreign_module_with_torch_lstm(tmp_path, tiny_data, only_trainable: bool) -> None:
    torch.manual_seed(0)
    model = ForeignLSTMModule(only_trainable=only_trainable)
    weight = model.encoder.weight_ih_l0
    conv = ANNToSNNConversion(epoch=1, timesteps=2, calibration_batches=2)
    cap = Capture()
    trainer = make_trainer(tmp_path, max_epochs=3, callbacks=[conv, cap])
    trainer.fit(model, tiny_data)
    assert isinstance(model.encoder, LSTMCompat) and model.encoder.weight_ih_l0 is weight
    assert model.encoder.mode == "snn" and model.encoder.activation == "standard"
    fitted = conv.thresholds["encoder"][0]
    assert fitted["i.threshold"] != 4.0  # calibrated to the sigmoid's pre-activation distribution
    assert 0.5 < fitted["i.threshold"] < 12 and 0.05 < fitted["g.threshold"] < 8 and fitted["g.threshold_neg"] < 0
    held = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert all(id(p) in held for p in model.encoder.spiking_parameters() if p.requires_grad)
    assert (len(trainer.optimizers[0].param_groups) == 2) == only_trainable
    assert not torch.equal(cap.end[-1][2]["o.threshold"], torch.tensor(fitted["o.threshold"]))  # trained
    assert trainer.callback_metrics["train_loss"].isfinite()


@pytest.mark.parametrize("foreign", [False, True], ids=["ours", "foreign"])
def test_resume_after_conversion_stays_converted(tmp_path, tiny_data, foreign: bool) -> None:
    def build():
        torch.manual_seed(0)
        return ForeignLSTMModule(only_trainable=True) if foreign else classifier()

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    conv = ANNToSNNConversion(epoch=1, calibration_batches=1, timesteps=3)
    model = build()
    make_trainer(tmp_path, max_epochs=2, callbacks=[conv, ckpt], enable_checkpointing=True).fit(model, tiny_data)
    layer = next(m for m in model.modules() if isinstance(m, SpikingLSTM))
    saved = {k: v.clone() for k, v in layer.neurons[0].state_dict().items()}

    conv2 = ANNToSNNConversion(epoch=1, calibration_batches=1, timesteps=3)
    cap = Capture()
    resumed = build()
    trainer = make_trainer(tmp_path, max_epochs=3, callbacks=[conv2, cap])
    trainer.fit(resumed, tiny_data, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert conv2.converted
    epoch, mode, thresholds = cap.start[0]
    assert epoch == 2 and mode == "snn"
    for key, value in saved.items():
        torch.testing.assert_close(thresholds[key], value, msg=key)
    layer = next(m for m in resumed.modules() if isinstance(m, SpikingLSTM))
    assert layer.timesteps == 3 and layer.mode == "snn"


def test_ann_checkpoint_is_written_before_conversion(tmp_path, tiny_data) -> None:
    conv = ANNToSNNConversion(epoch=1, save_ann_checkpoint=True)
    model = classifier()
    make_trainer(tmp_path, max_epochs=2, callbacks=[conv]).fit(model, tiny_data)
    state = torch.load(conv.ann_checkpoint_path, weights_only=False)
    assert state["state_dict"]["lstm._extra_state"]["mode"] == "ann"
    assert model.lstm.mode == "snn"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epoch": None, "step": None}, "exactly one"),
        ({"epoch": 1, "step": 3}, "exactly one"),
        ({"epoch": -1}, "epoch"),
        ({"timesteps": 0}, "timesteps"),
        ({"spiking_gates": ["i", "x"]}, "allowed"),
        ({"encoding": "burst"}, "allowed"),
        ({"lr_factor": 0.0}, "lr_factor"),
    ],
    ids=["none", "both", "negative-epoch", "T0", "gate", "encoding", "lr_factor"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ANNToSNNConversion(**kwargs)


def test_module_without_lstm_is_rejected(tmp_path, tiny_data) -> None:
    model = ForeignLSTMModule()
    model.encoder = torch.nn.GRU(4, 8, batch_first=True)
    with pytest.raises(ValueError, match="no convertible LSTM"):
        make_trainer(tmp_path, callbacks=[ANNToSNNConversion()]).fit(model, tiny_data)


class ModeAtTest(Callback):
    """The layers' (mode, T) seen by the first test batch."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self.seen = [(m.mode, m.timesteps) for m in pl_module.modules() if isinstance(m, SpikingLSTM)]


def test_hybrid_method_converts_at_test_time(tmp_path, tiny_data) -> None:
    model = classifier(cell="modified")
    probe = ModeAtTest()
    conversion = ANNToSNNConversion(epoch=None, method="hybrid", timesteps=16)
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[conversion, probe])
    trainer.fit(model, tiny_data)
    assert model.lstm.mode == "ann" and not conversion.converted  # training stays non-spiking
    trainer.test(model, tiny_data, verbose=False)
    assert probe.seen == [("hybrid", 16)] and conversion.converted


def test_hybrid_method_mid_fit_keeps_training_the_head(tmp_path, tiny_data) -> None:
    model = classifier(cell="modified")
    head_before = model.head[-1].weight.detach().clone()
    lstm_before = model.lstm.weight_ih_l0.detach().clone()
    make_trainer(tmp_path, max_epochs=1, callbacks=[ANNToSNNConversion(epoch=0, method="hybrid", timesteps=4)]).fit(model, tiny_data)
    assert model.lstm.mode == "hybrid"
    assert torch.equal(model.lstm.weight_ih_l0, lstm_before)  # the hybrid cell has no gradient
    assert not torch.equal(model.head[-1].weight, head_before)


def test_hybrid_method_needs_the_modified_cell(tmp_path, tiny_data) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[ANNToSNNConversion(epoch=0, method="hybrid")])
    with pytest.raises(ValueError, match="train it with cell='modified'"):
        trainer.fit(classifier(), tiny_data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "rate"}, "unknown conversion method 'rate'; allowed: datta, hybrid"),
        ({"method": "hybrid", "encoding": "poisson"}, "method='hybrid' has no encoding"),
        ({"method": "hybrid", "epoch": 1, "step": 3}, "at most one of epoch / step"),
        ({"method": "datta", "epoch": None}, "exactly one of epoch / step"),
    ],
    ids=["unknown-method", "hybrid-with-encoding", "hybrid-epoch-and-step", "datta-needs-a-point"],
)
def test_bad_method_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ANNToSNNConversion(**kwargs)
