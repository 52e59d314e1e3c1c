"""Every backend of SpikingLSTM gives the same outputs, states, counts and gradients."""

from __future__ import annotations

import pytest
import torch

from snnlstm.kernels import build
from snnlstm.nn.lstm import SpikingLSTM


def _run(layer: SpikingLSTM, x: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    layer.zero_grad()
    out = layer(x, lengths=lengths)
    (out.output.square().sum() + out.state.c.sum() + out.state.h.sum()).backward()
    res = {"out": out.output.detach(), "h": out.state.h.detach(), "c": out.state.c.detach()}
    res.update({f"grad.{n}": p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None})
    res.update({f"count.{k}.{g}": v for k, s in enumerate(out.stats) for g, v in s.spikes.items()})
    res.update({f"ac.{k}": s.ac for k, s in enumerate(out.stats)})
    return res


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].double(), b[key].double(), rtol=tol, atol=tol, msg=key)


@pytest.mark.parametrize("activation", ["standard", "hard"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_ann_kernels_agree(activation: str, with_lengths: bool) -> None:
    torch.manual_seed(0)
    layer = SpikingLSTM(5, 7, num_layers=2, activation=activation).double()
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    lengths = torch.tensor([9, 3, 6, 1]) if with_lengths else None
    runs = {}
    for backend, schedule in (("torch", "fused"), ("torch", "pipelined"), ("auto", "fused")):
        layer.backend, layer.schedule = backend, schedule
        runs[layer.kernel] = _run(layer, x, lengths)
    assert "torch-eager" in runs and len(runs) >= 2
    if activation == "standard":
        assert "torch-native" in runs
    first, *rest = runs.values()
    for other in rest:
        _assert_same(first, other, 1e-9)
    if with_lengths:  # padded positions are 0 whatever the backend
        assert first["out"][1, 3:].abs().max() == 0 and first["out"][3, 1:].abs().max() == 0


@pytest.mark.parametrize("with_lengths", [False, True])
def test_snn_kernels_agree(with_lengths: bool) -> None:
    torch.manual_seed(0)
    layer = SpikingLSTM(5, 6, num_layers=2, mode="snn", timesteps=3, leak=0.9).double()
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith(("weight", "bias")):
                p.mul_(3.0)
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    lengths = torch.tensor([7, 2, 5]) if with_lengths else None
    settings = [("torch", "fused"), ("torch", "pipelined"), ("torch", "sequential")]
    if build.fused_cell_kernels() is not None:
        settings.append(("cpp", "fused"))
    runs = {}
    for backend, schedule in settings:
        layer.backend, layer.schedule = backend, schedule
        runs[layer.kernel] = _run(layer, x, lengths)
    assert len(runs) == len(settings)
    reference = runs.pop("torch-sequential")
    for kernel, other in runs.items():
        _assert_same(reference, other, 1e-7)


@pytest.mark.slow
def test_compiled_step_functions_agree_with_eager() -> None:
    """compile='step' runs the torch-fused wavefront through torch.compile (dynamic shapes: a second
    sequence length reuses the graph). It used to fail in Inductor on a graph break in the spike function."""
    torch.manual_seed(0)
    eager = SpikingLSTM(3, 4, mode="snn", timesteps=2, backend="torch")
    compiled = SpikingLSTM(3, 4, mode="snn", timesteps=2, compile="step")
    compiled.load_state_dict(eager.state_dict())
    assert compiled.kernel == "torch-fused"
    for n in (5, 8):
        x = torch.randn(2, n, 3) * 2
        _assert_same(_run(compiled, x), _run(eager, x), 1e-5)
