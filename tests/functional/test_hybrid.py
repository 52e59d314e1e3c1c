"""Pure functions of Ponghiran & Roy's ModifiedLSTMCell and hybrid analog-spiking cell."""

from __future__ import annotations

import pytest
import torch

from snnlstm.functional import hybrid
from snnlstm.kernels import build as _build
from snnlstm.functional.hybrid import (
    CAND_THRESHOLD,
    GATE_THRESHOLD,
    generator_spike_train,
    hybrid_gate_rates,
    hybrid_cell_step,
    hybrid_membrane_counts,
    modified_cell_step,
    modified_sigmoid,
    modified_tanh,
    quantize_bias,
    quantize_weight,
    signed_if_step,
    soft_if_step,
    spike_generator_step,
)

PATHS = {"torch": False, "cpp": True}


@pytest.fixture(params=list(PATHS))
def use_cpp(request: pytest.FixtureRequest) -> bool:
    """Run a test through the torch path and again through the C++ kernels (``use_cpp=True``)."""
    if PATHS[request.param] and _build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the hybrid C++ kernels could not be built")
    return PATHS[request.param]


@pytest.fixture(params=[("torch", torch.float32), ("torch", torch.float64), ("cpp", torch.float32)],
                ids=["torch-float32", "torch-float64", "cpp-float32"])
def path_dtype(request: pytest.FixtureRequest) -> tuple[bool, torch.dtype]:
    """``(use_cpp, dtype)``: the torch path in both float types, the C++ kernels in float32 (all they take)."""
    path, dtype = request.param
    if PATHS[path] and _build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the hybrid C++ kernels could not be built")
    return PATHS[path], dtype


