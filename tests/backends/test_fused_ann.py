"""The fused non-spiking layer (C++ sequence kernels, hand-written backward) against the eager loop."""

from __future__ import annotations

import pytest
import torch

from snnlstm.kernels import build as _cpp
from snnlstm.backends.fused_ann import fused_ann_available, fused_ann_layer
from snnlstm.nn.lstm import SpikingLSTM

CASES = {
    "lstm-hard": dict(cell="lstm"),
    "lstm-hard-custom-thresholds": dict(cell="lstm", v_sig=3.0, v_tanh_pos=0.75, v_tanh_neg=-1.5),
    "lstm-standard": dict(cell="lstm", activation="standard"),
    "modified": dict(cell="modified"),
    "modified-clamp_c": dict(cell="modified", clamp_c=True),
    "baseline-clamp_c": dict(cell="baseline", clamp_c=True),
    "two-layers-dropout": dict(cell="lstm", num_layers=2, dropout=0.3),
    "no-bias": dict(cell="lstm", bias=False),
}


@pytest.fixture(autouse=True)
def _kernels() -> None:
    if _cpp.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def _run(kwargs: dict, schedule: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = SpikingLSTM(x.shape[-1], 6, mode="ann", schedule=schedule, **kwargs).double()
    with torch.no_grad():  # larger weights: saturated and linear units, clamped and free c
        for name, p in model.named_parameters():
            if name.startswith(("weight", "bias")) and p.requires_grad:
                p.mul_(3.0)
    h0 = torch.randn(model.num_layers, x.shape[0], 6, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(model.num_layers, x.shape[0], 6, dtype=torch.float64, requires_grad=True)
    xx = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # same dropout masks
    model.train()
    out = model(xx, (h0, c0))
    weights = torch.linspace(-1.0, 1.0, out.output.numel(), dtype=torch.float64).view_as(out.output)
    loss = (out.output * weights).sum() + 0.7 * out.state.c.sum() + 0.3 * out.state.h.sum()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    grads.update(x=xx.grad, h0=h0.grad, c0=c0.grad)
    return out.output.detach(), out.state.c.detach(), grads


@pytest.mark.parametrize("kwargs", list(CASES.values()), ids=list(CASES))
def test_fused_matches_the_eager_loop(kwargs: dict) -> None:
    x = torch.randn(3, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    out_f, c_f, g_f = _run(kwargs, "fused", x)
    out_e, c_e, g_e = _run(kwargs, "pipelined", x)
    torch.testing.assert_close(out_f, out_e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_f, c_e, rtol=1e-12, atol=1e-12)
    assert g_f.keys() == g_e.keys()
    for name in g_e:
        torch.testing.assert_close(g_f[name], g_e[name], rtol=1e-10, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")


def test_clamp_c_is_exercised_and_h_sees_the_unclamped_c() -> None:
    """With saturated i, f, g the carried c is clamped to 1 while h = o * clamp(c'/2) uses c' = 1 + 1."""
    model = SpikingLSTM(1, 2, cell="modified", clamp_c=True).double()
    with torch.no_grad():
        model.weight_ih_l0.zero_()
        model.weight_hh_l0.zero_()
        model.bias_ih_l0.copy_(torch.tensor([9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 0.0, 0.0]))  # i, f, c~ = 1; o = 1/2
    out = model(torch.zeros(1, 3, 1, dtype=torch.float64))
    # c' = 1, 2, 2 (f c + i g with c carried as 1); h = o * clamp(c'/2, -1, 1) = 0.25, 0.5, 0.5
    torch.testing.assert_close(out.output[0, :, 0], torch.tensor([0.25, 0.5, 0.5], dtype=torch.float64))
    assert out.state.c.max().item() == 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_float32_and_inference_without_grad(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    fused = SpikingLSTM(3, 5, cell="modified", clamp_c=True).to(dtype)
    eager = SpikingLSTM(3, 5, cell="modified", clamp_c=True, schedule="pipelined").to(dtype)
    eager.load_state_dict(fused.state_dict())
    x = torch.randn(2, 9, 3, dtype=dtype) * 3
    with torch.no_grad():
        torch.testing.assert_close(fused(x).output, eager(x).output)


def test_second_backward_through_one_graph_is_a_clear_error() -> None:
    model = SpikingLSTM(2, 3)
    out = model(torch.randn(2, 4, 2)).output.sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="schedule='pipelined'"):
        out.backward()


def test_availability_and_shape_errors() -> None:
    assert fused_ann_available(torch.zeros(1))
    assert not fused_ann_available(torch.zeros(1, dtype=torch.float16))
    x, w_ih, w_hh_t = torch.zeros(4, 2, 3), torch.zeros(20, 3), torch.zeros(5, 20)
    h0 = c0 = torch.zeros(2, 5)
    h, c = fused_ann_layer(x, w_ih, None, w_hh_t, h0, c0, "hard", 4.0, 1.0, -1.0)
    assert h.shape == c.shape == (4, 2, 5)
    with pytest.raises(RuntimeError, match=r"w_hh_t must be \[H, 4H\]"):
        fused_ann_layer(x, w_ih, None, torch.zeros(5, 16), h0, c0, "hard", 4.0, 1.0, -1.0)
