"""The LSNN layer's backend: resolved explicitly, refused by name, visible, logged once.

The numerical agreement of the two kernels (spikes, states, every gradient) is
``tests/nn/test_lsnn.py::test_fused_loop_matches_the_eager_loop``.
"""

from __future__ import annotations

import logging

import pytest
import torch

import snnlstm.backends.fused_lsnn as fused_lsnn
import snnlstm.nn.lsnn as lsnn_module
from snnlstm.backends.lsnn_selection import LSNNOptions, resolve_lsnn
from snnlstm.backends.selection import BackendError
from snnlstm.kernels import build
from snnlstm.nn.lsnn import LSNN

AHP = LSNNOptions("ahp", "triangular", "fused")
CPU = torch.device("cpu")


@pytest.fixture
def cpp() -> None:
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def _layer(**kwargs) -> LSNN:
    torch.manual_seed(0)
    return LSNN(3, n_lif=3, n_ahp=3, beta=20.0, input_gain=3.0, **kwargs)


def _forbid_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every way into the C++ LSNN kernels fail the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the C++ kernels were called")

    monkeypatch.setattr(build, "fused_cell_kernels", forbidden)
    monkeypatch.setattr(fused_lsnn, "fused_cell_kernels", forbidden)
    monkeypatch.setattr(lsnn_module, "fused_lsnn_layer", forbidden)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auto_runs_the_fused_cpp_loop_on_the_cpu(cpp: None, dtype: torch.dtype) -> None:
    layer = _layer().to(dtype)
    assert (layer.backend, layer.kernel) == ("cpp", "cpp-fused")
    assert layer.resolve_backend().reason == ""
    assert layer(torch.rand(2, 5, 3, dtype=dtype)).output.shape == (2, 5, 6)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"neuron_form": "alif"}, "neuron_form='ahp' only, not 'alif'"),
        ({"surrogate": "fast_sigmoid"}, "triangular surrogate only, not 'fast_sigmoid'"),
        ({"schedule": "eager"}, "schedule='eager' runs the eager Python loop"),
    ],
    ids=["alif", "fast_sigmoid", "schedule_eager"],
)
def test_settings_the_cpp_loop_cannot_run_choose_torch_or_refuse(kwargs: dict, needle: str) -> None:
    auto = _layer(**kwargs)
    assert (auto.backend, auto.kernel) == ("torch", "torch-eager")
    assert needle in auto.resolve_backend().reason
    auto(torch.rand(2, 4, 3))  # runs
    explicit = _layer(backend="cpp", **kwargs)
    with pytest.raises(BackendError, match=f"backend='cpp' cannot run this LSNN layer: .*{needle}.*use backend='auto' or 'torch'"):
        explicit(torch.rand(2, 4, 3))


@pytest.mark.parametrize(
    ("device", "dtype", "needle"),
    [
        (torch.device("cuda"), torch.float32, "CPU only and the layer is on cuda"),
        (torch.device("meta"), torch.float32, "CPU only and the layer is on meta"),
        (CPU, torch.bfloat16, "float32/float64 and the layer is bfloat16"),
    ],
    ids=["cuda", "meta", "bfloat16"],
)
def test_pure_resolution_off_the_cpu_or_float(device: torch.device, dtype: torch.dtype, needle: str) -> None:
    """No CUDA needed: the resolution is a function of the device and dtype, not of a tensor."""
    auto = resolve_lsnn("auto", device, dtype, AHP)
    assert (auto.backend, auto.kernel) == ("torch", "torch-eager") and needle in auto.reason
    assert resolve_lsnn("torch", device, dtype, AHP) == ("torch", "torch-eager", "")
    with pytest.raises(BackendError, match=needle):
        resolve_lsnn("cpp", device, dtype, AHP)


def test_meta_device_layer_resolves_to_torch() -> None:
    layer = _layer().to("meta")
    assert layer.kernel == "torch-eager" and "CPU only" in layer.resolve_backend().reason
    layer.backend = "cpp"
    with pytest.raises(BackendError, match="CPU only"):
        layer.resolve_backend()