@pytest.fixture
def no_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call of the compiled kernels fails the test (the torch path must not touch them)."""

    def forbidden() -> None:
        raise AssertionError("the torch path called the compiled kernels")

    monkeypatch.setattr(_build, "fused_cell_kernels", forbidden)


def _membrane_counts_by_steps(current: torch.Tensor) -> torch.Tensor:
    """Reference counts [..., 5H] (i, f, c~ V+, o, c~ V-): soft_if_step / signed_if_step iterated."""
    ci, cf, cg, co = current.chunk(4, dim=-1)
    start = torch.ones_like(ci[0])
    v = [start.clone() for _ in range(5)]
    counts = [torch.zeros_like(start) for _ in range(5)]
    for t in range(current.shape[0]):
        for k, cur in ((0, ci[t]), (1, cf[t]), (3, co[t])):
            v[k], s = soft_if_step(v[k], cur, GATE_THRESHOLD)
            counts[k] = counts[k] + s
        v[2], v[4], s = signed_if_step(v[2], v[4], cg[t], CAND_THRESHOLD)
        counts[2], counts[4] = counts[2] + (s > 0).to(s.dtype), counts[4] + (s < 0).to(s.dtype)
    return torch.cat(counts, dim=-1)


def test_modified_activations_values_and_gradients() -> None:
    z = torch.tensor([-3.0, -2.0, -1.0, 0.0, 1.0, 1.5, 3.0], requires_grad=True)
    assert modified_sigmoid(z).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 0.875, 1.0]
    assert modified_tanh(z).tolist() == [-1.0, -1.0, -0.5, 0.0, 0.5, 0.75, 1.0]
    (g_sig,) = torch.autograd.grad(modified_sigmoid(z).sum(), z)
    (g_tanh,) = torch.autograd.grad(modified_tanh(z).sum(), z)
    inside = torch.tensor([False, True, True, True, True, True, False])  # clamp passes the gradient at the edges
    assert g_sig.tolist() == torch.where(inside, 0.25, 0.0).tolist()
    assert g_tanh.tolist() == torch.where(inside, 0.5, 0.0).tolist()


@pytest.mark.parametrize("clamp_c", [False, True], ids=["free-c", "clamped-c"])
def test_modified_cell_step_by_hand(clamp_c: bool) -> None:
    z = torch.tensor([[2.0, 6.0, 4.0, 0.0]])  # H = 1: i = 1, f = 1, c~ = 1, o = 0.5
    c_prev = torch.tensor([[0.5]])
    h, c = modified_cell_step(z, c_prev, clamp_c=clamp_c)
    assert c.item() == (1.0 if clamp_c else 1.5)  # the carried state is clamped ...
    assert h.item() == 0.5 * 1.5 / 2  # ... but h sees the unclamped c' = 1.5, as in the reference


def test_quantization_formulas_on_hand_made_tensors() -> None:
    w = torch.tensor([0.0, 0.5, -0.25, 0.0039, 0.0041, 0.999, -2.0])
    assert quantize_weight(w).tolist() == [0.0, 128.0, -64.0, 0.0, 2.0, 254.0, -254.0]
    b = torch.tensor([0.5, 1.0, -0.5, 0.0, 0.25, 0.1, -1.0, 0.0])  # H = 2, blocks i, f, c~, o
    assert quantize_bias(b).tolist() == [640.0, 768.0, 384.0, 512.0, 64.0, 26.0, 256.0, 512.0]


@pytest.mark.parametrize("timesteps", [8, 32, 128, 512], ids=lambda t: f"T{t}")
def test_spike_generator_rate_matches_value(timesteps: int) -> None:
    values = torch.linspace(-1.0, 1.0, 81)
    u = torch.round(2048 * values)
    v, count = torch.ones_like(u), torch.zeros_like(u)
    for _ in range(timesteps):
        v, s = spike_generator_step(v, u)
        count += s
    assert ((count / timesteps - values).abs() <= 1.0 / timesteps + 1.0 / 4096).all()
    assert (torch.sign(count) * torch.sign(values) >= 0).all()  # spikes carry the value's sign


@pytest.mark.parametrize("timesteps", [1, 7, 300], ids=lambda t: f"T{t}")
def test_generator_train_is_the_iterated_step(timesteps: int, path_dtype: tuple[bool, torch.dtype]) -> None:
    use_cpp, dtype = path_dtype
    edge = [0.0, 1.0, -1.0, 1.5, -3.0, 0.9999, 1 / 2048, 0.5 / 2048, 1.5 / 2048, 12.0]  # > 1 saturates at 1 spike/step
    values = torch.cat([torch.rand(2, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                        torch.tensor(edge).view(2, -1).repeat(1, 4)], dim=-1).to(dtype)
    u = torch.round(2048 * values)
    v, steps = torch.ones_like(u), []
    for _ in range(timesteps):
        v, s = spike_generator_step(v, u)
        steps.append(s)
    train = generator_spike_train(values, timesteps, use_cpp=use_cpp)
    assert train.dtype == dtype and torch.equal(train, torch.stack(steps))
    assert generator_spike_train(values[0, 0], timesteps, use_cpp=use_cpp).shape == (timesteps,)  # 0-dim input


@pytest.mark.parametrize("shape", [(5, 3, 16), (9, 2, 4, 8), (3, 0, 8)], ids=["T5-B3-H4", "T9-2x4-H2", "T3-empty"])
def test_gate_counts_are_the_iterated_neuron_steps(shape: tuple[int, ...], path_dtype: tuple[bool, torch.dtype]) -> None:
    use_cpp, dtype = path_dtype
    current = torch.randint(-3000, 3000, shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    current[:, ..., 0] = 1023.0  # V = 1 + 1023 sits at the threshold: no spike (strict comparison)
    expected = _membrane_counts_by_steps(current)
    assert torch.equal(hybrid_membrane_counts(current, use_cpp=use_cpp), expected)
    assert torch.equal(hybrid_gate_rates(current, use_cpp=use_cpp), hybrid._counts_to_rates(expected, shape[0]))


@pytest.mark.parametrize("shape", [(4, 3, 10), (8,)], ids=["width-not-4H", "no-gate-axis"])
def test_gate_rates_reject_a_current_without_four_gates(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="4H"):
        hybrid_gate_rates(torch.zeros(shape))


@pytest.mark.parametrize("timesteps", [16, 64, 256], ids=lambda t: f"T{t}")
def test_if_gate_rates_approach_modified_activations(timesteps: int) -> None:
    z = torch.linspace(-3.0, 3.0, 61)
    v, count = torch.ones_like(z), torch.zeros_like(z)
    vp, vn, signed = torch.ones_like(z), torch.ones_like(z), torch.zeros_like(z)
    for _ in range(timesteps):  # the mean currents of the converted cell: 256 (z + 2) and 256 z
        v, s = soft_if_step(v, 256 * (z + 2), GATE_THRESHOLD)
        vp, vn, g = signed_if_step(vp, vn, 256 * z, CAND_THRESHOLD)
        count += s
        signed += g
    assert ((count / timesteps - modified_sigmoid(z)).abs() <= 1.0 / timesteps).all()
    assert ((signed / timesteps - modified_tanh(z)).abs() <= 1.0 / timesteps).all()


@pytest.mark.parametrize("timesteps", [1, 13, 200], ids=lambda t: f"T{t}")
def test_event_driven_cell_counts_like_the_dense_path(timesteps: int) -> None:
    """The C++ kernel adds only the synapse rows of the inputs that spiked; the counts, input spikes,
    h and c equal the dense torch path's (generator train, one matmul, gate counter) exactly."""
    if _build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the hybrid C++ kernels could not be built")
    gen = torch.Generator().manual_seed(3)
    batch, inputs, hidden = 7, 5, 6
    wq = quantize_weight((torch.rand(4 * hidden, inputs + hidden, generator=gen) - 0.5) * 2.5)
    bq = quantize_bias((torch.rand(4 * hidden, generator=gen) - 0.5) * 2)
    x = torch.rand(batch, inputs, generator=gen) * 3 - 1.5  # beyond +-1 too: one spike a step
    x[0, :3] = torch.tensor([0.0, 1 / 2048, 1.0])
    h_prev = torch.rand(batch, hidden, generator=gen) * 2 - 1
    c_prev = torch.rand(batch, hidden, generator=gen) * 2 - 1
    out = hybrid_cell_step(x, h_prev, c_prev, wq, bq, timesteps, clamp_c=True, use_cpp=True)
    dense = hybrid_cell_step(x, h_prev, c_prev, wq, bq, timesteps, clamp_c=True, use_cpp=False)
    spikes = generator_spike_train(torch.cat([x, h_prev], -1), timesteps)
    current = torch.addmm(bq, spikes.flatten(0, 1), wq.t()).view(timesteps, batch, -1)
    counts = _membrane_counts_by_steps(current)
    rates = hybrid._counts_to_rates(counts, timesteps)
    assert torch.equal(out.rates, rates) and torch.equal(dense.rates, rates)
    gate_spikes = hybrid._counts_to_gate_spikes(counts)
    assert torch.equal(out.gate_spikes, gate_spikes) and torch.equal(dense.gate_spikes, gate_spikes)
    assert torch.equal(out.input_spikes, spikes.abs().sum(dim=(0, -1)))
    assert torch.equal(dense.input_spikes, out.input_spikes)
    assert torch.equal(out.h, dense.h) and torch.equal(out.c, dense.c)
    ref = hybrid_cell_step(x.double(), h_prev.double(), c_prev.double(), wq.double(), bq.double(), timesteps, clamp_c=True)
    torch.testing.assert_close(out.h.double(), ref.h)  # the torch path runs float64 too
    torch.testing.assert_close(out.c.double(), ref.c)


