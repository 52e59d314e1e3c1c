"""LSNN.streamer(): one step per call equals the whole-sequence forward (spikes and state bit for bit).

Weights and inputs lie on a power-of-two grid so that the input and recurrent products are exact in
any summation order; the neuron update is the same operation for operation (see test_streaming.py).
"""

from __future__ import annotations

import pytest
import torch

from snnlstm.backends.selection import BackendError
from snnlstm.kernels import build
from snnlstm.nn.lsnn import LSNN

CPP = build.fused_cell_kernels() is not None


def _lsnn(dtype: torch.dtype = torch.float32, **kwargs: object) -> LSNN:
    torch.manual_seed(0)
    layer = LSNN(**{"input_size": 6, "n_lif": 10, "n_ahp": 8, "tau_a": 30.0, "beta": 3.0, **kwargs}).to(dtype)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p, scale in ((layer.weight_ih, 1.5), (layer.weight_hh, 0.5), (layer.bias, 0.25)):
            if p is not None:
                p.copy_((torch.randint(-16, 17, tuple(p.shape), generator=gen) / 16 * scale).to(dtype))
    return layer


def _spikes(n: int, dtype: torch.dtype = torch.float32, batch: int = 1) -> torch.Tensor:
    return (torch.rand(batch, n, 6, generator=torch.Generator().manual_seed(1)) < 0.4).to(dtype)


def _stream(layer: LSNN, x: torch.Tensor, backend: str) -> tuple[torch.Tensor, object]:
    stepper = layer.streamer(batch_size=x.shape[0], backend=backend)
    return torch.stack([stepper(x[:, n]) for n in range(x.shape[1])], dim=1), stepper


def _cases() -> list[tuple[str, str]]:
    cases = [("torch", "ahp"), ("torch", "alif")]
    return cases + [("cpp", "ahp")] if CPP else cases


@pytest.mark.parametrize(("backend", "form"), _cases())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{}, {"n_inhibitory": 4, "sign_constraints": True, "bias": True, "refractory": 2}])
def test_lsnn_streamer_equals_the_whole_sequence(backend: str, form: str, dtype: torch.dtype, options: dict) -> None:
    layer = _lsnn(dtype, neuron_form=form, backend=backend, **options)
    x = _spikes(40, dtype, batch=2)
    whole = layer(x)
    outs, stepper = _stream(layer, x, backend)
    assert stepper.kernel == f"{backend}-stream"
    assert 0.02 < outs.mean() < 0.5 and outs.dtype == dtype
    assert torch.equal(outs, whole.output)
    state = stepper.state
    assert torch.equal(state.spikes, whole.state.spikes)
    for mine, theirs in zip(state.neurons, whole.state.neurons):
        assert torch.equal(mine, theirs)


@pytest.mark.skipif(not CPP, reason="the C++ kernels are not built")
def test_lsnn_kernels_agree_on_analog_inputs_and_reset() -> None:
    layer = _lsnn(torch.float64)
    x = (torch.randint(-4, 5, (1, 30, 6), generator=torch.Generator().manual_seed(2)) / 4).double()
    cpp, cpp_stepper = _stream(layer, x, "cpp")
    torch_out, _ = _stream(layer, x, "torch")
    assert torch.equal(cpp, torch_out) and cpp.sum() > 0
    cpp_stepper.reset()
    assert cpp_stepper.state.spikes.sum() == 0 and cpp_stepper.state.neurons[0].abs().sum() == 0
    head = layer(x[:, :12])
    cpp_stepper.reset(head.state)  # continue a sequence from a forward's final state
    rest = torch.stack([cpp_stepper(x[:, n]) for n in range(12, 30)], dim=1)
    assert torch.equal(rest, layer(x).output[:, 12:])


def test_lsnn_kernel_choice_and_refusals() -> None:
    alif = _lsnn(neuron_form="alif")
    stepper = alif.streamer()
    assert stepper.kernel == "torch-stream"
    if CPP:
        assert "neuron_form='ahp'" in stepper.reason
    with pytest.raises(BackendError, match="neuron_form='ahp'" if CPP else "C"):
        alif.streamer(backend="cpp")
    layer = _lsnn()
    assert layer.streamer().kernel == ("cpp-stream" if CPP else "torch-stream")
    with pytest.raises(ValueError, match="shape"):
        layer.streamer().reset(layer.initial_state(2, layer.weight_hh))
    out = layer.streamer()(torch.ones(1, 6, requires_grad=True))
    assert out.shape == (1, 18) and not out.requires_grad
