"""LSNN layer: fused C++ loop against the eager loop, the two neuron forms, Dale's law, stats, readout."""

from __future__ import annotations

import copy

import pytest
import torch

from snnlstm.kernels import build
from snnlstm.nn.lsnn import LSNN, LeakyReadout
from snnlstm.measure.metrics import spike_stats


@pytest.fixture
def cpp() -> None:
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def _pair(**kwargs):
    """The same double-precision layer on the C++ backend and on the torch (eager loop) backend."""
    torch.manual_seed(0)
    fused = LSNN(5, n_lif=7, n_ahp=6, beta=60.0, recurrent_gain=2.0, input_gain=3.0, backend="cpp", **kwargs).double()
    eager = copy.deepcopy(fused)
    eager.backend = "torch"
    return fused, eager


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"refractory": 0}, {"refractory": 3, "learn_threshold": True, "bias": True}, {"n_inhibitory": 3, "sign_constraints": True}],
    ids=["default", "no_refractory", "refractory3_threshold_bias", "dale"],
)
def test_fused_loop_matches_the_eager_loop(cpp: None, kwargs: dict) -> None:
    fused, eager = _pair(**kwargs)
    x = torch.rand(3, 50, 5, dtype=torch.float64)
    with torch.no_grad():  # start from a state with spikes, membranes and AHP currents
        start = eager(torch.rand(3, 20, 5, dtype=torch.float64)).state
    assert start.spikes.sum() > 0
    out_f, out_e = fused(x, start), eager(x, start)
    assert (fused.kernel, eager.kernel) == ("cpp-fused", "torch-eager")
    assert torch.equal(out_f.output, out_e.output) and 0.02 < out_f.output.mean() < 0.5
    for a, b in zip(out_f.state.neurons, out_e.state.neurons):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    weights = torch.randn_like(out_f.output)
    losses = [(o.output * weights).sum() + 0.3 * o.state.neurons[0].sum() + 0.7 * o.state.neurons[1].sum() for o in (out_f, out_e)]
    for loss in losses:
        loss.backward()
    for (name, p), q in zip(fused.named_parameters(), eager.parameters()):
        if q.grad is None:
            assert p.grad is None or p.grad.abs().max() == 0, name
            continue
        # the eager loop's surrogate runs in float32 inside snnTorch: agree to ~1e-7 relative
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6 * float(q.grad.abs().max()), msg=name)


def test_alif_form_layer_spikes_like_the_ahp_form() -> None:
    torch.manual_seed(1)
    with torch.device("cpu"):
        torch.set_default_dtype(torch.float64)
        try:
            ahp = LSNN(4, n_lif=5, n_ahp=5, beta=40.0, input_gain=2.0)
            alif = LSNN(4, n_lif=5, n_ahp=5, beta=40.0, input_gain=2.0, neuron_form="alif")
        finally:
            torch.set_default_dtype(torch.float32)
    alif.load_state_dict(ahp.state_dict(), strict=False)
    x = torch.rand(2, 300, 4, dtype=torch.float64)
    z_ahp, z_alif = ahp(x).output, alif(x).output
    assert z_ahp[..., 5:].sum() > 50 and torch.equal(z_ahp, z_alif)


def test_recurrent_weights_have_no_self_connections_and_dale_signs() -> None:
    layer = LSNN(3, n_lif=6, n_ahp=4, n_inhibitory=2, sign_constraints=True)
    w = layer.recurrent_weight()
    assert torch.all(w.diagonal() == 0)
    off = ~torch.eye(10, dtype=torch.bool)
    assert torch.all(w[:, 4:6][off[:, 4:6]] <= 0)  # columns = presynaptic: LIF 4, 5 inhibitory
    assert torch.all(w[:, :4][off[:, :4]] >= 0) and torch.all(w[:, 6:][off[:, 6:]] >= 0)