def test_unbuilt_kernels_choose_torch_or_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "fused_cell_kernels", lambda: None)
    auto = _layer()
    assert (auto.backend, auto.kernel) == ("torch", "torch-eager")
    assert "not built (SNNLSTM_NO_CPP" in auto.resolve_backend().reason
    monkeypatch.setattr(lsnn_module, "fused_lsnn_layer", None)  # the eager loop must not reach for it
    auto(torch.rand(2, 4, 3))
    with pytest.raises(BackendError, match="not built.*use backend='auto' or 'torch'"):
        _layer(backend="cpp")(torch.rand(2, 4, 3))


def test_torch_backend_never_touches_the_cpp_kernels_and_agrees_with_them(cpp: None, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(2, 30, 3, dtype=torch.float64)
    runs = []
    for backend in ("cpp", "torch"):
        if backend == "torch":
            _forbid_cpp(monkeypatch)
        layer = _layer(backend=backend).double()
        out = layer(x)
        (out.output.sum() + out.state.neurons[0].sum()).backward()
        assert layer.kernel == f"{backend}-{'fused' if backend == 'cpp' else 'eager'}"
        runs.append((out, layer.weight_hh.grad))
    (cpp_out, cpp_grad), (torch_out, torch_grad) = runs
    assert torch.equal(cpp_out.output, torch_out.output) and cpp_out.output.sum() > 0
    for a, b in zip(cpp_out.state.neurons, torch_out.state.neurons):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(cpp_grad, torch_grad, rtol=1e-5, atol=1e-6 * float(cpp_grad.abs().max()))


def test_choice_is_logged_once_per_device_and_dtype(caplog: pytest.LogCaptureFixture) -> None:
    layer = _layer(schedule="eager")
    x = torch.rand(2, 4, 3)
    with caplog.at_level(logging.INFO, logger="snnlstm.nn.lsnn"):
        layer(x)
        layer(x)
        assert layer.kernel == "torch-eager"
        layer.double()
        layer(x.double())
    lines = [r.getMessage() for r in caplog.records if "runs backend" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "cpu/float32 runs backend 'torch', torch-eager (schedule='eager'" in lines[0]
    assert "cpu/float64" in lines[1]


def test_schedule_change_is_followed() -> None:
    layer = _layer(backend="torch")
    assert layer.kernel == "torch-eager"
    layer.schedule = "eager"
    layer.backend = "cpp"
    with pytest.raises(BackendError, match="schedule='eager'"):
        layer.resolve_backend()


def test_bad_names_list_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="unknown backend 'gpu'; allowed: auto, cpp, torch"):
        _layer(backend="gpu")
    layer = _layer()
    with pytest.raises(ValueError, match="unknown backend 'cuda'; allowed: auto, cpp, torch"):
        layer.backend = "cuda"
    with pytest.raises(ValueError, match="unknown schedule 'fast'; allowed: fused, eager"):
        layer.schedule = "fast"
    assert layer.backend_request == "auto" and layer.schedule == "fused"
    assert "backend=auto" in repr(layer)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_autocast_runs_in_float32_and_a_half_module_is_refused(backend: str) -> None:
    """Under bf16 autocast (``precision="bf16-mixed"``) the C++ loop used to fail on the bf16 input
    currents; the layer now runs in float32, spike for spike, and a module cast to bf16 is refused."""
    torch.manual_seed(0)
    layer = LSNN(5, n_lif=6, n_ahp=4, backend=backend)
    x = torch.rand(3, 20, 5) * 3
    ref = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.bfloat16())
        out.output.sum().backward()
    assert out.output.dtype == torch.float32 and torch.equal(out.output, ref.output)
    assert layer.weight_hh.grad is not None and layer.weight_hh.grad.dtype == torch.float32
    with pytest.raises(TypeError, match="LSNN needs float32/float64 weights, got torch.bfloat16.*autocast"):
        layer.to(torch.bfloat16)(x.bfloat16())


def test_the_input_path_is_visible() -> None:
    """Binary inputs on the C++ backend build the currents from the active inputs only; the choice is
    an attribute of the layer."""
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler")
    layer = LSNN(5, n_lif=6, n_ahp=4, backend="cpp")
    layer((torch.rand(2, 7, 5) < 0.3).float())
    assert layer.input_path == "events"
    layer(torch.rand(2, 7, 5))
    assert layer.input_path == "dense"
    torch_layer = LSNN(5, n_lif=6, n_ahp=4, backend="torch")
    torch_layer((torch.rand(2, 7, 5) < 0.3).float())
    assert torch_layer.input_path == "dense"
