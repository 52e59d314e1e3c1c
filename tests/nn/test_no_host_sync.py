"""No host synchronisation in the forward pass of the torch backends (issue 20, "GPU-ready").

Without a GPU the forward runs on *fake* CUDA tensors (``FakeTensorMode``: shapes, dtypes and devices,
no data), watched by :class:`SyncSpy`: an op that reads device values on the host (``item``, ``bool``,
``nonzero``, ...) or copies between devices with a blocking copy is recorded, and fake tensors refuse
data-dependent outputs outright. torch's own LSTM kernel (``"torch-native"``) asks cuDNN about the real
device, so it runs only in the CUDA test at the end (``torch.cuda.set_sync_debug_mode("error")``).
"""

from __future__ import annotations

import traceback
from typing import Any

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from snnlstm.backends.pipelined import wavefront_order
from snnlstm.nn.crossing import ThresholdCrossingEncoder
from snnlstm.nn.inputs import check_input, check_lengths
from snnlstm.nn.lsnn import LSNN
from snnlstm.nn.lstm import SpikingLSTM

aten = torch.ops.aten
#: ops that read a tensor's values on the host (a device synchronisation) or whose output shape does
SYNC_OPS = {
    aten._local_scalar_dense.default,
    aten.is_nonzero.default,
    aten.item.default,
    aten.nonzero.default,
    aten.masked_select.default,
}
ASSERT_OPS = {aten._assert_async.default, aten._assert_async.msg}

needs_fake_cuda = pytest.mark.skipif(not torch.backends.cuda.is_built(), reason="fake CUDA tensors need a CUDA build of torch")

#: every device-agnostic torch kernel of SpikingLSTM, with the settings that select it
TORCH_KERNELS = [
    ("torch-eager", dict(mode="ann", activation="hard")),
    ("torch-eager", dict(mode="ann", activation="standard", schedule="pipelined")),
    ("torch-fused", dict(mode="snn")),
    ("torch-fused", dict(mode="snn", encoding="poisson", spiking_gates=("i", "f", "g", "o", "tanh_c"))),
    ("torch-pipelined", dict(mode="snn", schedule="pipelined")),
    ("torch-pipelined", dict(mode="snn", schedule="pipelined", timesteps=1)),
    ("torch-sequential", dict(mode="snn", schedule="sequential")),
    ("torch-dense", dict(mode="hybrid", cell="modified")),
]
IDS = ["ann-hard", "ann-eager", "snn-fused", "snn-fused-poisson", "snn-pipelined", "snn-pipelined-T1", "snn-sequential", "hybrid"]


class SyncSpy(TorchDispatchMode):
    """Records host reads of tensor values, blocking copies between devices and device-side asserts.

    Attributes:
        syncs: ``"op at file:line"`` per host read or blocking cross-device copy (the innermost frame
            of the package).
        asserts: number of ``torch._assert_async`` calls (device-side value checks).
    """

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []
        self.asserts = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in SYNC_OPS:
            self.syncs.append(f"{func} at {_caller()}")
        elif func is aten._to_copy.default and "device" in kwargs and not kwargs.get("non_blocking", False):
            if torch.device(kwargs["device"]).type != args[0].device.type:
                self.syncs.append(f"blocking copy {args[0].device} -> {kwargs['device']} at {_caller()}")
        elif func is aten.copy_.default and args[0].device.type != args[1].device.type and not (args[2:] and args[2]):
            self.syncs.append(f"blocking copy {args[1].device} -> {args[0].device} at {_caller()}")
        elif func in ASSERT_OPS:
            self.asserts += 1
        return func(*args, **kwargs)


def _caller() -> str:
    """The innermost frame of the package (or of this test) in the current stack."""
    for frame in reversed(traceback.extract_stack()):
        if "/snnlstm/" in frame.filename and "site-packages" not in frame.filename:
            return f"{frame.filename.split('/snnlstm/')[-1]}:{frame.lineno}"
    return "?"


def fake_cuda(module: nn.Module, mode: FakeTensorMode) -> nn.Module:
    """``module`` with every parameter and buffer replaced by a fake CUDA tensor of ``mode``."""
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            if p is not None:
                m._parameters[name] = nn.Parameter(mode.from_tensor(p.detach()).to("cuda"), requires_grad=p.requires_grad)
        for name, b in list(m._buffers.items()):
            if b is not None:
                m._buffers[name] = mode.from_tensor(b).to("cuda")
    return module


def test_spy_sees_host_reads_and_blocking_copies() -> None:
    x = torch.ones(3)
    with SyncSpy() as spy:
        bool(x.sum() > 0)
        x.tolist()
        x.nonzero()
        x.to("meta")
    assert len(spy.syncs) >= 3 and any("blocking copy" in s for s in spy.syncs)


