import pytest
import snntorch
import torch

from snnlstm.nn.neurons import IFNeuron, TernaryNeuron


@pytest.mark.parametrize(("threshold", "leak"), [(1.0, 1.0), (0.7, 0.9), (2.0, 0.5)], ids=["IF", "LIF0.9", "LIF0.5"])
def test_if_neuron_matches_snntorch_leaky(threshold: float, leak: float) -> None:
    ours = IFNeuron(threshold=threshold, leak=leak)
    ref = snntorch.Leaky(beta=leak, threshold=threshold, reset_mechanism="subtract", reset_delay=False)
    torch.manual_seed(0)
    x = torch.rand(30, 16) * threshold  # below 2V per step: snnTorch's delayed-reset bookkeeping agrees
    mem, ref_mem = None, torch.zeros(16)
    for t in range(30):
        spk, mem = ours(x[t], mem)
        ref_spk, ref_mem = ref(x[t], ref_mem)
        assert torch.equal(spk, ref_spk)
        torch.testing.assert_close(mem, ref_mem)


def test_neurons_are_snntorch_neurons_with_trainable_threshold_and_leak() -> None:
    n = TernaryNeuron(1.0, -0.5, leak=0.9)
    assert isinstance(n, snntorch.Leaky)
    names = {name for name, p in n.named_parameters() if p.requires_grad}
    assert names == {"threshold", "threshold_neg", "beta"}
    assert n not in snntorch.SpikingNeuron.instances  # no global registry entry
    frozen = IFNeuron(learn_threshold=False, learn_leak=False)
    assert list(frozen.parameters()) == []
    assert set(frozen.state_dict()) >= {"threshold", "beta"}


def test_gradients_reach_threshold_and_leak_through_module() -> None:
    n = IFNeuron(threshold=1.0, leak=0.95, gamma=1.0)
    x = torch.tensor([0.4, 0.7, 1.2, 0.9])
    mem, total = None, 0
    for _ in range(5):
        spk, mem = n(x, mem)
        total = total + spk.sum()
    total.backward()
    assert n.threshold.grad is not None and n.threshold.grad != 0
    assert n.beta.grad is not None and n.beta.grad != 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"leak": 1.5}, "leak"),
        ({"surrogate": "sigmoid-ish"}, "allowed"),
        ({"gamma": -1.0}, "gamma"),
    ],
    ids=["threshold", "leak", "surrogate", "gamma"],
)
def test_bad_neuron_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IFNeuron(**kwargs)


def test_ternary_rejects_positive_negative_threshold() -> None:
    with pytest.raises(ValueError, match="threshold_neg"):
        TernaryNeuron(1.0, 0.5)
