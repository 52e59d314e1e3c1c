"""Pure step functions of the non-spiking and the spiking LSTM cell.

Gate pre-activations arrive pre-computed and ordered ``(i, f, o, g)`` along the last dimension
(``[..., 4H]``): the three sigmoid gates first, so a single IF population updates them at once.
Layers permute ``torch.nn.LSTM``'s ``(i, f, g, o)`` weight rows to this order once per forward.

Non-spiking cell::

    i, f, o = sig(z_i), sig(z_f), sig(z_o);  g = tanh(z_g)
    c = f * c_prev + i * g;                  h = o * tanh_c(c)

Spiking cell (Datta et al. 2022, selective conversion), at SNN step t of element n::

    z[n,t]   = W_x x[n,t] + W_h h[n-1,t] + b
    f, o     : IF neurons, current z + V/2 (+ V/(2T) with the bias shift), spikes in {0,1}
    i or g   : spiking (IF / ternary) or analog (source activation), per ``spike_i`` / ``spike_g``
    c[n,t]   = f[n,t] * c[n-1,t] + i[n,t] * g[n,t]
    h[n,t]   = o[n,t] * S_tanh_c[n,t],   S_tanh_c a ternary neuron integrating c[n,t] over t
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .surrogates import SpikeFn
from .activations import gate_sigmoid, gate_tanh
from .neurons import if_step, ternary_step


class CellMembranes(NamedTuple):
    """Membranes of the spiking neurons of the elements in flight.

    Attributes:
        sig: IF membranes of the i, f, o gates, ``[..., 3H]``.
        g: ternary membrane of the g gate, ``[..., H]``.
        c: ternary membrane of the tanh_c neuron, ``[..., H]``.
    """

    sig: Tensor
    g: Tensor
    c: Tensor


class SpikingCellParams(NamedTuple):
    """Per-forward constants of a spiking cell (built by the layer from its neuron modules).

    Attributes:
        v_sig: thresholds of i, f, o repeated per unit, ``[3H]``.
        leak_sig: leaks of i, f, o, ``[3H]``.
        offset_sig: constant current of i, f, o: ``V/2`` plus the shift ``V/(2T)``, ``[3H]``.
        v_g: ``(V+, V-)`` of the g neuron (0-dim tensors).
        leak_g: leak of the g neuron.
        v_c: ``(V+, V-)`` of the tanh_c neuron.
        leak_c: leak of the tanh_c neuron.
        shift: ``1/(2T)`` when the bias shift is on, else 0.
        spike_i: the input gate spikes (else it is analog).
        spike_g: the g gate spikes (else it is analog).
        activation: source activation for analog gates (``"hard"`` or ``"standard"``).
        clamp_c: clamp the carried ``c`` to ``[-1, 1]`` after every update (``h`` sees it unclamped).
    """

    v_sig: Tensor
    leak_sig: Tensor
    offset_sig: Tensor
    v_g: tuple[Tensor, Tensor]
    leak_g: Tensor
    v_c: tuple[Tensor, Tensor]
    leak_c: Tensor
    shift: float
    spike_i: bool
    spike_g: bool
    activation: str
    clamp_c: bool = False


class SpikingCellOutput(NamedTuple):
    """Output of one spiking cell step: new ``h``, ``c``, membranes and the gate outputs.

    Attributes:
        sig_spikes: IF spikes of i, f, o ``[..., 3H]`` (i's are unused when i is analog).
        g: the g the cell used (ternary spikes, or analog).
        c_spikes: ternary spikes of the tanh_c neuron.
        i: the i the cell used (spikes, or analog).
    """

    h: Tensor
    c: Tensor
    mem: CellMembranes
    sig_spikes: Tensor
    g: Tensor
    c_spikes: Tensor
    i: Tensor | None = None


def lstm_cell_step(
    z: Tensor,
    c_prev: Tensor,
    activation: str,
    v_sig: Tensor | float,
    v_pos: Tensor | float,
    v_neg: Tensor | float,
    clamp_c: bool = False,
) -> tuple[Tensor, Tensor]:
    """Non-spiking LSTM cell with standard or hard activations.

    ``c' = f c + i g``, ``h' = o tanh(c')``; with ``clamp_c`` the returned (carried) state is
    ``clamp(c', -1, 1)`` while ``h'`` sees the unclamped ``c'``, as in Ponghiran & Roy's reference.

    Args:
        z: gate pre-activations ``[..., 4H]`` ordered (i, f, o, g).
        c_prev: cell state ``[..., H]``.
        activation: ``"hard"`` or ``"standard"``.
        v_sig, v_pos, v_neg: hard-activation thresholds (ignored for ``"standard"``).
        clamp_c: clamp the carried cell state to ``[-1, 1]`` (Ponghiran & Roy's Loihi constraint).

    Returns:
        ``(h, c)``, each ``[..., H]``.
    """
    hidden = c_prev.shape[-1]
    z_sig, z_g = z.split([3 * hidden, hidden], dim=-1)
    i, f, o = gate_sigmoid(z_sig, activation, v_sig).chunk(3, dim=-1)
    g = gate_tanh(z_g, activation, v_pos, v_neg)
    c = f * c_prev + i * g
    h = o * gate_tanh(c, activation, v_pos, v_neg)
    return h, torch.clamp(c, -1.0, 1.0) if clamp_c else c


def _tanh_current(x: Tensor, v_pos: Tensor, v_neg: Tensor, shift: float) -> Tensor:
    """Input current of a ternary neuron: ``x + V+/(2T)`` for ``x >= 0``, ``x + V-/(2T)`` below."""
    if shift == 0.0:
        return x
    return x + torch.where(x >= 0, v_pos, v_neg) * shift


def spiking_cell_step(
    z: Tensor,
    c_prev: Tensor,
    mem: CellMembranes,
    p: SpikingCellParams,
    spike_fn: SpikeFn,
) -> SpikingCellOutput:
    """One SNN time step of the spiking LSTM cell for any number of elements in flight.

    Args:
        z: gate pre-activations ``[..., 4H]`` ordered (i, f, o, g).
        c_prev: ``c`` of the previous element at the same SNN step, ``[..., H]``.
        mem: membranes of this element after its previous SNN step.
        p: neuron constants.
        spike_fn: surrogate spike function.

    Returns:
        :class:`SpikingCellOutput` with ``h`` in {-1, 0, 1} and analog ``c``.
    """
    hidden = c_prev.shape[-1]
    z_sig, z_g = z.split([3 * hidden, hidden], dim=-1)
    s_sig, m_sig = if_step(z_sig + p.offset_sig, mem.sig, p.v_sig, p.leak_sig, spike_fn)
    i, f, o = s_sig.chunk(3, dim=-1)
    if not p.spike_i:
        i = gate_sigmoid(z_sig.split(hidden, dim=-1)[0], p.activation, p.v_sig[0])
    if p.spike_g:
        g, m_g = ternary_step(_tanh_current(z_g, *p.v_g, p.shift), mem.g, *p.v_g, p.leak_g, spike_fn)
    else:
        g, m_g = gate_tanh(z_g, p.activation, *p.v_g), mem.g
    c = f * c_prev + i * g
    s_c, m_c = ternary_step(_tanh_current(c, *p.v_c, p.shift), mem.c, *p.v_c, p.leak_c, spike_fn)
    if p.clamp_c:  # the carried state; the tanh_c neuron integrated the unclamped c (as h does in ANN mode)
        c = torch.clamp(c, -1.0, 1.0)
    return SpikingCellOutput(o * s_c, c, CellMembranes(m_sig, m_g, m_c), s_sig, g, s_c, i)