@needs_fake_cuda
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("kernel,kwargs", TORCH_KERNELS, ids=IDS)
def test_torch_kernels_forward_without_host_sync(kernel: str, kwargs: dict, with_lengths: bool) -> None:
    layer = SpikingLSTM(3, 4, num_layers=2, backend="torch", **{"timesteps": 2, **kwargs})
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake_cuda(layer, mode)
        assert layer.kernel == kernel
        x = torch.randn(2, 5, 3, device="cuda")
        lengths = torch.tensor([5, 3], device="cuda") if with_lengths else None
        state = (torch.zeros(2, 2, 4, device="cuda"), torch.zeros(2, 2, 4, device="cuda"))
        with SyncSpy() as spy:
            out = layer(x, state, lengths=lengths)
    assert spy.syncs == []
    assert spy.asserts == 1 + with_lengths  # NaN inputs and lengths: device-side assertions
    assert out.output.device.type == "cuda" and out.output.shape == (2, 5, 4)
    assert all(s.ac.device.type == "cuda" for s in out.stats)


@needs_fake_cuda
def test_lsnn_and_encoder_forward_without_host_sync() -> None:
    encoder, lsnn = ThresholdCrossingEncoder(levels=2, cue_steps=1, cue_neurons=1), LSNN(5, n_lif=3, n_ahp=3, backend="torch")
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake_cuda(encoder, mode)
        fake_cuda(lsnn, mode)
        assert lsnn.kernel == "torch-eager"
        x = torch.rand(2, 4, 1, device="cuda")
        with SyncSpy() as spy:
            out = lsnn(encoder(x))
    assert spy.syncs == [] and spy.asserts == 2
    assert out.output.shape == (2, 5, 6) and out.stats[0].ac.device.type == "cuda"


@needs_fake_cuda
def test_device_lengths_are_checked_without_host_sync() -> None:
    with FakeTensorMode():
        x, lengths = torch.zeros(2, 5, 3, device="cuda"), torch.tensor([5, 3], device="cuda", dtype=torch.int32)
        with SyncSpy() as spy:
            checked = check_lengths(x, lengths, batch_first=True)
            check_input(x, None, 3, 4, 1, 2, True, "ann")
        assert spy.syncs == [] and spy.asserts == 2
        assert checked.dtype == torch.long and checked.device.type == "cuda"
        with pytest.raises(ValueError, match=r"lengths must be \[batch=2\].*got shape \(3,\)"):
            check_lengths(x, torch.ones(3, device="cuda"), batch_first=True)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(
    "kernel,kwargs", TORCH_KERNELS + [("torch-native", dict(mode="ann", activation="standard"))], ids=IDS + ["ann-native"]
)
def test_cpu_forward_reads_the_host_only_in_the_input_checks(kernel: str, kwargs: dict, with_lengths: bool) -> None:
    """On the CPU the input checks read the values at once (no device to wait for); nothing else does."""
    layer = SpikingLSTM(3, 4, num_layers=2, backend="torch", **{"timesteps": 2, **kwargs})
    assert layer.kernel == kernel
    lengths = torch.tensor([5, 3]) if with_lengths else None
    with SyncSpy() as spy:
        layer(torch.randn(2, 5, 3), lengths=lengths)
    assert spy.syncs and all(" at nn/inputs.py:" in s for s in spy.syncs), spy.syncs
    assert spy.asserts == 0


@pytest.mark.parametrize("n_steps,timesteps", [(1, 1), (4, 1), (1, 3), (3, 2), (2, 5), (6, 3)])
def test_wavefront_order_inverts_the_wavefront_layout(n_steps: int, timesteps: int) -> None:
    rows = [n * timesteps + d - n for d in range(n_steps + timesteps - 1)
            for n in range(max(0, d - timesteps + 1), min(d, n_steps - 1) + 1)]  # cell of each wavefront row
    order = wavefront_order(n_steps, timesteps, torch.device("cpu"))
    assert [rows[i] for i in order.tolist()] == list(range(n_steps * timesteps))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "kernel,kwargs", TORCH_KERNELS + [("torch-native", dict(mode="ann", activation="standard"))], ids=IDS + ["ann-native"]
)
def test_cuda_forward_does_not_synchronise(kernel: str, kwargs: dict) -> None:
    layer = SpikingLSTM(3, 4, num_layers=2, backend="torch", **{"timesteps": 2, **kwargs}).cuda()
    assert layer.kernel == kernel
    x = torch.randn(2, 5, 3, device="cuda")
    for lengths in (None, torch.tensor([5, 3]), torch.tensor([5, 3], device="cuda")):
        if kernel == "torch-native" and lengths is not None and lengths.is_cuda:
            continue  # the packed cuDNN kernel reads lengths on the host: pass them on the CPU
        layer(x, lengths=lengths)  # warm-up: lazy initialisation (cuBLAS handles, ...) may synchronise
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            layer(x, lengths=lengths)
        finally:
            torch.cuda.set_sync_debug_mode("default")