@pytest.mark.parametrize("readout", [0, 10], ids=["no-readout", "readout10"])
def test_stats_count_spikes_per_population_and_synops(readout: int) -> None:
    layer = LSNN(3, n_lif=4, n_ahp=2, input_gain=4.0, beta=10.0, readout_size=readout)
    x = (torch.rand(2, 30, 3) < 0.3).float()  # binary input: accumulates per input spike
    out = layer(x)
    (stats,) = out.stats
    assert float(stats.spikes["lif"]) == out.output[..., :4].sum().item()
    assert float(stats.spikes["ahp"]) == out.output[..., 4:].sum().item()
    assert stats.population_steps == {"lif": 2 * 30 * 4, "ahp": 2 * 30 * 2}
    # each spike fans out to the 5 other neurons and the readout; each input spike to all 6 neurons
    assert float(stats.ac) == out.output.sum().item() * (5 + readout) + x.sum().item() * 6
    # leak of every neuron, the AHP current of the 2 AHP neurons and the readout membranes, per step
    assert float(stats.mac) == 2 * 30 * (6 + 2 + readout)
    # iso LSTM(6) per step, plus its linear head of `readout` outputs on the last h
    assert stats.ann_mac == 2 * 30 * (4 * 6 * (3 + 6) + 3 * 6) + 2 * readout * 6
    assert stats.ann_ac == 2 * 30 * 5 * 6 + 2 * readout
    keys = spike_stats(out.stats)
    assert keys["l0.ahp/rate"].item() == pytest.approx(out.output[..., 4:].mean().item())
    assert keys["rate"].item() == pytest.approx(out.output.mean().item())


def test_stats_count_analog_inputs_as_multiply_accumulates() -> None:
    layer = LSNN(3, n_lif=4, n_ahp=2, input_gain=4.0, beta=10.0, readout_size=5)
    x = torch.rand(2, 30, 3) + 0.01  # analog: every input drives every neuron with a MAC per step
    out = layer(x)
    (stats,) = out.stats
    assert float(stats.ac) == out.output.sum().item() * (5 + 5)
    assert float(stats.mac) == 2 * 30 * (3 * 6 + 6 + 2 + 5)
    assert stats.ac.dtype == stats.mac.dtype == out.output.dtype


def test_hooks_receive_the_stats_of_every_forward() -> None:
    layer = LSNN(2, n_lif=3, n_ahp=3)
    seen = []
    handle = layer.register_stats_hook(lambda module, stats: seen.append(stats))
    layer(torch.rand(1, 4, 2))
    handle.remove()
    layer(torch.rand(1, 4, 2))
    assert len(seen) == 1


def test_state_carries_over_between_calls() -> None:
    layer = LSNN(2, n_lif=3, n_ahp=3, input_gain=3.0).double()
    x = torch.rand(2, 40, 2, dtype=torch.float64)
    whole = layer(x).output
    first = layer(x[:, :25])
    second = layer(x[:, 25:], first.state)
    assert torch.equal(torch.cat([first.output, second.output], 1), whole)


def test_readout_closed_form_equals_the_leaky_loop() -> None:
    readout = LeakyReadout(6, 3, tau_out=5.0).double()
    z = (torch.rand(2, 9, 6, dtype=torch.float64) < 0.4).double()
    y = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(9):
        y = 0.8 * y + readout.linear(z[:, t])
    torch.testing.assert_close(readout(z), y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_lif": -1}, "n_lif must be an integer >= 0"),
        ({"n_lif": 0, "n_ahp": 0}, "at least one neuron"),
        ({"n_inhibitory": 2}, "needs sign_constraints"),
        ({"n_lif": 1, "n_inhibitory": 2, "sign_constraints": True}, "cannot exceed n_lif"),
        ({"neuron_form": "izhikevich"}, "allowed: ahp, alif"),
        ({"schedule": "cuda"}, "allowed: fused, eager"),
        ({"tau_a": 0.0}, "tau_a must be a time constant"),
        ({"beta": -1.0}, "beta"),
        ({"readout_size": -2}, "readout_size must be an integer >= 0"),
    ],
    ids=["negative_count", "empty", "inhibitory_without_signs", "too_many_inhibitory", "form", "schedule", "tau_a", "beta", "readout_size"],
)
def test_bad_settings_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LSNN(3, **kwargs)


def test_bad_inputs_are_rejected() -> None:
    layer = LSNN(3, n_lif=2, n_ahp=2)
    with pytest.raises(ValueError, match=r"\[batch, steps, 3\]"):
        layer(torch.rand(2, 5, 4))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((1, 2, 3), float("nan")))
