"""The fused schedule (hand-written backward, C++ or Python wavefront kernels) against autograd."""

from __future__ import annotations

import warnings

import pytest
import torch

from snnlstm.kernels import build as _cpp
from snnlstm.backends.fused_snn import FUSED_SURROGATES, FusedConfig, fused_spiking_layer
from snnlstm.functional.surrogates import SURROGATES
from snnlstm.nn.lstm import SpikingLSTM

CASES = {
    "T2-default": dict(timesteps=2),
    "T1": dict(timesteps=1),
    "T3-all-gates-noshift": dict(timesteps=3, spiking_gates=("i", "f", "g", "o", "tanh_c"), bias_shift=False),
    "T3-all-gates-shift": dict(timesteps=3, spiking_gates=("i", "f", "g", "o", "tanh_c")),
    "T4-analog-i-hard": dict(timesteps=4, spiking_gates=("f", "g", "o", "tanh_c")),
    "T2-analog-i-standard": dict(timesteps=2, spiking_gates=("f", "g", "o", "tanh_c"), activation="standard"),
    "T2-analog-i-g-standard": dict(timesteps=2, spiking_gates=("f", "o", "tanh_c"), activation="standard"),
    "T3-analog-i-g-hard": dict(timesteps=3, spiking_gates=("f", "o", "tanh_c")),
    "T2-poisson-2layers": dict(timesteps=2, encoding="poisson", num_layers=2),
    "T5-longer-than-sequence": dict(timesteps=5, num_layers=2),
    "T2-fast_sigmoid": dict(timesteps=2, surrogate="fast_sigmoid"),
    "T2-atan": dict(timesteps=2, surrogate="atan"),
    "T2-straight_through": dict(timesteps=2, surrogate="straight_through"),
}


