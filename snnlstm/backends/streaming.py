"""Streaming inference: one input element per call, the state carried (issue 20).

Pure step functions of the device-agnostic ``"torch"`` streamer, the weight snapshots both streamers
run on, and the resolution between them and the C++ kernel (``snnlstm/kernels/csrc/stream_step.cpp``).
The wrappers users call are :class:`snnlstm.nn.streaming.Streamer` and
:class:`snnlstm.nn.streaming.LSNNStreamer`.

SpikingLSTM, SNN mode: element ``n`` is presented for ``T`` steps. Cell ``(n, t)`` of layer ``k``
needs only ``h_k, c_k`` of ``(n-1, t)`` (the carried per-step state ``[L, T, B, H]``, what
``LSTMOutput.step_state`` holds) and its own membranes after ``(n, t-1)``, which start at rest every
element (:func:`snnlstm.backends.reference.sequential`), so all ``T`` steps of one element run in
one call::

    z_k(n, t) = W_ih in_k(n, t) + b + [V/2 + V/(2T)]_{i,f,o} + W_hh h_k(n-1, t)
    in_0(n, t) = x(n) (direct encoding) or x's spikes at step t (Poisson),   in_k(n, t) = h_{k-1}(n, t)
    output(n)  = (1/T) sum_t h_{L-1}(n, t)

with the cell of :func:`snnlstm.backends.fused_snn.forward_step` (the wavefront backends' per-step
function; here with one element in flight). ANN mode runs
:func:`snnlstm.functional.cells.lstm_cell_step` per layer and the state is ``(h, c)``, each
``[L, B, H]``. The LSNN streamer runs :func:`snnlstm.functional.ahp.ahp_step` (or ``alif_step``)
once per call, as the eager loop of :meth:`snnlstm.nn.lsnn.LSNN.forward` does per step.

Kernels (``streamer.kernel``): ``"cpp-stream"`` (CPU, float32/float64, the extension built: one C++
call per element, preallocated buffers) and ``"torch-stream"`` (torch operators, any device and dtype).
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from ..functional.ahp import AHPState, ALIFState, ahp_step, alif_step
from ..functional.cells import lstm_cell_step
from ..functional.surrogates import SpikeFn
from ..nn.outputs import LSTMState
from .ann import cell_weights
from .fused_snn import FusedConfig, _Params, forward_step
from .selection import Resolved, cpp_or_torch
from .snn import fused_offset

if TYPE_CHECKING:
    from ..nn.lsnn import LSNN, LSNNState
    from ..nn.lstm import SpikingLSTM

#: the implementations a streamer runs
STREAM_KERNELS: tuple[str, ...] = ("cpp-stream", "torch-stream")


class StreamLayer(NamedTuple):
    """One SpikingLSTM layer's weights as the streamers read them (detached snapshots).

    Attributes:
        w_ih_t: input weights transposed ``[F_k, 4H]``, gate columns (i, f, o, g).
        w_hh_t: recurrent weights transposed ``[H, 4H]``.
        bias: ``b_ih + b_hh`` ``[4H]`` (zeros without bias), in SNN mode plus the constant i/f/o
            currents ``V/2 + V/(2T)`` (:func:`snnlstm.backends.snn.fused_offset`).
        neurons: SNN mode: thresholds and leaks (:class:`snnlstm.backends.fused_snn._Params`); else None.
    """

    w_ih_t: Tensor
    w_hh_t: Tensor
    bias: Tensor
    neurons: _Params | None


class StreamConfig(NamedTuple):
    """Static settings of a SpikingLSTM streamer.

    Attributes:
        mode: ``"ann"`` or ``"snn"``.
        timesteps: T (1 in ANN mode).
        activation: ``"hard"`` or ``"standard"`` (ANN cell; analog gates in SNN mode).
        v_sig, v_pos, v_neg: hard-activation thresholds of the ANN cell.
        clamp_c: clamp the carried ``c`` to ``[-1, 1]``.
        encoding: ``"direct"`` or ``"poisson"`` (SNN mode's first-layer input).
        fused: SNN mode: the cell settings of :func:`~snnlstm.backends.fused_snn.forward_step`; else None.
    """

    mode: str
    timesteps: int
    activation: str
    v_sig: float
    v_pos: float
    v_neg: float
    clamp_c: bool
    encoding: str
    fused: FusedConfig | None


def stream_weights(layer: "SpikingLSTM") -> tuple[StreamConfig, tuple[StreamLayer, ...]]:
    """Snapshot (copy) the weights and neuron constants of ``layer`` for streaming (detached, contiguous).

    Returns:
        ``(config, layers)``.
    """
    snn = layer.mode == "snn"
    timesteps = layer.timesteps if snn else 1
    layers, fused = [], None
    with torch.no_grad():
        for k in range(layer.num_layers):
            w_ih, w_hh_t, b = cell_weights(layer, k)
            bias = w_ih.new_zeros(w_ih.shape[0]) if b is None else b
            neurons = None
            if snn:
                p = layer.neurons[k].cell_params(
                    layer.hidden_size, timesteps, layer.bias_shift, layer.spiking_gates, layer.activation, layer.clamp_c
                )
                bias = bias + fused_offset(p, layer.hidden_size)
                neurons = _Params(p.v_sig, p.leak_sig, *p.v_g, p.leak_g, *p.v_c, p.leak_c)
                neurons = _Params(*(t.detach().to(w_ih.dtype).contiguous() for t in neurons))
                fused = FusedConfig(
                    timesteps=timesteps, direct=True, shift=p.shift, spike_i=p.spike_i, spike_g=p.spike_g,
                    activation=p.activation, surrogate=layer.neurons[k].f.surrogate_name,
                    gamma=float(layer.neurons[k].f.gamma),
                )
            layers.append(StreamLayer(w_ih.t().contiguous(), w_hh_t.contiguous(), bias.contiguous(), neurons))
    cfg = StreamConfig(layer.mode, timesteps, layer.activation, float(layer.v_sig), float(layer.v_tanh_pos),
                       float(layer.v_tanh_neg), layer.clamp_c, layer.encoding if snn else "direct", fused)
    return cfg, tuple(layers)


def ann_element(x: Tensor, layers: tuple[StreamLayer, ...], cfg: StreamConfig, state: LSTMState) -> tuple[Tensor, LSTMState]:
    """One input element through the non-spiking stack.

    Per layer ``z = in W_ih^T + b + h_prev W_hh^T``, then
    :func:`~snnlstm.functional.cells.lstm_cell_step`.

    Args:
        x: the element ``[B, F]``.
        layers: :func:`stream_weights`' layers.
        cfg: :func:`stream_weights`' config.
        state: ``(h, c)``, each ``[L, B, H]``.

    Returns:
        ``(h of the last layer [B, H], new state)``.
    """
    inp, hs, cs = x, [], []
    for k, lw in enumerate(layers):
        z = torch.addmm(lw.bias, inp, lw.w_ih_t) + state.h[k] @ lw.w_hh_t
        h, c = lstm_cell_step(z, state.c[k], cfg.activation, cfg.v_sig, cfg.v_pos, cfg.v_neg, cfg.clamp_c)
        hs.append(h)
        cs.append(c)
        inp = h
    return inp, LSTMState(torch.stack(hs), torch.stack(cs))


def snn_element(x: Tensor, layers: tuple[StreamLayer, ...], cfg: StreamConfig, state: LSTMState) -> tuple[Tensor, LSTMState]:
    """One input element through the spiking stack, all ``T`` steps (module docstring).

    Args:
        x: the element ``[B, F]`` (direct encoding: the same current at every step) or its encoded
            input spikes ``[T, B, F]`` (Poisson encoding, :func:`snnlstm.functional.encoding.poisson_encode`).
        layers: :func:`stream_weights`' layers.
        cfg: :func:`stream_weights`' config.
        state: per-step ``(h, c)`` of the previous element, each ``[L, T, B, H]``.

    Returns:
        ``(spike rate of the last layer over the T steps [B, H], new per-step state)``.
    """
    fused = cfg.fused
    assert fused is not None
    steps, batch, hid = state.h.shape[1:]
    inp, hs, cs = x, [], []
    for k, lw in enumerate(layers):
        assert lw.neurons is not None
        # direct: one current for every step; Poisson and above layer 0: input spikes per step
        proj = torch.addmm(lw.bias, inp.reshape(-1, inp.shape[-1]), lw.w_ih_t).view(*inp.shape[:-1], 4 * hid)
        h_new, c_new = torch.empty_like(state.h[k]), torch.empty_like(state.c[k])
        mem = x.new_zeros(1, batch, 5 * hid)  # membranes start at rest every element
        for t in range(steps):
            x_proj = proj if proj.dim() == 2 else proj[t]
            forward_step(x_proj.unsqueeze(0), state.h[k, t].unsqueeze(0), state.c[k, t].unsqueeze(0), mem, lw.w_hh_t,
                         lw.neurons, fused, h_new[t].unsqueeze(0), c_new[t].unsqueeze(0), mem, None, None)
            if cfg.clamp_c:  # the carried c; the tanh_c neuron integrated it unclamped (spiking_cell_step)
                c_new[t].clamp_(-1.0, 1.0)
        hs.append(h_new)
        cs.append(c_new)
        inp = h_new
    return inp.mean(dim=0), LSTMState(torch.stack(hs), torch.stack(cs))


class LSNNStreamWeights(NamedTuple):
    """An LSNN layer's weights and neuron constants as the streamers read them (detached).

    Attributes:
        w_in_t: input weights transposed ``[F, K]``.
        bias: ``[K]`` (zeros without bias).
        w_rec_t: effective recurrent weights transposed ``[K, K]`` (:meth:`LSNN.recurrent_weight`).
        threshold, mem_decay, slow_decay, strength: per-neuron ``[K]``.
        refractory: refractory steps.
        form: ``"ahp"`` or ``"alif"``.
    """

    w_in_t: Tensor
    bias: Tensor
    w_rec_t: Tensor
    threshold: Tensor
    mem_decay: Tensor
    slow_decay: Tensor
    strength: Tensor
    refractory: int
    form: str


def lsnn_stream_weights(layer: "LSNN") -> LSNNStreamWeights:
    """Snapshot (copy) the weights and neuron constants of an LSNN layer for streaming."""
    with torch.no_grad():
        ref = layer.weight_hh
        bias = ref.new_zeros(layer.hidden_size) if layer.bias is None else layer.bias.detach().clone()
        params = (t.detach().contiguous() for t in layer._neuron_params(ref))
        return LSNNStreamWeights(
            layer.weight_ih.detach().t().contiguous(), bias.contiguous(), layer.recurrent_weight().detach().t().contiguous(),
            *params, int(layer.ahp.refractory), layer.neuron_form,
        )


def lsnn_element(x: Tensor, w: LSNNStreamWeights, state: "LSNNState", spike_fn: SpikeFn) -> tuple[Tensor, tuple[Tensor, tuple[Tensor, ...]]]:
    """One step of the LSNN: ``I = x W_in^T + b + z(t-1) W_rec^T``, then the neuron step.

    Args:
        x: the input of this step ``[B, F]``.
        w: :func:`lsnn_stream_weights`.
        state: :class:`snnlstm.nn.lsnn.LSNNState` after the previous step.
        spike_fn: the neurons' surrogate spike function.

    Returns:
        ``(spikes [B, K], (spikes, neuron state))``: the new state's fields.
    """
    step, state_type = (ahp_step, AHPState) if w.form == "ahp" else (alif_step, ALIFState)
    current = torch.addmm(w.bias, x, w.w_in_t)
    z, neurons = step(torch.addmm(current, state.spikes, w.w_rec_t), state_type(*state.neurons), w.threshold,
                      w.mem_decay, w.slow_decay, w.strength, spike_fn, w.refractory)
    return z, (z, tuple(neurons))


def stream_kernels() -> ModuleType | None:
    """The C++ extension, whose ``LSTMStream`` and ``LSNNStream`` classes (``stream_step.cpp``) are the
    streaming kernels, or None when the kernels are not built."""
    from ..kernels.build import fused_cell_kernels

    return fused_cell_kernels()


def stream_cpp_obstacle(device: torch.device, dtype: torch.dtype, unsupported: str | None = None) -> str | None:
    """Why the C++ streaming kernel cannot run, or None when it can (builds the kernels on first call).

    Args:
        device: the layer's device.
        dtype: the layer's parameter dtype.
        unsupported: a setting of the layer the kernel does not run, in words, or None.
    """
    if device.type != "cpu":
        return f"the C++ streaming kernel runs on the CPU only and the layer is on {device}"
    if dtype not in (torch.float32, torch.float64):
        return f"the C++ streaming kernel takes float32/float64 and the layer is {str(dtype).removeprefix('torch.')}"
    if unsupported is not None:
        return unsupported
    if stream_kernels() is None:
        return "the C++ kernels are not built (SNNLSTM_NO_CPP is set, or no C++ compiler/ninja)"
    return None


def resolve_stream(request: str, device: torch.device, dtype: torch.dtype, unsupported: str | None = None) -> Resolved:
    """Choose the streamer's kernel, as the layers choose their backend (:mod:`snnlstm.backends.selection`).

    Args:
        request: ``"auto"``, ``"cpp"`` or ``"torch"``.
        device, dtype: the layer's.
        unsupported: a setting the C++ kernel does not run, or None.

    Returns:
        ``Resolved("cpp", "cpp-stream", "")`` or ``Resolved("torch", "torch-stream", reason)`` (the
        obstacle under ``"auto"``, empty when ``"torch"`` was asked for).

    Raises:
        ValueError: ``request`` is not a backend name.
        BackendError: ``request="cpp"`` where the C++ kernel cannot run, naming the obstacle.
    """
    obstacle = functools.partial(stream_cpp_obstacle, device, dtype, unsupported)
    return cpp_or_torch(request, obstacle, "cpp-stream", "torch-stream", "stream this layer")
