import pytest
import snntorch
import torch

from snnlstm.functional.surrogates import SURROGATES, build_surrogate, triangular


@pytest.mark.parametrize("gamma", [0.3, 1.0], ids=["gamma0.3", "gamma1"])
def test_triangular_gradient_is_windowed_triangle(gamma: float) -> None:
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5], requires_grad=True)
    spikes = triangular(gamma)(x)
    spikes.sum().backward()
    assert spikes.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    expected = gamma * torch.clamp(1 - x.detach().abs(), min=0)
    torch.testing.assert_close(x.grad, expected)
    assert x.grad[0] == 0 and x.grad[-1] == 0  # zero outside the window


def test_paper_formula_in_membrane_units() -> None:
    """dO/dU = gamma / V * max(0, 1 - |U/V - 1|) when the spike function sees U/V - 1."""
    gamma, v = 0.5, 2.0
    u = torch.tensor([0.5, 1.5, 2.0, 2.5, 3.9, 4.5], requires_grad=True)
    triangular(gamma)(u / v - 1).sum().backward()
    expected = gamma / v * torch.clamp(1 - (u.detach() / v - 1).abs(), min=0)
    torch.testing.assert_close(u.grad, expected)


def test_snntorch_triangular_defect_is_not_ours() -> None:
    """snnTorch 1.0.0's surrogate.triangular() has no window: +thr below, -thr above, everywhere."""
    x = torch.tensor([-5.0, -0.5, 0.5, 5.0], requires_grad=True)
    snntorch.surrogate.triangular()(x).sum().backward()
    snn_grad = x.grad.clone()
    x.grad = None
    triangular(1.0)(x).sum().backward()
    assert snn_grad[0] != 0 and snn_grad[-1] != 0  # the defect: gradient far from the threshold
    assert x.grad[0] == 0 and x.grad[-1] == 0  # ours vanishes outside |x| < 1


@pytest.mark.parametrize("name", SURROGATES, ids=list(SURROGATES))
def test_build_surrogate_names(name: str) -> None:
    x = torch.linspace(-1, 1, 5, requires_grad=True)
    out = build_surrogate(name, 0.3)(x)
    out.sum().backward()
    assert torch.equal(out, (x > 0).float())
    assert x.grad is not None


@pytest.mark.parametrize(("name", "gamma", "match"), [("boxcar", 0.3, "allowed"), ("triangular", 0.0, "gamma")], ids=["name", "gamma"])
def test_build_surrogate_rejects_bad_values(name: str, gamma: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_surrogate(name, gamma)
