"""The C++ layer (every wavefront in one ``layer_forward`` / ``layer_backward`` call) against the torch
wavefront functions, at the level of :func:`snnlstm.backends.fused_snn.fused_spiking_layer`: every
shape of wavefront (T = 1, the one-product T = 2 runs, the per-cell products of T >= 3, T > N, a single
element), direct and spike inputs, ``[B, H]`` and per-step ``[T, B, H]`` initial states, every gate set,
bias shift on and off, and losses on ``h`` only or on ``c`` only (an absent output gradient)."""

from __future__ import annotations

import itertools

import pytest
import torch

from snnlstm.backends.fused_snn import FusedConfig, fused_spiking_layer
from snnlstm.kernels import build as _cpp

GATES = {  # (spike_i, spike_g, activation): Table 1 gate sets
    "all-spiking": (True, True, "hard"),
    "analog-i-hard": (False, True, "hard"),
    "analog-i-standard": (False, True, "standard"),
    "analog-i-g-hard": (False, False, "hard"),
    "analog-i-g-standard": (False, False, "standard"),
    "analog-g-hard": (True, False, "hard"),
}


@pytest.fixture(autouse=True)
def _needs_cpp() -> None:
    if _cpp.fused_cell_kernels() is None:
        pytest.skip("no C++ compiler: the fused C++ kernels could not be built")


def _inputs(n: int, t: int, batch: int, hid: int, direct: bool, per_step: bool, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo).requires_grad_(True)

    state = (t, batch, hid) if per_step else (batch, hid)
    return dict(
        proj=rand(*((n, batch, 4 * hid) if direct else (n, t, batch, 4 * hid)), lo=-2.0, hi=2.5),
        w_hh_t=rand(hid, 4 * hid),
        h0=rand(*state),
        c0=rand(*state),
        v_sig=rand(3 * hid, lo=0.5, hi=1.5),
        leak_sig=rand(3 * hid, lo=0.7, hi=1.0),
        v_g=(rand(lo=0.5, hi=1.0), rand(lo=-1.0, hi=-0.5)),  # 0-dim leaves
        leak_g=rand(lo=0.7, hi=1.0),
        v_c=(rand(lo=0.5, hi=1.0), rand(lo=-1.0, hi=-0.5)),
        leak_c=rand(lo=0.7, hi=1.0),
    )


def _leaves(inp: dict) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in inp.items():
        for i, leaf in enumerate(v if isinstance(v, tuple) else (v,)):
            out[f"{k}{i}"] = leaf
    return out


def _run(inp: dict, cfg: FusedConfig, loss_on: str) -> tuple[list[torch.Tensor], dict[str, torch.Tensor | None]]:
    leaves = _leaves(inp)
    for leaf in leaves.values():
        leaf.grad = None
    out = fused_spiking_layer(**inp, cfg=cfg)
    gen = torch.Generator().manual_seed(7)
    w_h = torch.randn(out.h.shape, generator=gen, dtype=torch.float64)
    w_c = torch.randn(out.c.shape, generator=gen, dtype=torch.float64)
    loss = (out.h * w_h).sum() if loss_on != "c" else 0.0
    loss = loss + (out.c * w_c).sum() if loss_on != "h" else loss
    loss.backward()
    # leaves the loss does not reach (an analog g's leak, c0 without a c loss) have no gradient
    grads = {k: None if leaf.grad is None else leaf.grad.clone() for k, leaf in leaves.items()}
    return [out.h.detach(), out.c.detach(), out.counts], grads


SHAPES = [(5, 1), (5, 2), (6, 3), (3, 5), (1, 3), (1, 1), (4, 4)]  # (N, T)


@pytest.mark.parametrize("gates", list(GATES), ids=list(GATES))
@pytest.mark.parametrize(("n", "t"), SHAPES, ids=[f"N{n}-T{t}" for n, t in SHAPES])
def test_cpp_layer_matches_torch_wavefront(gates: str, n: int, t: int) -> None:
    spike_i, spike_g, activation = GATES[gates]
    for k, (direct, per_step, shift, loss_on) in enumerate(
        itertools.islice(itertools.product((True, False), (False, True), (True, False), ("both", "h", "c")), 0, None, 5)
    ):
        inp = _inputs(n, t, 3, 4, direct, per_step, seed=k + 10 * n + 100 * t)
        cfg = FusedConfig(t, direct, 1.0 / (2 * t) if shift else 0.0, spike_i, spike_g, activation, "triangular", 0.8)
        ref, g_ref = _run(inp, cfg._replace(use_cpp=False), loss_on)
        out, g = _run(inp, cfg._replace(use_cpp=True), loss_on)
        what = f"direct={direct} per_step={per_step} shift={shift} loss={loss_on}"
        torch.testing.assert_close(out[0], ref[0], rtol=0, atol=0, msg=what)
        torch.testing.assert_close(out[1], ref[1], rtol=1e-12, atol=1e-12, msg=what)
        torch.testing.assert_close(out[2], ref[2], rtol=0, atol=0, msg=what)
        assert g.keys() == g_ref.keys()
        for name in g_ref:
            if g_ref[name] is None or g[name] is None:
                zero = lambda x: x is None or not x.any()  # noqa: E731
                assert zero(g[name]) and zero(g_ref[name]), f"{name}: {what}"
                continue
            torch.testing.assert_close(g[name], g_ref[name], rtol=1e-9, atol=1e-11, msg=f"{name}: {what}")


def test_cpp_layer_without_grad_equals_with_grad() -> None:
    """The no-grad forward (no saved membranes) gives the same outputs and counts."""
    inp = _inputs(6, 3, 5, 8, True, True, seed=3)
    cfg = FusedConfig(3, True, 1.0 / 6, True, True, "hard", "triangular", 1.0, use_cpp=True)
    with torch.no_grad():
        a = fused_spiking_layer(**inp, cfg=cfg)
    b = fused_spiking_layer(**inp, cfg=cfg)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y.detach(), rtol=0, atol=0)


def test_cpp_layer_float32_matches_float64_spikes() -> None:
    """float32 runs the same kernels (a different instantiation): outputs close to float64's."""
    inp = _inputs(5, 2, 4, 8, True, False, seed=5)
    cfg = FusedConfig(2, True, 0.25, True, True, "hard", "triangular", 1.0, use_cpp=True)
    with torch.no_grad():
        a = fused_spiking_layer(**inp, cfg=cfg)
        inp32 = {k: tuple(x.float() for x in v) if isinstance(v, tuple) else v.float() for k, v in inp.items()}
        b = fused_spiking_layer(**inp32, cfg=cfg)
    assert b.h.dtype == torch.float32
    assert (a.h != b.h.double()).float().mean() < 0.05  # rounding may flip a spike at a threshold
