"""The hybrid layer's two kernels: "torch-dense" never touches the compiled kernels, "cpp-event" always
does, and both give the same outputs, states and stats bit for bit."""

from __future__ import annotations

import pytest
import torch

from snnlstm.backends.hybrid import hybrid_layer
from snnlstm.kernels import build
from snnlstm.nn.lstm import SpikingLSTM


def _layer(backend: str) -> SpikingLSTM:
    torch.manual_seed(0)
    layer = SpikingLSTM(3, 5, cell="modified", mode="hybrid", timesteps=12, num_layers=2, clamp_c=True, backend=backend)
    with torch.no_grad():  # larger weights: more spikes, both signs of the c~ current
        for p in layer.parameters():
            p.mul_(2.0)
    return layer


def _run(layer: SpikingLSTM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[dict[str, float]]]:
    x = torch.rand(4, 6, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = layer(x)
    stats = [
        {**{k: float(v) for k, v in s.spikes.items()}, "ac": float(s.ac), "mac": float(s.mac), "steps": s.neuron_steps}
        for s in out.stats
    ]
    return out.output, out.state.h, out.state.c, stats


def test_torch_backend_never_calls_the_kernels_and_equals_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the hybrid C++ kernels could not be built")
    cpp = _layer("cpp")
    assert cpp.kernel == "cpp-event"
    kernels, calls = build.fused_cell_kernels(), []
    event_counts = kernels.hybrid_element_counts

    def counting(*args):  # the cpp run must use the kernel: otherwise the comparison below proves nothing
        calls.append(args[3])
        return event_counts(*args)

    monkeypatch.setattr(kernels, "hybrid_element_counts", counting)
    expected = _run(cpp)
    assert calls == [12] * 12  # T = 12, once per element (6) and layer (2)

    def forbidden():
        raise AssertionError("backend='torch' called the compiled kernels")

    monkeypatch.setattr(build, "fused_cell_kernels", forbidden)
    dense = _layer("torch")
    assert (dense.backend, dense.kernel) == ("torch", "torch-dense")
    got = _run(dense)
    for a, b in zip(got[:3], expected[:3]):
        assert torch.equal(a, b)
    assert got[3] == expected[3]
    assert all(s["g"] > 0 and s["i"] > 0 for s in got[3])  # the comparison covers spiking gates


def test_unknown_hybrid_kernel_is_rejected() -> None:
    layer = _layer("torch")
    z = torch.zeros(4, 5)
    with pytest.raises(ValueError, match="unknown hybrid kernel 'torch-fused'; allowed: cpp-event, torch-dense"):
        hybrid_layer("torch-fused", layer, 0, torch.zeros(2, 4, 3), z, z)
