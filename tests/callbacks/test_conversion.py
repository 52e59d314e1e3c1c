import logging
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn

from snnlstm.callbacks import ANNToSNNConversion
from snnlstm.callbacks.conversion import ConversionNotReachedError
from snnlstm.cli import cli_main
from snnlstm.conversion import DattaRecipe, HybridRecipe
from snnlstm.nn.compat import NotConvertibleError
from snnlstm.nn.compat import LSTMCompat
from snnlstm.nn.lstm import SpikingLSTM
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
    assert model.encoder.mode == "snn" and model.encoder.spiking.activation == "standard"
    fitted = conv.thresholds["encoder"][0]
    assert fitted["i.threshold"] != 4.0  # calibrated to the sigmoid's pre-activation distribution
    assert 0.5 < fitted["i.threshold"] < 12 and 0.05 < fitted["g.threshold"] < 8 and fitted["g.threshold_neg"] < 0
    held = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert all(id(p) in held for p in model.encoder.spiking.spiking_parameters() if p.requires_grad)
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


# ---------------------------------------------------------------------- never silent
class LRs(Callback):
    """Every group's learning rate at the end of each training epoch."""

    def __init__(self) -> None:
        self.seen: list[list[float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seen.append([float(g["lr"]) for g in trainer.optimizers[0].param_groups])


@pytest.mark.parametrize(
    ("conv", "limits", "match"),
    [
        (dict(epoch=5), dict(max_epochs=2), "at epoch 5, but training stops before that"),
        (dict(epoch=None, step=40), dict(max_epochs=2), "at global step 40"),
        (dict(epoch=1), dict(max_epochs=5, max_steps=3), "at epoch 1, but training stops"),
    ],
    ids=["epoch-past-max-epochs", "step-past-the-end", "epoch-past-max-steps"],
)
def test_an_unreachable_conversion_warns_at_fit_start_and_fails_at_fit_end(tmp_path, tiny_data, conv, limits, match) -> None:
    trainer = make_trainer(tmp_path, callbacks=[ANNToSNNConversion(**conv)], **limits)
    with pytest.warns(UserWarning, match=match), pytest.raises(ConversionNotReachedError, match="still a non-spiking LSTM"):
        trainer.fit(classifier(), tiny_data)


def test_too_few_batches_left_to_calibrate_warns_and_fails(tmp_path, tiny_data) -> None:
    conv = ANNToSNNConversion(epoch=1, calibration_batches=10)  # 4 training batches per epoch, 1 epoch left
    model = ForeignLSTMModule()
    with pytest.warns(UserWarning, match=r"calibrating the sigmoid/tanh layers \['encoder'\] needs calibration_batches=10.*only 4 remain"):
        with pytest.raises(ConversionNotReachedError, match="still calibrating"):
            make_trainer(tmp_path, max_epochs=2, callbacks=[conv]).fit(model, tiny_data)
    assert model.encoder.spiking.calibration_observer is None


def test_a_reachable_conversion_is_quiet(tmp_path, tiny_data) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*ANNToSNNConversion.*")
        make_trainer(tmp_path, max_epochs=2, callbacks=[ANNToSNNConversion(epoch=1, calibration_batches=4)]).fit(ForeignLSTMModule(), tiny_data)


def test_fast_dev_run_only_warns(tmp_path, tiny_data) -> None:
    with pytest.warns(UserWarning, match="will never convert"):
        make_trainer(tmp_path, fast_dev_run=True, callbacks=[ANNToSNNConversion(epoch=1)]).fit(classifier(), tiny_data)


# ---------------------------------------------------------------------- idempotent
def test_layers_already_spiking_are_left_alone_with_their_learning_rates(tmp_path, tiny_data, caplog) -> None:
    model = classifier(mode="snn", timesteps=2)
    lrs = LRs()
    conv = ANNToSNNConversion(epoch=0, timesteps=5, lr_factor=0.5)
    with caplog.at_level(logging.INFO):
        make_trainer(tmp_path, max_epochs=1, callbacks=[conv, lrs]).fit(model, tiny_data)
    assert conv.converted and conv.converted_layers == [] and model.lstm.timesteps == 2
    assert lrs.seen == [[0.01, 0.01]]  # not 0.005
    assert "already spike; nothing converted, learning rates untouched" in caplog.text


def _fit_and_resume(tmp_path, tiny_data, first: dict, second: dict, legacy_key: bool = False):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    conv = ANNToSNNConversion(**first)
    before = LRs()
    make_trainer(tmp_path, max_epochs=2, callbacks=[conv, before, ckpt], enable_checkpointing=True).fit(classifier(), tiny_data)
    path = tmp_path / "ckpt" / "last.ckpt"
    if legacy_key:  # a checkpoint from before the state key stopped depending on epoch/step
        state = torch.load(path, weights_only=False)
        state["callbacks"] = {"ANNToSNNConversion{'epoch': 1, 'step': None}": state["callbacks"].pop(conv.state_key), **state["callbacks"]}
        torch.save(state, path)
    conv2, after = ANNToSNNConversion(**second), LRs()
    model = classifier()
    make_trainer(tmp_path, max_epochs=3, callbacks=[conv2, after]).fit(model, tiny_data, ckpt_path=str(path))
    return conv, conv2, before, after, model


def test_state_survives_an_edited_epoch_and_lrs_are_scaled_once(tmp_path, tiny_data, caplog) -> None:
    with caplog.at_level(logging.INFO):
        conv, conv2, before, after, model = _fit_and_resume(
            tmp_path, tiny_data, dict(epoch=1, lr_factor=0.5, timesteps=3), dict(epoch=0, lr_factor=0.5, timesteps=3)
        )
    assert conv.state_key == conv2.state_key
    assert conv2.converted and conv2.converted_at == conv.converted_at == {"epoch": 1, "global_step": 4}
    assert before.seen == [[0.01, 0.01], [0.005, 0.005]]
    assert after.seen == [[0.005, 0.005]]  # not multiplied by lr_factor a second time
    assert caplog.text.count("ANNToSNNConversion: converted") == 1
    assert model.lstm.mode == "snn" and model.lstm.timesteps == 3


def test_checkpoints_with_the_old_state_key_still_resume(tmp_path, tiny_data) -> None:
    conv, conv2, _, after, _ = _fit_and_resume(tmp_path, tiny_data, dict(epoch=1, lr_factor=0.5), dict(epoch=1, lr_factor=0.5), legacy_key=True)
    assert conv2.converted and conv2.converted_at == conv.converted_at and after.seen == [[0.005, 0.005]]


# ---------------------------------------------------------------------- LR schedulers
class ScheduledForeign(ForeignLSTMModule):
    """A foreign model whose optimizer skips frozen parameters and follows an epoch-wise schedule."""

    def __init__(self, schedule: str) -> None:
        super().__init__(only_trainable=True, lr=0.1)
        self.schedule = schedule

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        if self.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
        else:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_lr_factor_and_the_new_group_follow_the_scheduler(tmp_path, tiny_data, schedule: str) -> None:
    torch.manual_seed(0)
    reference = LRs()
    make_trainer(tmp_path, max_epochs=4, callbacks=[reference]).fit(ScheduledForeign(schedule), tiny_data)
    torch.manual_seed(0)
    converted, conv = LRs(), ANNToSNNConversion(epoch=1, calibration_batches=1, lr_factor=0.1)
    trainer = make_trainer(tmp_path, max_epochs=4, callbacks=[conv, converted])
    trainer.fit(ScheduledForeign(schedule), tiny_data)
    assert converted.seen[0] == pytest.approx(reference.seen[0])
    for epoch in (1, 2, 3):
        expected = 0.1 * reference.seen[epoch][0]
        weights, spiking = converted.seen[epoch]  # the thresholds/leaks group was added at epoch 1
        assert weights == pytest.approx(expected, rel=1e-6) and spiking == pytest.approx(expected, rel=1e-6), epoch
    assert converted.seen[3][1] < converted.seen[1][1]  # the new group is scheduled
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([0.01, 0.01])


# ---------------------------------------------------------------------- recipes and foreign LSTMs
def test_a_recipe_object_configures_the_callback(tmp_path, tiny_data) -> None:
    model = classifier()
    conv = ANNToSNNConversion(epoch=0, recipe=DattaRecipe(timesteps=4, encoding="poisson"))
    assert conv.settings["timesteps"] == 4 and conv.method == "datta"
    make_trainer(tmp_path, max_epochs=1, callbacks=[conv]).fit(model, tiny_data)
    assert (model.lstm.mode, model.lstm.timesteps, model.lstm.encoding) == ("snn", 4, "poisson")
    assert ANNToSNNConversion(epoch=None, recipe=HybridRecipe(timesteps=8)).method == "hybrid"
    with pytest.raises(ValueError, match="either recipe= or method"):
        ANNToSNNConversion(epoch=0, recipe=DattaRecipe(), timesteps=2)


class _Subclassed(nn.LSTM):
    """A foreign nn.LSTM subclass with its own init only."""

    def __init__(self) -> None:
        super().__init__(4, 8, batch_first=True)
        nn.init.zeros_(self.bias_hh_l0)


def test_subclassed_and_aliased_torch_lstms_are_converted(tmp_path, tiny_data) -> None:
    model = ForeignLSTMModule()
    model.encoder = _Subclassed()
    model.same_encoder = model.encoder  # an alias
    conv = ANNToSNNConversion(epoch=1, calibration_batches=1)
    make_trainer(tmp_path, max_epochs=2, callbacks=[conv]).fit(model, tiny_data)
    assert isinstance(model.encoder, LSTMCompat) and model.same_encoder is model.encoder
    assert model.encoder.mode == "snn" and conv.converted_layers == ["encoder"]


def test_a_bidirectional_torch_lstm_is_refused_by_name(tmp_path, tiny_data) -> None:
    model = ForeignLSTMModule()
    model.encoder = nn.LSTM(4, 4, batch_first=True, bidirectional=True)
    with pytest.raises(NotConvertibleError, match="'encoder'.*bidirectional.*convert_torch_lstm=False"):
        make_trainer(tmp_path, callbacks=[ANNToSNNConversion()]).fit(model, tiny_data)


def test_a_recipe_is_set_from_yaml(tmp_path) -> None:
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "quickstart.yaml").read_text())
    config["trainer"]["logger"] = False
    config["trainer"]["callbacks"][0] = {
        "class_path": "snnlstm.callbacks.ANNToSNNConversion",
        "init_args": {"epoch": 3, "lr_factor": 0.5, "recipe": {"class_path": "snnlstm.conversion.DattaRecipe", "init_args": {"timesteps": 4}}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = cli_main(["--config", str(path), "--trainer.default_root_dir", str(tmp_path)], run=False)
    conv = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ANNToSNNConversion))
    assert isinstance(conv.recipe, DattaRecipe) and conv.settings["timesteps"] == 4 and conv.epoch == 3