def test_hybrid_cell_approaches_modified_cell() -> None:
    gen = torch.Generator().manual_seed(0)
    batch, inputs, hidden = 16, 6, 5
    weight = (torch.rand(4 * hidden, inputs + hidden, generator=gen) - 0.5) * 0.8
    bias = (torch.rand(4 * hidden, generator=gen) - 0.5) * 0.5
    x = torch.rand(batch, inputs, generator=gen)
    h_prev = torch.rand(batch, hidden, generator=gen) * 2 - 1
    c_prev = torch.rand(batch, hidden, generator=gen) * 2 - 1
    wq, bq = quantize_weight(weight), quantize_bias(bias)
    z = torch.cat([x, h_prev], -1) @ (wq / 256).T + (bq - quantize_bias(torch.zeros_like(bias))) / 256
    h_ref, c_ref = modified_cell_step(z, c_prev)
    errors = []
    for timesteps in (4, 16, 64, 256):
        out = hybrid_cell_step(x, h_prev, c_prev, wq, bq, timesteps)
        assert out.h.shape == (batch, hidden) and out.rates.shape == (batch, 4 * hidden)
        errors.append(max((out.h - h_ref).abs().max().item(), (out.c - c_ref).abs().max().item()))
    assert errors[-1] < 0.05 and errors[-1] < errors[0] / 4, errors  # measured: 0.27, 0.060, 0.030, 0.005


def test_candidate_firing_both_ways_counts_two_spikes(path_dtype: tuple[bool, torch.dtype]) -> None:
    """c~ current +1100 then -2300 (H = 1): V+ fires at step 1 and V- at step 2. The rate is the net
    0, but the neuron spiked twice."""
    use_cpp, dtype = path_dtype
    current = torch.zeros(2, 1, 4, dtype=dtype)
    current[:, 0, 2] = torch.tensor([1100.0, -2300.0])
    counts = hybrid_membrane_counts(current, use_cpp=use_cpp)
    assert counts.tolist() == [[0.0, 0.0, 1.0, 0.0, 1.0]]  # i, f, c~ V+, o, c~ V-
    assert hybrid_gate_rates(current, use_cpp=use_cpp).tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert hybrid._counts_to_gate_spikes(counts).tolist() == [[0.0, 0.0, 2.0, 0.0]]


