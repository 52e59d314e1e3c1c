"""LSNNClassifier: learns, reports per-population spikes through SpikeMonitor, regularises rates."""

from __future__ import annotations

import pytest
import torch

from snnlstm.callbacks import SpikeMonitor
from snnlstm.models import LSNNClassifier
from tests.conftest import TinySequences, make_trainer


def _model(**kwargs) -> LSNNClassifier:
    defaults = dict(input_size=4, num_classes=2, n_lif=12, n_ahp=12, beta=20.0, tau_a=50.0, input_gain=3.0, tau_out=3.0, lr=0.01)
    defaults.update(kwargs)
    return LSNNClassifier(**defaults)


def test_learns_tiny_sequences_and_logs_population_rates(tmp_path) -> None:
    torch.manual_seed(0)
    data = TinySequences()
    model = _model()
    monitor = SpikeMonitor(stages=["val", "test"])
    trainer = make_trainer(tmp_path, max_epochs=25, callbacks=[monitor])
    trainer.fit(model, data)
    (result,) = trainer.test(model, data, verbose=False)
    assert result["test/acc"] >= 0.85
    latest = monitor.latest["test"]
    for key in ("spikes/lsnn/l0.lif/rate", "spikes/lsnn/l0.ahp/rate", "spikes/lsnn/synops/ac_per_sample", "firing_rate"):
        assert key in latest, sorted(latest)
    assert 0 < latest["firing_rate"] < 1


def test_threshold_crossing_encoder_and_cue_steps() -> None:
    model = _model(input_size=1, encoder="threshold_crossing", levels=5, cue_steps=3, cue_neurons=2)
    assert model.lsnn.input_size == 12
    logits = model(torch.rand(3, 10, 1))
    assert logits.shape == (3, 2)


def test_optimizer_keeps_neuron_parameters_apart() -> None:
    model = _model(spiking_lr=0.5)
    model.trainer = type("T", (), {"max_epochs": 1})()  # configure_optimizers reads max_epochs only for cosine
    optimizer = model.configure_optimizers()
    weights, neurons = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in neurons["params"]} == {"lsnn.lif.beta", "lsnn.lif.slow_decay", "lsnn.ahp.beta", "lsnn.ahp.slow_decay", "lsnn.ahp.ahp_strength"}
    assert neurons["lr"] == 0.5 and neurons["weight_decay"] == 0.0


def test_rate_regulariser_pulls_rates_to_the_target() -> None:
    model = _model(rate_reg=2.0, rate_target=0.05)
    model.train()
    x = torch.rand(4, 6, 4)
    model(x)
    rates = model.lsnn(x).output.mean(dim=(0, 1))
    assert model.extra_loss().item() == pytest.approx(2.0 * ((rates - 0.05) ** 2).sum().item(), rel=1e-5)
    assert model.extra_loss() is None  # consumed: one regulariser per training forward
    assert _model().extra_loss() is None


def test_training_keeps_neuron_parameters_in_range(tmp_path) -> None:
    model = _model(lr=0.5)  # steps large enough to push the decays over 1 and the AHP strength below 0
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=0)
    trainer.fit(model, TinySequences())
    for neuron in (model.lsnn.lif, model.lsnn.ahp):
        assert 0.0 <= float(neuron.beta) <= 1.0 and 0.0 <= float(neuron.slow_decay) <= 1.0
    assert float(model.lsnn.ahp.ahp_strength) >= 0.0


def test_no_ahp_switch_makes_every_neuron_plain_lif() -> None:
    model = _model(beta=0.0)
    assert float(model.lsnn.ahp.ahp_strength) == 0.0 and not model.lsnn.ahp.ahp_strength.requires_grad


def test_backend_is_passed_to_the_lsnn_and_saved() -> None:
    model = _model(backend="torch")
    assert model.lsnn.backend_request == "torch" and model.lsnn.kernel == "torch-eager"
    assert model.hparams.layer["backend"] == "torch"
    assert _model().lsnn.backend_request == "auto"


def test_checkpoint_saved_without_backend_loads_with_auto(tmp_path) -> None:
    import lightning

    model = _model()
    hparams = dict(model.hparams)
    hparams.update(hparams.pop("layer"))  # the top-level form of checkpoints before the layer block
    del hparams["backend"]  # a checkpoint from before the argument existed
    assert LSNNClassifier(**hparams).lsnn.backend_request == "auto"
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": lightning.__version__}, path)
    loaded = LSNNClassifier.load_from_checkpoint(path)
    assert loaded.lsnn.backend_request == "auto"
    x = torch.rand(2, 6, 4)
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder": "rate"}, "allowed: none, threshold_crossing"),
        ({"cue_steps": 5}, "need encoder='threshold_crossing'"),
        ({"rate_target": 2.0}, "rate_target"),
        ({"optimizer": "lbfgs"}, "allowed: adam"),
        ({"num_classes": 1}, "num_classes"),
        ({"backend": "gpu"}, "unknown backend 'gpu'; allowed: auto, cpp, torch"),
    ],
    ids=["encoder", "cue_without_encoder", "rate_target", "optimizer", "classes", "backend"],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)
