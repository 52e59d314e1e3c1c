"""SpikingLSTM with Ponghiran & Roy's cells (modified / baseline), the c clamp and the hybrid mode."""

from __future__ import annotations

import pytest
import torch

from snnlstm.functional.hybrid import hybrid_cell_step, modified_cell_step, quantize_bias, quantize_weight
from snnlstm.nn.lstm import SpikingLSTM


def _layer(**kwargs) -> SpikingLSTM:
    torch.manual_seed(0)
    kwargs.setdefault("cell", "modified")
    return SpikingLSTM(3, 5, **kwargs)


def _x(batch: int = 4, steps: int = 6) -> torch.Tensor:
    return torch.rand(batch, steps, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("cell", ["modified", "baseline"])
def test_shared_bias_orthogonal_init_forget_bias_one(cell: str) -> None:
    layer = _layer(cell=cell, num_layers=2)
    for k in range(2):
        b_ih, b_hh = getattr(layer, f"bias_ih_l{k}"), getattr(layer, f"bias_hh_l{k}")
        assert not b_hh.requires_grad and torch.equal(b_hh, torch.zeros(20))
        assert torch.equal(b_ih, torch.tensor([0.0] * 5 + [1.0] * 5 + [0.0] * 10))
        # each gate block of W_ih [5, 3] and W_hh [5, 5] is orthogonal on its own (the reference's init)
        for block in getattr(layer, f"weight_hh_l{k}").detach().view(4, 5, 5):
            torch.testing.assert_close(block @ block.T, torch.eye(5), atol=1e-5, rtol=0)
        fan_in = 3 if k == 0 else 5
        for block in getattr(layer, f"weight_ih_l{k}").detach().view(4, 5, fan_in):
            torch.testing.assert_close(block.T @ block, torch.eye(fan_in), atol=1e-5, rtol=0)


def test_forget_bias_two_starts_the_modified_forget_gate_saturated() -> None:
    """forget_bias and input_bias set only their blocks of the shared bias; at forget bias 2 the modified
    forget gate clamp((z+2)/4, 0, 1) is 1 for any non-negative input drive, so c is carried unchanged."""
    layer = _layer(forget_bias=2.0, input_bias=-1.0, num_layers=2)
    for k in range(2):
        assert torch.equal(getattr(layer, f"bias_ih_l{k}").detach(), torch.tensor([-1.0] * 5 + [2.0] * 5 + [0.0] * 10))
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.zero_()
        layer.bias_ih_l0[:5] = -2.0  # input gate closed: c only carries the initial state
    c0 = torch.rand(2, 4, 5) * 2 - 1
    out = layer(_x(), (torch.zeros(2, 4, 5), c0))
    torch.testing.assert_close(out.state.c[0], c0[0])  # layer 0: f = 1 at every step


@pytest.mark.parametrize("clamp_c", [False, True], ids=["free-c", "clamped-c"])
def test_modified_cell_layer_matches_the_pure_cell(clamp_c: bool) -> None:
    layer = _layer(clamp_c=clamp_c)
    with torch.no_grad():
        layer.bias_ih_l0[:15] = 3.0  # i, f, c~ saturate: c grows by ~1 per step unless clamped
    x = _x()
    out = layer(x)
    w = torch.cat([layer.weight_ih_l0, layer.weight_hh_l0], dim=1)
    h = c = torch.zeros(4, 5)
    for n in range(x.shape[1]):
        h, c = modified_cell_step(torch.cat([x[:, n], h], -1) @ w.T + layer.bias_ih_l0, c, clamp_c=clamp_c)
        torch.testing.assert_close(out.output[:, n], h)
    torch.testing.assert_close(out.state.c[0], c)
    assert (c.abs().max() <= 1.0) if clamp_c else (c.abs().max() > 1.0)


def test_baseline_cell_matches_torch_lstm() -> None:
    layer = _layer(cell="baseline")
    ref = torch.nn.LSTM(3, 5, batch_first=True)
    ref.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("neurons") and "extra" not in k})
    torch.testing.assert_close(layer(_x()).output, ref(_x())[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell": "peephole"}, "cell.*lstm, modified, baseline"),
        ({"cell": "modified", "activation": "standard"}, "cell='modified' fixes activation"),
        ({"cell": "baseline", "v_tanh_pos": 3.0}, "cell='baseline' fixes"),
        ({"cell": "lstm", "mode": "hybrid"}, "train it with cell='modified'"),
        ({"cell": "baseline", "mode": "hybrid"}, "train it with cell='modified'"),
        ({"cell": "lstm", "forget_bias": 2.0}, "forget_bias=2.0 applies to the shared-bias cells"),
        ({"cell": "modified", "forget_bias": float("nan")}, "forget_bias must be a finite number"),
        ({"cell": "lstm", "input_bias": -1.0}, "input_bias=-1.0 applies to the shared-bias cells"),
    ],
    ids=[
        "unknown-cell", "modified-with-standard", "baseline-with-threshold", "hybrid-needs-modified", "hybrid-baseline",
        "forget-bias-on-lstm", "forget-bias-nan", "input-bias-on-lstm",
    ],
)
def test_bad_cell_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _layer(**kwargs)