def test_cell_gate_spikes_count_every_spike_of_both_membranes(use_cpp: bool) -> None:
    """The c~ spike count is the spikes of V+ plus those of V- (iterated signed_if_step), not |V+ - V-|."""
    # both membranes of one neuron fire only where the c~ current's running sum swings by more than
    # 2 thresholds within an element (rare: the generators are periodic); this seed has such a neuron
    gen = torch.Generator().manual_seed(9)
    batch, inputs, hidden, timesteps = 6, 8, 5, 24
    wq = quantize_weight((torch.rand(4 * hidden, inputs + hidden, generator=gen) - 0.5) * 4)
    bq = quantize_bias(torch.zeros(4 * hidden))
    x = torch.rand(batch, inputs, generator=gen) * 2 - 1  # mixed signs: the c~ current changes sign
    h_prev = torch.rand(batch, hidden, generator=gen) * 2 - 1
    out = hybrid_cell_step(x, h_prev, torch.zeros(batch, hidden), wq, bq, timesteps, use_cpp=use_cpp)
    spikes = generator_spike_train(torch.cat([x, h_prev], -1), timesteps)
    current = torch.addmm(bq, spikes.flatten(0, 1), wq.t()).view(timesteps, batch, -1)[..., 2 * hidden : 3 * hidden]
    v_pos, v_neg = torch.ones(batch, hidden), torch.ones(batch, hidden)
    up, down = torch.zeros(batch, hidden), torch.zeros(batch, hidden)
    for t in range(timesteps):
        v_pos, v_neg, s = signed_if_step(v_pos, v_neg, current[t])
        up, down = up + (s > 0).float(), down + (s < 0).float()
    assert ((up > 0) & (down > 0)).any()  # the case the net count gets wrong occurs here
    assert (up + down <= timesteps).all()  # but never both in one step: at most one spike a step
    assert torch.equal(out.gate_spikes[:, 2 * hidden : 3 * hidden], up + down)
    assert torch.equal(out.rates[:, 2 * hidden : 3 * hidden], (up - down) / timesteps)
    # the per-gate totals a SpikingLSTM reports (wq / 256 re-quantises to wq; no bias: bq as above)
    w = wq / 256
    seq = hybrid.hybrid_sequence(x[None], h_prev, torch.zeros(batch, hidden), w[:, :inputs], w[:, inputs:], None,
                                 timesteps, use_cpp=use_cpp)
    assert seq.gate_spikes[2].item() == (up + down).sum().item() > (up - down).abs().sum().item()


def test_torch_path_never_calls_the_compiled_kernels(no_kernels: None) -> None:
    """use_cpp=False (the default) is pure torch, also on float32 CPU tensors where the kernels would apply."""
    gen = torch.Generator().manual_seed(4)
    w = (torch.rand(8, 5, generator=gen) - 0.5) * 2
    x = torch.rand(3, 2, 3, generator=gen) * 2 - 1
    seq = hybrid.hybrid_sequence(x, torch.zeros(2, 2), torch.zeros(2, 2), w[:, :3], w[:, 3:], None, 9)
    assert seq.h.shape == (3, 2, 2) and seq.input_spikes > 0 and seq.gate_spikes.sum() > 0
    assert hybrid_gate_rates(torch.full((4, 2, 8), 600.0)).shape == (2, 8)
    assert generator_spike_train(x, 5).shape == (5, 3, 2, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int32], ids=["float64", "int32"])
def test_cpp_path_rejects_what_it_cannot_take(dtype: torch.dtype) -> None:
    """use_cpp=True never silently runs torch: a tensor the kernels cannot take is an error naming the fix."""
    if _build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the hybrid C++ kernels could not be built")
    values = torch.zeros(2, 3, dtype=dtype)
    with pytest.raises(RuntimeError, match="float32 CPU.*use_cpp=False"):
        generator_spike_train(values, 4, use_cpp=True)
    with pytest.raises(RuntimeError, match="float32 CPU.*use_cpp=False"):
        hybrid_membrane_counts(torch.zeros(4, 2, 8, dtype=dtype), use_cpp=True)
    wq, bq = torch.zeros(8, 5), torch.zeros(8)
    with pytest.raises(RuntimeError, match="float32 CPU.*use_cpp=False"):
        hybrid_cell_step(values, torch.zeros(2, 2, dtype=dtype), torch.zeros(2, 2), wq, bq, 4, use_cpp=True)
    with pytest.raises(ValueError, match=r"\[B, I\]"):
        hybrid_cell_step(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), wq, bq, 4, use_cpp=True)


def test_cpp_path_without_built_kernels_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_build._STATE, "module", None)  # as after a failed build or SNNLSTM_NO_CPP=1
    with pytest.raises(RuntimeError, match="not built.*use_cpp=False"):
        hybrid_gate_rates(torch.zeros(4, 2, 8), use_cpp=True)
    with pytest.raises(RuntimeError, match="not built.*use_cpp=False"):
        hybrid_cell_step(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(8, 5), torch.zeros(8), 4, use_cpp=True)
    assert hybrid_gate_rates(torch.zeros(4, 2, 8)).shape == (2, 8)  # the torch path does not need them
