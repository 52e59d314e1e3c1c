"""One backend per mode, chosen once and explicitly: resolution, refusals by name, visibility."""

from __future__ import annotations

import logging

import pytest
import torch

from snnlstm.backends.selection import BackendError, LayerSettings, resolve
from snnlstm.kernels import build
from snnlstm.nn.lstm import SpikingLSTM

HARD = LayerSettings("hard", "fused", "none", False, "triangular", False)
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def cpp() -> None:
    if build.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def test_auto_on_another_device_chooses_torch_and_says_why() -> None:
    """Pure resolution: no CUDA needed to check what a CUDA layer would run."""
    for mode, kernel in (("ann", "torch-eager"), ("snn", "torch-fused"), ("hybrid", "torch-dense")):
        got = resolve("auto", mode, CUDA, torch.float32, HARD)
        assert (got.backend, got.kernel) == ("torch", kernel)
        assert "CPU only" in got.reason
    with pytest.raises(BackendError, match="backend='cpp' cannot run this SNN-mode layer: .*CPU only.*cuda"):
        resolve("cpp", "snn", CUDA, torch.float32, HARD)


def test_standard_ann_runs_torchs_own_lstm_kernel() -> None:
    standard = HARD._replace(activation="standard")
    for device in (CPU, CUDA):
        assert resolve("auto", "ann", device, torch.float32, standard).kernel == "torch-native"
    assert resolve("auto", "ann", CPU, torch.float32, standard._replace(clamp_c=True)).kernel != "torch-native"
    # while calibrating, the eager loop feeds the observer with every pre-activation
    calibrating = resolve("auto", "ann", CPU, torch.float32, standard._replace(calibrating=True))
    assert calibrating.kernel == "torch-eager" and "calibration" in calibrating.reason


@pytest.mark.parametrize(
    ("settings", "dtype", "mode", "needle"),
    [
        (HARD._replace(clamp_c=True), torch.float32, "snn", "does not clamp c"),
        (HARD._replace(compile="step"), torch.float32, "snn", "compile='step'"),
        (HARD._replace(schedule="pipelined"), torch.float32, "snn", "schedule='pipelined'"),
        (HARD._replace(schedule="sequential"), torch.float32, "ann", "eager per-element loop"),
        (HARD, torch.bfloat16, "ann", "bfloat16"),
        (HARD, torch.float64, "hybrid", "float32"),
    ],
)
def test_explicit_cpp_refuses_by_name(cpp: None, settings: LayerSettings, dtype: torch.dtype, mode: str, needle: str) -> None:
    with pytest.raises(BackendError, match=needle):
        resolve("cpp", mode, CPU, dtype, settings)
    assert resolve("auto", mode, CPU, dtype, settings).backend == "torch"


def test_auto_uses_cpp_on_the_cpu(cpp: None) -> None:
    for mode, kernel in (("ann", "cpp-sequence"), ("snn", "cpp-fused"), ("hybrid", "cpp-event")):
        assert resolve("auto", mode, CPU, torch.float32, HARD) == ("cpp", kernel, "")


def test_disabled_kernels_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNLSTM_NO_CPP", "1")
    monkeypatch.delitem(build._STATE, "module", raising=False)
    try:
        with pytest.raises(BackendError, match="SNNLSTM_NO_CPP"):
            SpikingLSTM(3, 4, mode="snn", backend="cpp")(torch.randn(2, 3, 3))
        layer = SpikingLSTM(3, 4, mode="snn")
        assert (layer.backend, layer.kernel) == ("torch", "torch-fused")
    finally:
        monkeypatch.delitem(build._STATE, "module", raising=False)


def test_unknown_backend_lists_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="unknown backend 'gpu'; allowed: auto, cpp, torch"):
        SpikingLSTM(3, 4, backend="gpu")


def test_compile_is_not_ignored_on_the_cpu() -> None:
    """compile='step' used to be dropped silently on the CPU (the C++ kernels won); now it selects torch."""
    layer = SpikingLSTM(3, 4, mode="snn", compile="step")
    assert (layer.backend, layer.kernel) == ("torch", "torch-fused")


def test_clamp_c_choice_is_visible() -> None:
    layer = SpikingLSTM(3, 4, mode="snn", cell="modified", clamp_c=True)
    assert layer.kernel == "torch-pipelined"
    assert "does not clamp" in layer.resolve_backend().reason


def test_resolution_follows_mode_and_dtype_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    layer = SpikingLSTM(3, 4, activation="standard")
    x = torch.randn(2, 5, 3)
    with caplog.at_level(logging.INFO, logger="snnlstm.nn.lstm"):
        layer(x)
        layer(x)
    lines = [r.getMessage() for r in caplog.records if "runs backend" in r.getMessage()]
    assert len(lines) == 1 and "torch-native" in lines[0]
    layer.mode = "snn"
    assert layer.kernel in ("cpp-fused", "torch-fused")
    layer.mode = "ann"
    layer.double()
    assert layer.kernel == "torch-native"


def test_meta_device_layer_runs_the_torch_backend() -> None:
    """A layer on a non-CPU device resolves to the device-agnostic backend (no silent Python loop choice)."""
    layer = SpikingLSTM(3, 4, mode="snn").to("meta")
    assert layer.backend == "torch"
    with pytest.raises(BackendError, match="CPU only"):
        layer.backend = "cpp"
        layer.resolve_backend()
