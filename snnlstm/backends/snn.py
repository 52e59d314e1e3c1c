"""Spiking LSTM layer implementations (Datta et al. 2022): the fused wavefront (C++ or torch), the
pipelined wavefront through autograd, and the sequential reference.

All compute the same model (:func:`snnlstm.functional.cells.spiking_cell_step`), outputs, states,
spike counts and gradients; :func:`snnlstm.backends.selection.resolve` picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..functional.cells import SpikingCellParams
from ..functional.gates import counts_by_gate
from .ann import cell_weights
from .fused_snn import FusedConfig, fused_spiking_layer
from .pipelined import compiled, pipelined
from .reference import sequential, snn_step

if TYPE_CHECKING:
    from ..nn.gates import GateNeurons
    from ..nn.lstm import SpikingLSTM


def snn_layer(
    kernel: str, layer: "SpikingLSTM", k: int, x: Tensor, direct: bool, h0: Tensor, c0: Tensor
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Run spiking layer ``k``.

    Args:
        kernel: ``"cpp-fused"``, ``"torch-fused"``, ``"torch-pipelined"`` or ``"torch-sequential"``.
        x: analog input ``[N, B, F]`` (direct) or spikes ``[N, T, B, F]``.
        direct: ``x`` is analog (the same current at every step).
        h0, c0: ``[B, H]`` (read at every step of element 0) or ``[T, B, H]`` (per step).

    Returns:
        ``h`` spikes and cell states ``c``, each ``[N, T, B, H]``, and the spike counts per gate.
    """
    w_ih, w_hh_t, b = cell_weights(layer, k)
    neurons = layer.neurons[k]
    params = neurons.cell_params(layer.hidden_size, layer.timesteps, layer.bias_shift, layer.spiking_gates, layer.activation, layer.clamp_c)
    if kernel in ("cpp-fused", "torch-fused"):
        # the constant i/f/o currents V/2 + V/(2T) join the bias: one addmm per sequence
        offset = fused_offset(params, layer.hidden_size)
        bias = offset if b is None else b + offset
        proj = torch.addmm(bias, x.reshape(-1, x.shape[-1]), w_ih.t()).view(*x.shape[:-1], bias.shape[0])
        return _fused(kernel == "cpp-fused", layer, proj, direct, w_hh_t, h0, c0, params, neurons)
    proj = x @ w_ih.t()
    if b is not None:
        proj = proj + b
    run = sequential if kernel == "torch-sequential" else pipelined
    step = compiled(snn_step) if layer.compile_mode == "step" else snn_step
    if layer.compile_mode == "full":
        run = compiled(run)
    return run(proj, direct, w_hh_t, h0, c0, params, neurons.f.spike_grad, layer.timesteps, step)


def fused_offset(params: SpikingCellParams, hidden: int) -> Tensor:
    """Constant input currents ``[4H]`` of the fused cell: ``V/2 + V/(2T)`` on the i, f, o gates (none
    on an analog i gate, which reads its raw pre-activation), none on g."""
    offset = params.offset_sig
    if not params.spike_i:
        offset = torch.cat([offset.new_zeros(hidden), offset[hidden:]])
    return torch.cat([offset, offset.new_zeros(hidden)])


def _fused(
    use_cpp: bool,
    layer: "SpikingLSTM",
    proj: Tensor,
    direct: bool,
    w_hh_t: Tensor,
    h0: Tensor,
    c0: Tensor,
    params: SpikingCellParams,
    neurons: "GateNeurons",
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """The wavefront through :func:`snnlstm.backends.fused_snn.fused_spiking_layer`."""
    cfg = FusedConfig(
        timesteps=layer.timesteps,
        direct=direct,
        shift=params.shift,
        spike_i=params.spike_i,
        spike_g=params.spike_g,
        activation=params.activation,
        surrogate=neurons.f.surrogate_name,
        gamma=float(neurons.f.gamma),
        compiled=layer.compile_mode != "none",
        use_cpp=use_cpp,
    )
    v_g, leak_g = params.v_g, params.leak_g
    if not params.spike_g:  # an analog g gate leaves its neuron's leak (and, if standard, thresholds) unused
        leak_g = leak_g.detach()
        if params.activation == "standard":
            v_g = (v_g[0].detach(), v_g[1].detach())
    out = fused_spiking_layer(proj, w_hh_t, h0, c0, params.v_sig, params.leak_sig, v_g, leak_g, params.v_c, params.leak_c, cfg)
    return out.h, out.c, counts_by_gate(out.counts)
