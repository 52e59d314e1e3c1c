"""Row-parallel, event-driven LSNN kernels (fused_lsnn_sequence) against the eager loop.

Binary inputs take the event path (input currents summed from the active inputs' weight columns,
dW_in and db over the active inputs only), analog inputs the dense product; the backward's recurrent
product covers only the surrogate's window. Spikes, final states and every gradient (parameters,
initial state) must equal the eager torch loop's within rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch

from snnlstm.backends.fused_lsnn import event_input, fused_lsnn_layer, fused_lsnn_sequence
from snnlstm.kernels import build
from snnlstm.nn.lsnn import LSNN, LSNNState


@pytest.fixture
def cpp() -> None:
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def _pair(dtype: torch.dtype, **kwargs) -> tuple[LSNN, LSNN]:
    torch.manual_seed(0)
    settings = dict(n_lif=7, n_ahp=6, beta=60.0, recurrent_gain=2.0, input_gain=3.0)
    settings.update(kwargs)
    fused = LSNN(9, backend="cpp", **settings).to(dtype)
    eager = copy.deepcopy(fused)
    eager.backend = "torch"
    return fused, eager


def _inputs(kind: str, batch: int, steps: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if kind == "binary":
        return (torch.rand(batch, steps, 9, generator=g) < 0.3).to(dtype)
    return torch.rand(batch, steps, 9, generator=g, dtype=dtype)


def _start(layer: LSNN, batch: int, dtype: torch.dtype) -> LSNNState:
    """A state with spikes, membranes, AHP currents and refractory counters (from a run of the layer)."""
    with torch.no_grad():
        eager = copy.deepcopy(layer)
        eager.backend = "torch"
        return eager(torch.rand(batch, 20, 9, generator=torch.Generator().manual_seed(2), dtype=dtype)).state


def _check(fused: LSNN, eager: LSNN, x: torch.Tensor, start: LSNNState | None, dtype: torch.dtype) -> None:
    starts = []
    for _ in range(2):
        if start is None:
            starts.append(None)
        else:
            z0, (v0, a0, r0) = start.spikes, start.neurons
            starts.append(LSNNState(z0.clone().requires_grad_(), (v0.clone().requires_grad_(), a0.clone().requires_grad_(), r0.clone())))
    out_f, out_e = fused(x, starts[0]), eager(x, starts[1])
    assert fused.kernel == "cpp-fused" and eager.kernel == "torch-eager"
    assert torch.equal(out_f.output, out_e.output)
    assert out_f.output.sum() > 0
    tight = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out_f.state.spikes, out_e.state.spikes, rtol=0, atol=0)
    for a, b in zip(out_f.state.neurons, out_e.state.neurons):
        torch.testing.assert_close(a, b, rtol=tight, atol=tight)
    weights = torch.randn(out_f.output.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    for out in (out_f, out_e):
        loss = (out.output * weights).sum() + 0.3 * out.state.neurons[0].sum() + 0.7 * out.state.neurons[1].sum()
        loss.backward()
    rtol = 1e-5 if dtype == torch.float64 else 2e-3
    for (name, p), q in zip(fused.named_parameters(), eager.parameters()):
        if q.grad is None:
            assert p.grad is None or p.grad.abs().max() == 0, name
            continue
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=rtol, atol=rtol * float(q.grad.abs().max()) + 1e-12, msg=name)
    if start is not None:
        for a, b, name in zip((starts[0][0], *starts[0][1][:2]), (starts[1][0], *starts[1][1][:2]), ("z0", "v0", "a0")):
            torch.testing.assert_close(a.grad, b.grad, rtol=rtol, atol=rtol * float(b.grad.abs().max()) + 1e-12, msg=name)


CASES = {
    "default": {},
    "refractory0": {"refractory": 0},
    "refractory3_bias_threshold": {"refractory": 3, "bias": True, "learn_threshold": True},
    "dale": {"n_inhibitory": 3, "sign_constraints": True},
    "lif_only": {"n_ahp": 0},
    "ahp_only": {"n_lif": 0},
}


@pytest.mark.parametrize("kind", ["binary", "analog"])
@pytest.mark.parametrize("case", list(CASES))
def test_sequence_kernel_matches_the_eager_loop_float64(cpp: None, kind: str, case: str) -> None:
    fused, eager = _pair(torch.float64, **CASES[case])
    x = _inputs(kind, 5, 60, torch.float64)
    assert event_input(x, fused.weight_ih) == (kind == "binary")
    _check(fused, eager, x, _start(fused, 5, torch.float64), torch.float64)


@pytest.mark.parametrize("kind", ["binary", "analog"])
@pytest.mark.parametrize("batch", [1, 3, 7])  # 1 row; not a multiple of the thread count
def test_sequence_kernel_batch_sizes_and_zero_state(cpp: None, kind: str, batch: int) -> None:
    fused, eager = _pair(torch.float64, bias=True)
    _check(fused, eager, _inputs(kind, batch, 40, torch.float64), None, torch.float64)


@pytest.mark.parametrize("kind", ["binary", "analog"])
def test_sequence_kernel_float32(cpp: None, kind: str) -> None:
    fused, eager = _pair(torch.float32, bias=True, refractory=2)
    _check(fused, eager, _inputs(kind, 4, 50, torch.float32), _start(fused, 4, torch.float32), torch.float32)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sequence_kernel_equals_the_time_major_kernel(cpp: None, threads: int) -> None:
    """The event path against fused_lsnn_layer on the dense currents, for several thread counts."""
    torch.manual_seed(4)
    k, f, b, n = 11, 6, 5, 70
    x = (torch.rand(b, n, f) < 0.2).double()
    w_in, bias = torch.randn(k, f, dtype=torch.float64) * 2, torch.randn(k, dtype=torch.float64) * 0.1
    w_rec_t = torch.randn(k, k, dtype=torch.float64) * 0.5
    theta = torch.full((k,), 1.0, dtype=torch.float64)
    alpha, rho = torch.full((k,), 0.95, dtype=torch.float64), torch.full((k,), 0.99, dtype=torch.float64)
    w = torch.cat([torch.zeros(5), torch.full((6,), 0.2)]).double()
    zero = torch.zeros(b, k, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (w_in, bias, w_rec_t, theta, alpha, rho, w)]
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = []
        for which in ("sequence", "layer"):
            params = [t.detach().clone().requires_grad_() for t in leaves]
            wi, bi, wr, th, al, rh, ww = params
            if which == "sequence":
                z, v, a, r = fused_lsnn_sequence(x, wi, bi, wr, zero, zero, zero, zero, th, al, rh, ww, 0.3, 2)
            else:
                cur = torch.nn.functional.linear(x, wi, bi).transpose(0, 1)
                z, v, a, r = fused_lsnn_layer(cur, wr, zero, zero, zero, zero, th, al, rh, ww, 0.3, 2)
                z = z.transpose(0, 1)
            (z * torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]).sum().add(v.sum() + a.sum()).backward()
            results.append((z, v, a, r, [p.grad for p in params]))
    finally:
        torch.set_num_threads(threads_before)
    (z1, v1, a1, r1, g1), (z2, v2, a2, r2, g2) = results
    assert torch.equal(z1, z2) and z1.sum() > 0 and torch.equal(r1, r2)
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a1, a2, rtol=1e-12, atol=1e-12)
    for p, q in zip(g1, g2):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_event_path_is_chosen_only_for_binary_inputs_without_gradient(cpp: None) -> None:
    w = torch.randn(4, 3)
    spikes = (torch.rand(2, 5, 3) < 0.5).float()
    assert event_input(spikes, w)
    assert not event_input(spikes * 0.5, w)
    assert not event_input(spikes.double(), w)  # dtype mismatch: the dense path (and its error)
    assert not event_input(spikes.clone().requires_grad_(), w)
    with torch.no_grad():
        assert event_input(spikes.clone().requires_grad_(), w)
    with pytest.raises(ValueError, match="no gradient for x"):
        z = torch.zeros(2, 4)
        p = torch.ones(4)
        fused_lsnn_sequence(spikes.clone().requires_grad_(), w, None, torch.zeros(4, 4), z, z, z, z, p, p * 0.9, p * 0.9, p * 0, 0.3, 1, events=True)


def test_binary_input_that_needs_a_gradient_takes_the_dense_path(cpp: None) -> None:
    fused, eager = _pair(torch.float64)
    x = _inputs("binary", 3, 30, torch.float64)
    xf, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    fused(xf).output.sum().backward()
    eager(xe).output.sum().backward()
    # the eager surrogate runs in float32 inside snnTorch: ~1e-7 relative
    torch.testing.assert_close(xf.grad, xe.grad, rtol=1e-5, atol=1e-6 * float(xe.grad.abs().max()))


def test_no_gradients_are_accumulated_for_frozen_weights(cpp: None) -> None:
    fused, eager = _pair(torch.float64, bias=True)
    for layer in (fused, eager):
        layer.weight_ih.requires_grad_(False)
        layer.weight_hh.requires_grad_(False)
    x = _inputs("binary", 3, 30, torch.float64)
    _check(fused, eager, x, None, torch.float64)
    assert fused.weight_ih.grad is None and fused.weight_hh.grad is None and fused.bias.grad is not None


@pytest.mark.parametrize("kind", ["binary", "analog"])
def test_loss_on_the_final_state_only(cpp: None, kind: str) -> None:
    """No gradient reaches the spikes output (the kernel's grad_z is absent)."""
    fused, eager = _pair(torch.float64, bias=True)
    x = _inputs(kind, 3, 40, torch.float64)
    for layer in (fused, eager):
        out = layer(x)
        (out.state.neurons[0].sum() + 0.5 * out.state.neurons[1].sum()).backward()
    for (name, p), q in zip(fused.named_parameters(), eager.parameters()):
        if q.grad is None:
            assert p.grad is None or p.grad.abs().max() == 0, name
            continue
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5 * float(q.grad.abs().max()) + 1e-12, msg=name)
