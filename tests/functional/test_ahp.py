"""AHP neuron and its adaptive-threshold twin: hand-computed traces, equivalence, gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from snnlstm.nn.adaptive import AHPNeuron, ALIFNeuron
from snnlstm.functional.ahp import AHPState, ahp_step, ahp_strength_from_adaptation, check_tau, tau_from_decay
from snnlstm.functional.surrogates import build_surrogate


def _run(neuron, current: torch.Tensor):
    state, spikes, mems, ahps = None, [], [], []
    for i in current:
        z, state = neuron(i, state)
        spikes.append(z)
        mems.append(state.mem)
        ahps.append(state[1])
    return torch.stack(spikes), torch.stack(mems), torch.stack(ahps)


def test_ahp_neuron_matches_hand_computed_trace() -> None:
    """theta 1, tau_v 2 (alpha 0.5), tau_a 4 (rho 0.75), w 0.1, I = 0.6, one refractory step."""
    neuron = AHPNeuron(threshold=1.0, tau_v=2.0, tau_a=4.0, ahp_strength=0.1, refractory=1).double()
    spikes, mems, ahps = _run(neuron, torch.full((7, 1), 0.6, dtype=torch.float64))
    # V: 0.6, 0.9, 1.05 -> spike, reset 0; refractory step held at 0; then V = 0.5 V + 0.6 + A
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 0, 0, 0]
    expected_v = [0.6, 0.9, 0.0, 0.0, 0.6 - 0.075, 0.5 * 0.525 + 0.6 - 0.05625, 0.5 * 0.80625 + 0.6 - 0.0421875]
    assert mems.flatten().tolist() == pytest.approx(expected_v, abs=1e-7)  # w = 0.1 in float32
    # AHP current for the next step: -w after the spike, then decaying by rho
    expected_a = [0.0, 0.0, -0.1, -0.075, -0.05625, -0.0421875, -0.031640625]
    assert ahps.flatten().tolist() == pytest.approx(expected_a, abs=1e-7)


@pytest.mark.parametrize("refractory", [0, 1, 3], ids=["r0", "r1", "r3"])
def test_refractory_steps_hold_the_membrane_at_zero(refractory: int) -> None:
    neuron = AHPNeuron(threshold=1.0, tau_v=1.0, tau_a=10.0, refractory=refractory).double()  # alpha 0: V = I
    spikes, mems, _ = _run(neuron, torch.full((8, 1), 1.5, dtype=torch.float64))
    period = refractory + 1  # a strong constant input spikes as soon as the neuron may
    assert spikes.flatten().tolist() == [1.0 if t % period == 0 else 0.0 for t in range(8)]
    assert mems.abs().max() == 0.0


def test_plain_lif_without_ahp_current() -> None:
    neuron = AHPNeuron(threshold=1.0, tau_v=2.0, ahp_strength=0.0).double()
    _, _, ahps = _run(neuron, torch.full((20, 3), 0.8, dtype=torch.float64))
    assert ahps.abs().max() == 0.0


@pytest.mark.parametrize("refractory", [1, 2], ids=["r1", "r2"])
def test_ahp_and_alif_forms_give_identical_spike_trains(refractory: int) -> None:
    """w = beta (1/tau_v - 1/tau_a) / (tau_a - 1): identical spikes and V = U - beta b at every step."""
    torch.manual_seed(0)
    tau_v, tau_a, beta = 20.0, 700.0, 3.0
    with torch.device("cpu"):
        torch.set_default_dtype(torch.float64)
        try:
            ahp = AHPNeuron(1.0, tau_v, tau_a, ahp_strength_from_adaptation(beta, tau_v, tau_a), refractory=refractory)
            alif = ALIFNeuron(1.0, tau_v, tau_a, beta, refractory=refractory)
        finally:
            torch.set_default_dtype(torch.float32)
    current = torch.rand(3000, 2, 16, dtype=torch.float64) * 0.25
    sa = sb = None
    za, zb = [], []
    for i in current:
        offset = 0.0 if sb is None else beta * sb.adaptation  # the threshold offset this step uses
        z1, sa = ahp(i, sa)
        z2, sb = alif(i, sb)
        za.append(z1)
        zb.append(z2)
        torch.testing.assert_close(sa.mem, sb.mem - offset, atol=1e-9, rtol=0)
    za, zb = torch.stack(za), torch.stack(zb)
    assert za.sum() > 1000  # the adaptation is exercised
    assert torch.equal(za, zb)


def test_exact_ahp_strength_is_the_papers_relation_over_rho() -> None:
    tau_v, tau_a, beta = 20.0, 700.0, 1.8
    paper = beta * (1 / (tau_a * tau_v) - 1 / tau_a**2)
    assert ahp_strength_from_adaptation(beta, tau_v, tau_a) == pytest.approx(paper / (1 - 1 / tau_a), rel=1e-12)


def test_gradients_reach_the_trainable_time_constants_and_ahp_strength() -> None:
    neuron = AHPNeuron(threshold=1.0, tau_v=5.0, tau_a=50.0, ahp_strength=0.2, learn_tau=True, learn_ahp=True, learn_threshold=True)
    current = torch.rand(60, 4, 8) * 0.6
    spikes, mems, _ = _run(neuron, current)
    (spikes.sum() + mems.sum()).backward()
    for name in ("beta", "slow_decay", "ahp_strength", "threshold"):
        grad = getattr(neuron, name).grad
        assert grad is not None and grad.abs() > 0, name
    assert neuron.tau_v == pytest.approx(5.0, rel=1e-5) and neuron.tau_a == pytest.approx(50.0, rel=1e-4)


def test_trained_decays_stay_in_range() -> None:
    neuron = AHPNeuron(tau_v=5.0, tau_a=50.0, learn_tau=True)
    with torch.no_grad():
        neuron.beta.fill_(1.7)
        neuron.slow_decay.fill_(-0.3)
    assert float(neuron.mem_decay().detach()) == 1.0 and float(neuron.slow_decay_value().detach()) == 0.0
    assert math.isinf(neuron.tau_v)


def test_functional_step_is_pure() -> None:
    state = AHPState(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    spike_fn = build_surrogate("triangular", 0.3)
    z1, s1 = ahp_step(torch.full((2, 3), 2.0), state, 1.0, 0.9, 0.99, 0.5, spike_fn)
    z2, s2 = ahp_step(torch.full((2, 3), 2.0), state, 1.0, 0.9, 0.99, 0.5, spike_fn)
    assert torch.equal(z1, z2) and all(torch.equal(a, b) for a, b in zip(s1, s2))
    assert state.mem.abs().sum() == 0  # the input state is untouched


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tau_v": 0.0}, "tau_v must be a time constant >= 1"),
        ({"tau_v": -5.0}, "tau_v must be a time constant >= 1"),
        ({"tau_a": 0.5}, "tau_a must be a time constant >= 1"),
        ({"threshold": 0.0}, "threshold must be > 0"),
        ({"ahp_strength": -0.1}, "ahp_strength"),
        ({"refractory": -1}, "refractory must be an integer"),
    ],
    ids=["tau_v_zero", "tau_v_negative", "tau_a_below_one", "threshold", "ahp_strength", "refractory"],
)
def test_bad_parameters_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AHPNeuron(**kwargs)


def test_bad_alif_and_mapping_parameters() -> None:
    with pytest.raises(ValueError, match="beta"):
        ALIFNeuron(beta=-1.0)
    with pytest.raises(ValueError, match="tau_a must be > 1"):
        ahp_strength_from_adaptation(1.0, 20.0, 1.0)
    with pytest.raises(ValueError, match="tau_v must be a time constant"):
        check_tau("tau_v", float("nan"))
    assert float(tau_from_decay(torch.tensor(0.95))) == pytest.approx(20.0)


@pytest.mark.parametrize("name", ["slow_decay", "ahp_strength"], ids=["tau_a", "ahp_strength"])
def test_projection_brings_trained_values_back_into_range_where_they_keep_a_gradient(name: str) -> None:
    neuron = AHPNeuron(tau_v=5.0, tau_a=50.0, ahp_strength=0.2, learn_tau=True, learn_ahp=True, learn_threshold=True)
    bound, beyond = {"slow_decay": (1.0, 1.02), "ahp_strength": (0.0, -0.01)}[name]
    with torch.no_grad():  # what one large optimiser step can do
        getattr(neuron, name).fill_(beyond)
        neuron.threshold.fill_(-1.0)
    neuron.project_parameters()
    assert float(getattr(neuron, name).detach()) == bound and float(neuron.threshold.detach()) > 0
    spikes, mems, _ = _run(neuron, torch.rand(40, 3, 5) * 2.0)
    (spikes.sum() + mems.sum()).backward()
    assert getattr(neuron, name).grad.abs() > 0  # on the bound, not stuck beyond it
