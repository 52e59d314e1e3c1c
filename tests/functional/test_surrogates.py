import pytest
import snntorch
import torch

from snnlstm.functional.surrogates import (
    REGISTRY,
    SURROGATES,
    build_surrogate,
    get_surrogate,
    surrogate_derivative,
    triangular,
)


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


def _grid(dtype: torch.dtype) -> torch.Tensor:
    """x on a coarse grid plus points at and next to 0 and the triangle's window edges +-1."""
    eps = torch.finfo(dtype).eps * 4
    edges = [c + d for c in (-1.0, 0.0, 1.0) for d in (-eps, 0.0, eps)]
    return torch.cat([torch.linspace(-2.5, 2.5, 101, dtype=dtype), torch.tensor(edges, dtype=dtype)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("gamma", [0.3, 1.0], ids=["gamma0.3", "gamma1"])
@pytest.mark.parametrize("name", SURROGATES, ids=list(SURROGATES))
def test_registry_derivative_is_snntorch_autograd(name: str, gamma: float, dtype: torch.dtype) -> None:
    """The closed form the fused backward uses is exactly the gradient of the snnTorch spike function."""
    x = _grid(dtype).requires_grad_(True)
    build_surrogate(name, gamma)(x).sum().backward()
    derivative = get_surrogate(name).derivative(x.detach(), gamma)
    assert derivative.dtype == dtype and derivative.shape == x.shape
    torch.testing.assert_close(derivative, x.grad, rtol=0, atol=0)
    torch.testing.assert_close(surrogate_derivative(x.detach(), name, gamma), x.grad, rtol=0, atol=0)


def test_registry_derivatives_by_hand() -> None:
    """Values at x = 0, 0.5, -1 and 2: the registry's formulas, not merely self-consistent ones."""
    x = torch.tensor([0.0, 0.5, -1.0, 2.0], dtype=torch.float64)
    expected = {
        "triangular": [0.3, 0.15, 0.0, 0.0],
        "fast_sigmoid": [1.0, 1 / 13.5**2, 1 / 26.0**2, 1 / 51.0**2],
        "atan": [1.0, 1 / (1 + (torch.pi / 2) ** 2), 1 / (1 + torch.pi**2), 1 / (1 + (2 * torch.pi) ** 2)],
        "straight_through": [1.0, 1.0, 1.0, 1.0],
    }
    assert expected.keys() == set(SURROGATES)
    for name, values in expected.items():
        torch.testing.assert_close(surrogate_derivative(x, name, 0.3), torch.tensor(values, dtype=torch.float64), msg=name)


def test_registry_entries_are_consistent() -> None:
    """One entry per name, keyed by its name; kernel ids unique and 0..n-1 (the C++ dispatch's range)."""
    assert SURROGATES == tuple(REGISTRY)
    assert all(REGISTRY[name].name == name for name in SURROGATES)
    ids = [REGISTRY[name].kernel_id for name in SURROGATES]
    assert sorted(ids) == list(range(len(SURROGATES)))
    with pytest.raises(ValueError, match="unknown surrogate 'boxcar'; allowed: triangular"):
        get_surrogate("boxcar")
