import math

import pytest
import torch

from snnlstm.functional.neurons import if_step, ternary_step
from snnlstm.functional.rates import if_sigmoid_rate, if_tanh_rate, lif_first_spike_time, lif_rate
from snnlstm.functional.surrogates import triangular

SPIKE = triangular(0.3)


def run_if(current: torch.Tensor, threshold: float, leak: float, timesteps: int, reset_to_zero: bool = False):
    mem = torch.zeros_like(current)
    spikes = []
    for _ in range(timesteps):
        s, mem = if_step(current, mem, threshold, leak, SPIKE, reset_to_zero)
        spikes.append(s)
    return torch.stack(spikes)


@pytest.mark.parametrize("timesteps", [1, 2, 4, 8, 16], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("shift", [False, True], ids=["noshift", "shift"])
def test_if_average_equals_clip_floor_formula(timesteps: int, shift: bool) -> None:
    """Constant input z: the average IF output over T is (1/T) clip(floor(T/V (z + V/2 + s)), 0, T)."""
    torch.manual_seed(0)
    v = 3.0
    z = torch.rand(2000, dtype=torch.float64) * 8 - 4
    current = z + v / 2 + (v / (2 * timesteps) if shift else 0.0)
    avg = run_if(current, v, 1.0, timesteps).mean(0)
    torch.testing.assert_close(avg, if_sigmoid_rate(z, v, timesteps, shift))


@pytest.mark.parametrize("timesteps", [1, 2, 4, 8], ids=lambda t: f"T{t}")
def test_ternary_average_equals_formula(timesteps: int) -> None:
    torch.manual_seed(1)
    v_pos, v_neg = 1.5, -0.7
    z = torch.rand(2000, dtype=torch.float64) * 4 - 2
    shift = torch.where(z >= 0, v_pos, v_neg) / (2 * timesteps)
    for use_shift in (False, True):
        mem = torch.zeros_like(z)
        total = torch.zeros_like(z)
        for _ in range(timesteps):
            s, mem = ternary_step(z + (shift if use_shift else 0), mem, v_pos, v_neg, 1.0, SPIKE)
            assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
            total += s
        torch.testing.assert_close(total / timesteps, if_tanh_rate(z, v_pos, v_neg, timesteps, use_shift))


@pytest.mark.parametrize("timesteps", [2, 4, 8], ids=lambda t: f"T{t}")
def test_bias_shift_reduces_conversion_error_on_uniform_inputs(timesteps: int) -> None:
    """With IID uniform inputs the shift V/(2T) lowers the mean error to the hard sigmoid/tanh."""
    z = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    v = 4.0
    hard_sig = torch.clamp(z / v + 0.5, 0, 1)
    err = [(if_sigmoid_rate(z, v, timesteps, s) - hard_sig).abs().mean() for s in (False, True)]
    assert err[1] < err[0]
    assert err[1] <= 0.5 * err[0] + 1e-4  # rounding halves the flooring error
    hard_tanh = torch.clamp(z, -1, 1)
    err_t = [(if_tanh_rate(z, 1.0, -1.0, timesteps, s) - hard_tanh).abs().mean() for s in (False, True)]
    assert err_t[1] < err_t[0]


@pytest.mark.parametrize(
    ("current", "leak"),
    [(0.3, 0.9), (0.5, 0.8), (1.3, 0.7), (0.26, 0.95), (0.7, 1.0)],
    ids=["I0.3-l0.9", "I0.5-l0.8", "I1.3-l0.7", "I0.26-l0.95", "IF"],
)
def test_lif_spike_count_matches_closed_form(current: float, leak: float) -> None:
    """Eqs. (6)-(7): first spike at t*, floor(T / t*) spikes with reset to zero."""
    v, timesteps = 1.0, 32
    spikes = run_if(torch.tensor([current], dtype=torch.float64), v, leak, timesteps, reset_to_zero=True)[:, 0]
    t_star = lif_first_spike_time(current, v, leak)
    first = int(torch.nonzero(spikes)[0]) + 1 if spikes.any() else math.inf
    assert first == t_star
    assert float(spikes.mean()) == pytest.approx(lif_rate(current, v, leak, timesteps))
    # reset by subtraction fires first at the same step
    sub = run_if(torch.tensor([current], dtype=torch.float64), v, leak, timesteps)[:, 0]
    assert int(torch.nonzero(sub)[0]) + 1 == t_star


def test_lif_never_fires_below_leak_bound() -> None:
    v, leak = 1.0, 0.8
    current = 0.9 * v * (1 - leak)
    assert lif_first_spike_time(current, v, leak) == math.inf
    assert run_if(torch.tensor([current]), v, leak, 100).sum() == 0


def test_ternary_neuron_values_and_reset() -> None:
    mem = torch.zeros(3)
    s, mem = ternary_step(torch.tensor([1.2, -0.9, 0.3]), mem, 1.0, -0.5, 1.0, SPIKE)
    assert s.tolist() == [1.0, -1.0, 0.0]
    torch.testing.assert_close(mem, torch.tensor([0.2, -0.4, 0.3]))


def test_gradients_reach_threshold_and_leak() -> None:
    v = torch.tensor(1.0, requires_grad=True)
    leak = torch.tensor(0.9, requires_grad=True)
    v_neg = torch.tensor(-1.0, requires_grad=True)
    x = torch.tensor([0.8, 0.5, -0.9, 0.95, -0.6])
    mem = torch.zeros(5)
    total = 0
    for _ in range(4):
        s, mem = ternary_step(x, mem, v, v_neg, leak, SPIKE)
        total = total + s.sum() + mem.sum()
    total.backward()
    for p in (v, leak, v_neg):
        assert p.grad is not None and p.grad != 0
