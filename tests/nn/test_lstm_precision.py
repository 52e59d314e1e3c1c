"""Mixed precision: autocast keeps spike decisions in float32; a half-precision module refuses SNN mode."""

from __future__ import annotations

import pytest
import torch

from snnlstm.nn.lstm import SpikingLSTM


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", ["ann", "snn"])
@pytest.mark.parametrize("activation", ["hard", "standard"])
def test_autocast_runs_and_spikes_match_float32(dtype: torch.dtype, mode: str, activation: str) -> None:
    torch.manual_seed(0)
    layer = SpikingLSTM(6, 16, num_layers=2, mode=mode, timesteps=2, activation=activation)
    x = torch.randn(8, 10, 6)
    reference = layer(x)
    with torch.autocast("cpu", dtype=dtype):
        mixed = layer(x)
        mixed.output.float().sum().backward()  # the backward pass runs too
    # membranes, spikes and counts in float32: the same as the float32 run
    assert mixed.output.dtype == torch.float32
    assert (mixed.output == reference.output).float().mean() >= 0.99
    for a, b in zip(mixed.stats, reference.stats):
        assert {k: float(v) for k, v in a.spikes.items()} == {k: float(v) for k, v in b.spikes.items()}


def test_half_module_refuses_snn_mode_and_names_autocast() -> None:
    layer = SpikingLSTM(4, 8, mode="snn").to(torch.bfloat16)
    with pytest.raises(TypeError, match="needs float32/float64 weights.*bf16-mixed"):
        layer(torch.randn(2, 3, 4, dtype=torch.bfloat16))


def test_half_module_runs_ann_mode_on_the_torch_backend() -> None:
    layer = SpikingLSTM(4, 8).to(torch.bfloat16)
    assert layer.backend == "torch"
    out = layer(torch.randn(2, 3, 4, dtype=torch.bfloat16))
    assert out.output.dtype == torch.bfloat16 and torch.isfinite(out.output.float()).all()
