"""The layer stack of a :class:`~snnlstm.nn.lstm.SpikingLSTM`: every layer through one backend kernel,
the Poisson encoding of the first layer's input, dropout between layers, padding and the final states."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..functional.encoding import poisson_encode
from ..measure.ops import ann_layer_stats, hybrid_layer_stats, snn_layer_stats
from ..nn.inputs import HALF_DTYPES, mask_padding
from ..nn.outputs import LSTMOutput, LSTMState
from .ann import ann_layer, last_real
from .hybrid import hybrid_layer
from .snn import snn_layer

if TYPE_CHECKING:
    from ..nn.lstm import SpikingLSTM


def run_stack(
    layer: "SpikingLSTM", x: Tensor, state: tuple[Tensor, Tensor] | None, lengths: Tensor | None, kernel: str
) -> LSTMOutput:
    """Run the layer stack of ``layer`` with the resolved ``kernel`` (one of the mode's
    :data:`snnlstm.backends.selection.KERNELS`); the arguments are those of ``SpikingLSTM.forward``,
    already checked (``lengths`` on any device: :func:`snnlstm.nn.inputs.check_lengths`).

    No host synchronisation on any torch kernel, except ``"torch-native"`` with ``lengths`` on a device:
    torch's packed LSTM kernel (cuDNN's too) needs the lengths on the host, so they are copied there
    once per layer; pass them as a CPU tensor (as ``pack_padded_sequence`` expects) to avoid it.

    Under ``torch.autocast`` the stack runs in float32 with autocast off (membranes, spike decisions
    and counts as in a float32 run; torch's CPU LSTM kernel has no float16 path).

    Returns:
        :class:`snnlstm.nn.outputs.LSTMOutput`.
    """
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            full = None if state is None else (state[0].float(), state[1].float())
            return run_stack(layer, x.float() if x.dtype in HALF_DTYPES else x, full, lengths, kernel)
    xt = x if not layer.batch_first else x.transpose(0, 1)  # [N, B, F]
    # torch's packed LSTM kernel takes host lengths; everything else indexes with lengths on x's device,
    # copied there without a synchronisation (a pageable host-to-device copy with non_blocking=True is
    # staged at once; the other way round non_blocking would let the host read unfinished data)
    host_lengths = lengths if lengths is not None and lengths.device.type == "cpu" else None
    if lengths is not None:
        lengths = lengths.to(xt.device, non_blocking=host_lengths is not None)
    zeros = xt.new_zeros(layer.num_layers, xt.shape[1], layer.hidden_size)
    h0, c0 = (zeros, zeros) if state is None else state
    layer_in, direct = xt, True
    h_n, c_n, stats, h_steps, c_steps = [], [], [], [], []
    for k in range(layer.num_layers):
        if layer.mode == "ann":
            out, h_last, c_last = ann_layer(kernel, layer, k, layer_in, h0[k], c0[k], lengths, host_lengths)
            layer_stats = ann_layer_stats(layer_in, layer.hidden_size)
        elif layer.mode == "hybrid":
            res = hybrid_layer(kernel, layer, k, layer_in, h0[k], c0[k])
            out, h_last, c_last = res.h, last_real(res.h, lengths), last_real(res.c, lengths)
            layer_stats = hybrid_layer_stats(layer_in, layer.hidden_size, layer.timesteps, res.gate_spikes, res.input_spikes)
        else:
            if k == 0 and layer.encoding == "poisson":
                layer_in, direct = poisson_encode(xt, layer.timesteps), False
            out, cells, counts = snn_layer(kernel, layer, k, layer_in, direct, h0[k], c0[k])
            layer_stats = snn_layer_stats(layer_in, direct, out, counts, layer.spiking_gates, layer.neurons[k].leaks(layer.spiking_gates))
            direct = False
            # [T, B, H] at each step of each sequence's last real element
            h_step = last_real(out.transpose(1, 2), lengths).transpose(0, 1)
            c_step = last_real(cells.transpose(1, 2), lengths).transpose(0, 1)
            h_steps.append(h_step)
            c_steps.append(c_step)
            h_last, c_last = h_step.mean(dim=0), c_step.mean(dim=0)
        if lengths is not None:
            out = mask_padding(out, lengths)
        h_n.append(h_last)
        c_n.append(c_last)
        stats.append(layer_stats)
        if k < layer.num_layers - 1 and layer.dropout > 0 and layer.training:
            out = nn.functional.dropout(out, layer.dropout, training=True)
        layer_in = out
    output = layer_in if layer.mode != "snn" else layer_in.mean(dim=1)  # [N, B, H]
    if layer.batch_first:
        output = output.transpose(0, 1)
    step_state = LSTMState(torch.stack(h_steps), torch.stack(c_steps)) if h_steps else None
    return LSTMOutput(output, LSTMState(torch.stack(h_n), torch.stack(c_n)), tuple(stats), step_state)
