"""SpikingLSTM.streamer(): one element per call equals the whole-sequence forward (issue 20).

Weights, biases and inputs lie on a power-of-two grid, so every product ``W x`` is exact whatever the
summation order (BLAS over the sequence, one element, the C++ row sums); the cell arithmetic is then
the same operation for operation, and spikes, rates and states must be bitwise equal (``torch.equal``),
also with standard activations and a leak of 0.9. Non-spiking ``h`` is analog and goes through the
products again: equal to rounding.
"""

from __future__ import annotations

import logging

import pytest
import torch

from snnlstm.backends.selection import BackendError
from snnlstm.kernels import build
from snnlstm.nn.lstm import SpikingLSTM

CPP = build.fused_cell_kernels() is not None
needs_cpp = pytest.mark.skipif(not CPP, reason="the C++ kernels are not built")
#: Datta et al.'s Table 1 gate sets (all spiking, NS sig_i, NS tanh_g) and both analog
GATE_SETS = [("i", "f", "g", "o", "tanh_c"), ("f", "g", "o", "tanh_c"), ("i", "f", "o", "tanh_c"), ("f", "o", "tanh_c")]


def _grid(shape: tuple[int, ...], scale: int, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    return (torch.randint(-scale, scale + 1, shape, generator=gen) / scale).to(dtype)


def _layer(dtype: torch.dtype = torch.float32, seed: int = 0, **kwargs: object) -> SpikingLSTM:
    torch.manual_seed(seed)
    layer = SpikingLSTM(**{"input_size": 5, "hidden_size": 8, **kwargs}).to(dtype).eval()  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith(("weight", "bias")):
                p.copy_(_grid(tuple(p.shape), 16, dtype, gen) * (3.0 if name.startswith("weight") else 1.0))
    return layer


def _inputs(n: int, dtype: torch.dtype = torch.float32, batch: int = 1, seed: int = 1) -> torch.Tensor:
    return _grid((batch, n, 5), 4, dtype, torch.Generator().manual_seed(seed)) * 2.0


def _stream(layer: SpikingLSTM, x: torch.Tensor, backend: str) -> tuple[torch.Tensor, object]:
    stepper = layer.streamer(batch_size=x.shape[0], backend=backend)
    outs = torch.stack([stepper(x[:, n]) for n in range(x.shape[1])], dim=1)
    return outs, stepper


def _backends() -> list[str]:
    return ["torch", "cpp"] if CPP else ["torch"]


@pytest.mark.parametrize("gates", GATE_SETS)
@pytest.mark.parametrize("activation", ["hard", "standard"])
@pytest.mark.parametrize("timesteps", [1, 2, 3, 4])
def test_snn_streamer_equals_the_whole_sequence(gates: tuple[str, ...], activation: str, timesteps: int) -> None:
    case = GATE_SETS.index(gates) + 2 * timesteps + (activation == "hard")
    kwargs = dict(num_layers=1 + case % 2, leak=(1.0, 0.9)[case // 2 % 2], bias_shift=case % 3 != 0)
    layer = _layer(mode="snn", timesteps=timesteps, spiking_gates=gates, activation=activation, **kwargs)
    x = _inputs(6)
    results = {}
    for backend in _backends():
        layer.backend = backend
        whole = layer(x)
        outs, stepper = _stream(layer, x, backend)
        assert stepper.kernel == f"{backend}-stream" and stepper.timesteps == timesteps
        assert torch.equal(outs, whole.output), (backend, kwargs)
        state = stepper.state
        assert state.h.shape == (layer.num_layers, timesteps, 1, 8)
        assert torch.equal(state.h, whole.step_state.h) and torch.equal(state.c, whole.step_state.c)
        results[backend] = outs
    if kwargs["bias_shift"]:  # the test exercises spikes, not silence or saturation
        assert 0.05 < results["torch"].abs().mean() < 0.95, kwargs
    if CPP:
        assert torch.equal(results["torch"], results["cpp"])


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_snn_streamer_batches_dtypes_and_lengths(backend: str, dtype: torch.dtype, n: int) -> None:
    layer = _layer(dtype, mode="snn", timesteps=2, num_layers=2, leak=0.9, backend=backend)
    x = _inputs(n, dtype, batch=3)
    outs, stepper = _stream(layer, x, backend)
    whole = layer(x)
    assert outs.dtype == dtype and torch.equal(outs, whole.output)
    assert torch.equal(stepper.state.c, whole.step_state.c)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("activation", ["hard", "standard"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_ann_streamer_equals_the_whole_sequence(backend: str, activation: str, num_layers: int) -> None:
    layer = _layer(torch.float64, activation=activation, num_layers=num_layers)
    x = torch.randn(2, 9, 5, dtype=torch.float64)
    whole = layer(x)
    outs, stepper = _stream(layer, x, backend)
    assert stepper.kernel == f"{backend}-stream" and stepper.timesteps == 1
    torch.testing.assert_close(outs, whole.output, rtol=1e-12, atol=1e-12)
    state = stepper.state
    assert state.h.shape == (num_layers, 2, 8)
    torch.testing.assert_close(state.h, whole.state.h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.c, whole.state.c, rtol=1e-12, atol=1e-12)


@needs_cpp
@pytest.mark.parametrize("mode", ["ann", "snn"])
def test_clamp_c_is_streamed(mode: str) -> None:
    layer = _layer(torch.float64, mode=mode, timesteps=2, num_layers=2, clamp_c=True)
    x = _inputs(6, torch.float64) * 2.0
    whole = layer(x)
    for backend in ("torch", "cpp"):
        outs, stepper = _stream(layer, x, backend)
        torch.testing.assert_close(outs, whole.output, rtol=1e-12, atol=1e-12)
        assert stepper.state.c.abs().max() <= 1.0
    assert whole.state.c.abs().max() == 1.0  # the clamp was active


@pytest.mark.parametrize("backend", _backends())
def test_reset_and_initial_state(backend: str) -> None:
    layer = _layer(mode="snn", timesteps=3, num_layers=2, leak=0.9)
    x = _inputs(8)
    whole = layer(x)
    stepper = layer.streamer(backend=backend)
    first = [stepper(x[:, n]) for n in range(8)]
    stepper.reset()
    assert stepper.state.h.abs().sum() == 0
    assert torch.equal(torch.stack([stepper(x[:, n]) for n in range(8)], 1), whole.output)
    # continue a sequence from a forward's carry, and start from a given (h0, c0)
    head = layer(x[:, :3])
    stepper.reset(head.carry)
    assert torch.equal(torch.stack([stepper(x[:, n]) for n in range(3, 8)], 1), whole.output[:, 3:])
    h0 = _grid((2, 1, 8), 2, torch.float32, torch.Generator().manual_seed(3))
    c0 = _grid((2, 1, 8), 4, torch.float32, torch.Generator().manual_seed(4))
    stepper.reset((h0, c0))
    from_state = layer(x, (h0, c0))
    assert torch.equal(torch.stack([stepper(x[:, n]) for n in range(8)], 1), from_state.output)
    assert torch.equal(torch.stack(first, 1), whole.output)
    with pytest.raises(ValueError, match="initial state h0 must have shape"):
        stepper.reset((h0[0], c0[0]))


@pytest.mark.parametrize("backend", _backends())
def test_stream_runs_without_autograd_and_checks_inputs(backend: str) -> None:
    layer = _layer(mode="snn", timesteps=2)
    stepper = layer.streamer(backend=backend)
    out = stepper(torch.ones(1, 5, requires_grad=True))
    assert not out.requires_grad and out.grad_fn is None
    with pytest.raises(ValueError, match=r"shape \[batch=1, features=5\]"):
        stepper(torch.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        stepper(torch.full((1, 5), float("nan")))
    with pytest.raises(TypeError, match="dtype"):
        stepper(torch.ones(1, 5, dtype=torch.float64))


def test_kernel_choice_is_visible_and_explicit(caplog: pytest.LogCaptureFixture) -> None:
    layer = _layer(mode="snn")
    with caplog.at_level(logging.INFO, logger="snnlstm.nn.streaming"):
        stepper = layer.streamer()
    assert stepper.kernel == ("cpp-stream" if CPP else "torch-stream")
    assert f"runs '{stepper.backend}', {stepper.kernel}" in caplog.text
    assert layer.streamer(backend="torch").kernel == "torch-stream"
    half = _layer().half()  # ANN mode runs in half precision on the torch kernel only
    assert half.streamer().kernel == "torch-stream" and "float32/float64" in half.streamer().reason
    with pytest.raises(BackendError, match="float32/float64"):
        half.streamer(backend="cpp")
    out = half.streamer()(torch.ones(1, 5, dtype=torch.float16))
    assert out.dtype == torch.float16 and out.shape == (1, 8)


def test_refusals_name_the_reason() -> None:
    with pytest.raises(ValueError, match="hybrid"):
        SpikingLSTM(5, 8, cell="modified", mode="hybrid").streamer()
    with pytest.raises(ValueError, match=r"layer.eval\(\)"):
        SpikingLSTM(5, 8, num_layers=2, dropout=0.5).train().streamer()
    with pytest.raises(ValueError, match="batch_size"):
        SpikingLSTM(5, 8).streamer(batch_size=0)
    with pytest.raises(TypeError, match="float32/float64"):
        SpikingLSTM(5, 8, mode="snn").half().streamer()


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_poisson_encoding_streams_the_same_spike_trains(backend: str, dtype: torch.dtype) -> None:
    """The encoder draws each element's [T, B, F] uniforms when the element arrives; on the CPU torch's
    generator fills tensors serially, so from one seed the streamer draws the whole forward's numbers."""
    layer = _layer(dtype, mode="snn", timesteps=3, num_layers=2, encoding="poisson", backend=backend)
    x = _inputs(6, dtype, batch=2) / 2.0
    torch.manual_seed(7)
    whole = layer(x)
    torch.manual_seed(7)
    outs, stepper = _stream(layer, x, backend)
    assert torch.equal(outs, whole.output) and torch.equal(stepper.state.c, whole.step_state.c)
    assert outs.abs().sum() > 0
    torch.manual_seed(8)
    assert not torch.equal(torch.stack([stepper(x[:, n]) for n in range(6)], 1), outs)  # fresh draws
    with pytest.raises(ValueError, match="NaN"):
        stepper(torch.full((2, 5), float("nan"), dtype=dtype))
    with pytest.raises(ValueError, match="shape"):
        stepper(torch.ones(5, dtype=dtype))


@pytest.mark.parametrize("backend", _backends())
def test_weights_are_read_when_the_streamer_is_created(backend: str) -> None:
    layer = _layer(mode="snn", timesteps=2, num_layers=2)
    x = _inputs(5)
    before = layer(x).output
    stepper = layer.streamer(backend=backend)
    with torch.no_grad():
        layer.weight_ih_l0.mul_(-1.0)
        layer.neurons[0].f.threshold.fill_(1.0)
    assert torch.equal(torch.stack([stepper(x[:, n]) for n in range(5)], 1), before)
    outs, _ = _stream(layer, x, backend)  # a new streamer reads the new weights
    assert torch.equal(outs, layer(x).output) and not torch.equal(outs, before)