def test_hybrid_mode_is_the_hybrid_cell_run_over_the_sequence() -> None:
    layer = _layer(mode="hybrid", timesteps=16, clamp_c=True)
    x = _x()
    out = layer(x)
    weight_q = quantize_weight(torch.cat([layer.weight_ih_l0, layer.weight_hh_l0], dim=1)).detach()
    bias_q = quantize_bias(layer.bias_ih_l0).detach()
    h = c = torch.zeros(4, 5)
    spikes = torch.zeros(4)
    for n in range(x.shape[1]):
        step = hybrid_cell_step(x[:, n], h, c, weight_q, bias_q, 16, clamp_c=True)
        h, c = step.h, step.c
        spikes += step.gate_spikes.view(4, 4, 5).sum(dim=(0, 2))  # c~: both membranes' spikes
        assert torch.equal(out.output[:, n], h)
    stats = out.stats[0]
    assert set(stats.spikes) == {"i", "f", "g", "o"}
    torch.testing.assert_close(torch.stack([stats.spikes[g] for g in "ifgo"]), spikes)
    assert stats.neuron_steps == 4 * 6 * 16 * 5 and stats.timesteps == 16
    assert stats.spikes["g"] <= stats.neuron_steps  # its two membranes never fire in the same step
    assert not out.output.requires_grad  # evaluation only


def test_hybrid_layer_approaches_the_trained_cell_as_t_grows() -> None:
    layer = _layer(num_layers=2)
    x = _x(batch=16)
    ann = layer(x).output
    errors = []
    layer.mode = "hybrid"
    for timesteps in (8, 64, 512):
        layer.timesteps = timesteps
        errors.append((layer(x).output - ann).abs().mean().item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01, errors


def test_hybrid_mode_is_saved_with_the_weights() -> None:
    layer = _layer(mode="hybrid", timesteps=32)
    other = _layer()
    other.load_state_dict(layer.state_dict())
    assert (other.mode, other.timesteps) == ("hybrid", 32)
    torch.testing.assert_close(other(_x()).output, layer(_x()).output)


@pytest.mark.parametrize("schedule", ["fused", "pipelined", "sequential"])
def test_clamped_c_in_snn_mode_every_schedule(schedule: str) -> None:
    x = _x()
    runs = {}
    for sched, clamp_c in (("sequential", True), (schedule, True), (schedule, False)):
        layer = _layer(mode="snn", timesteps=3, clamp_c=clamp_c, schedule=sched)
        with torch.no_grad():
            layer.bias_ih_l0[:15] = 3.0  # i, f, c~ saturate: c grows unless clamped
        runs[sched, clamp_c] = layer(x)
    ref, got = runs["sequential", True], runs[schedule, True]
    torch.testing.assert_close(got.output, ref.output)
    assert got.state.c.abs().max() <= 1.0 < runs[schedule, False].state.c.abs().max()