@pytest.fixture(params=["cpp", "python"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C++ wavefront kernels and again with the Python ones."""
    if request.param == "python":
        monkeypatch.setitem(_cpp._STATE, "module", None)
    elif _cpp.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")
    return request.param


def _run(kwargs: dict, schedule: str, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
    torch.manual_seed(0)
    model = SpikingLSTM(x.shape[-1], 6, mode="snn", schedule=schedule, leak=0.9, **kwargs).double()
    with torch.no_grad():  # larger weights: more spikes, more surrogate windows hit
        for name, p in model.named_parameters():
            if name.startswith(("weight", "bias")):
                p.mul_(3.0)
    h0 = torch.randn(model.num_layers, x.shape[0], 6, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(model.num_layers, x.shape[0], 6, dtype=torch.float64, requires_grad=True)
    xx = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # same Poisson spikes
    out = model(xx, (h0, c0))
    weights = torch.linspace(-1.0, 1.0, out.output.numel(), dtype=torch.float64).view_as(out.output)
    loss = (out.output * weights).sum() + 0.7 * out.state.c.sum() + 0.3 * out.state.h.sum()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    grads.update(x=xx.grad, h0=h0.grad, c0=c0.grad)
    counts = [{k: float(v) for k, v in s.spikes.items()} for s in out.stats]
    return out.output.detach(), grads, {"counts": counts, "c": out.state.c.detach()}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_fused_matches_autograd(case: dict, kernels: str) -> None:
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    if case.get("encoding") == "poisson":
        x = x.clamp(-1.0, 1.0)
    out_ref, g_ref, extra_ref = _run(case, "pipelined", x)
    out, g, extra = _run(case, "fused", x)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(extra["c"], extra_ref["c"], rtol=1e-12, atol=1e-12)
    assert extra["counts"] == extra_ref["counts"]
    assert g.keys() == g_ref.keys()
    assert any("threshold" in k for k in g) and any("beta" in k for k in g)
    for name in g_ref:
        # snnTorch's spike functions return float32, so the reference's surrogate gradients carry
        # float32 rounding even in a float64 model; ours are float64 throughout
        torch.testing.assert_close(g[name], g_ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_without_grad_equals_with_grad(kernels: str) -> None:
    torch.manual_seed(0)
    model = SpikingLSTM(5, 8, mode="snn", timesteps=3, num_layers=2)
    x = torch.randn(4, 7, 5)
    with torch.no_grad():  # inference keeps one membrane row per element instead of every step
        a = model(x)
    b = model(x)
    torch.testing.assert_close(a.output, b.output.detach(), rtol=0, atol=0)
    torch.testing.assert_close(a.state.c, b.state.c.detach(), rtol=0, atol=0)
    assert [float(s.ac) for s in a.stats] == [float(s.ac) for s in b.stats]


def test_every_surrogate_runs_fused() -> None:
    """The fused wavefront (torch and C++) takes every registered surrogate."""
    assert FUSED_SURROGATES == SURROGATES


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_cpp_and_python_kernels_agree(surrogate: str) -> None:
    """The C++ wavefront (surrogate selected by the registry's kernel id) and the torch one (the
    registry's derivative) give the same forward pass and the same gradients, for every surrogate."""
    if _cpp.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler")
    torch.manual_seed(0)
    model = SpikingLSTM(
        5, 16, mode="snn", timesteps=4, spiking_gates=("i", "f", "g", "o", "tanh_c"), leak=0.95, surrogate=surrogate, gamma=0.7
    )
    x = torch.randn(8, 10, 5)
    runs = []
    for backend, kernel in (("cpp", "cpp-fused"), ("torch", "torch-fused")):
        model.backend = backend
        assert model.kernel == kernel
        model.zero_grad()
        out = model(x)
        out.output.sum().backward()
        runs.append((out.output.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (a, ga), (b, gb) = runs
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # same comparisons, same float32 forward maths
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-4, atol=1e-5, msg=name)


def test_unknown_surrogate_is_rejected() -> None:
    cfg = FusedConfig(2, True, 0.25, True, False, "hard", "sigmoid", 1.0)
    z = torch.zeros(3)
    with pytest.raises(ValueError, match="surrogate 'sigmoid'.*triangular"):
        fused_spiking_layer(
            torch.zeros(2, 1, 12), torch.zeros(3, 12), torch.zeros(1, 3), torch.zeros(1, 3),
            torch.ones(9), torch.ones(9), (z[0], z[0]), z[0], (z[0], z[0]), z[0], cfg,
        )


def test_denormal_gradients_do_not_change_results(kernels: str) -> None:
    """Gradients far below float32's normal range (the kernels flush them) leave the rest intact."""
    torch.manual_seed(0)
    model = SpikingLSTM(5, 8, mode="snn", timesteps=2)
    x = torch.randn(2, 6, 5)
    out = model(x)
    (out.output.sum() * 1e-30).backward()  # pushes part of the BPTT chain into denormals
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_build_failure_falls_back_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise OSError("no compiler here")

    monkeypatch.setattr(cpp_extension, "load", broken)
    monkeypatch.delitem(_cpp._STATE, "module", raising=False)
    with pytest.warns(RuntimeWarning, match="could not build the fused C.. cell kernels.*no compiler here"):
        assert _cpp.fused_cell_kernels() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then quiet; the layer still runs (Python kernels)
        out = SpikingLSTM(3, 4, mode="snn")(torch.randn(2, 3, 3))
    assert out.output.shape == (2, 3, 4)
    monkeypatch.delitem(_cpp._STATE, "module", raising=False)  # let later tests build the real kernels


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNLSTM_NO_CPP", "1")
    monkeypatch.delitem(_cpp._STATE, "module", raising=False)
    assert _cpp.fused_cell_kernels() is None
    monkeypatch.delitem(_cpp._STATE, "module", raising=False)


def test_gradients_are_deterministic() -> None:
    """Per-thread partial sums are combined in a fixed order: two backward passes agree bit for bit."""
    torch.manual_seed(0)
    model = SpikingLSTM(5, 32, mode="snn", timesteps=2, leak=0.9)
    x = torch.randn(64, 9, 5)
    grads = []
    for _ in range(2):
        model.zero_grad()
        model(x).output.square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads):
        assert torch.equal(a, b)
