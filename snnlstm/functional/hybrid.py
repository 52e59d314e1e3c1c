"""Ponghiran & Roy 2021: the ModifiedLSTMCell and its hybrid analog-spiking conversion, as pure functions.

Training cell (``ModifiedLSTMCell``), gates in ``torch.nn.LSTM`` order (i, f, c̃, o) with one shared bias::

    z = W [x; h] + b
    i, f, o = clamp((z + 2) / 4, 0, 1)          (gradient 1/4 inside [-2, 2])
    c̃       = clamp(z / 2, -1, 1)               (gradient 1/2 inside [-2, 2])
    c' = f c + i c̃     (optionally clamped to [-1, 1], the Loihi constraint)
    h' = o clamp(c' / 2, -1, 1)

Hybrid cell (test time; ``T`` SNN steps per input element, all integer arithmetic as on Loihi):

* weights ``W' = clamp(2 round(128 W), -254, 254)``; biases ``b' = 512 + round(256 b)`` for i, f, o and
  ``round(256 b)`` for c̃, injected every step;
* the signed spike generator turns ``[x; h]`` into spikes: ``u = round(2048 v)``, ``V += |u|``, emit
  ``sign(u)`` and subtract 2048 when ``V > 2048``, so the rate is ``|v|`` (for ``|v| <= 1``);
* i, f, o are IF neurons with threshold 1024 and soft reset (rate ``(z + 2) / 4``); c̃ is a signed IF
  neuron with two membranes ``V+ += I``, ``V- -= I`` and threshold 512, emitting ``+1`` / ``-1`` (rate
  ``z / 2``);
* every membrane restarts at 1 for each input element; spike counts averaged over ``T`` replace the gates
  (c̃'s rate is its net signed count, ``(spikes of V+ - spikes of V-) / T``) and ``c'``, ``h'`` are
  computed in analog as above. The reported spike count of c̃ is every spike of both membranes (they
  never fire in the same step: ``V+ + V-`` starts at 2 and falls by 512 per spike, so a c̃ neuron
  spikes at most once a step).

Every function here is pure torch and runs on any device. The compiled C++ CPU kernels
(:mod:`snnlstm.kernels`: the generator, the gate counter and the event-driven cell) run only when the
caller passes ``use_cpp=True``; a layer does so when its backend resolved to the ``"cpp-event"``
kernel (:func:`snnlstm.backends.selection.resolve`), and ``use_cpp=True`` where the kernels cannot
run (not float32 on the CPU, or not built) raises a ``RuntimeError`` naming the obstacle. Both paths
do the same float arithmetic on integer values, so their results are bit-equal.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = [
    "GEN_THRESHOLD",
    "GATE_THRESHOLD",
    "CAND_THRESHOLD",
    "HybridCellOutput",
    "HybridSequenceOutput",
    "generator_spike_train",
    "hybrid_cell_step",
    "hybrid_gate_rates",
    "hybrid_membrane_counts",
    "hybrid_sequence",
    "modified_cell_step",
    "modified_sigmoid",
    "modified_tanh",
    "quantize_bias",
    "quantize_weight",
    "signed_if_step",
    "soft_if_step",
    "spike_generator_step",
]

GEN_THRESHOLD = 2048
"""Threshold of the input spike generator (and the scale of its input ``u = round(2048 v)``)."""
GATE_THRESHOLD = 1024
"""Threshold of the i, f, o IF neurons."""
CAND_THRESHOLD = 512
"""Threshold of both membranes of the signed c̃ neuron."""
MEMBRANE_START = 1
"""Value every membrane restarts from at each input element."""


def modified_sigmoid(z: Tensor) -> Tensor:
    """``clamp((z + 2) / 4, 0, 1)``; its gradient is 1/4 inside ``[-2, 2]`` and 0 outside. Any shape."""
    return torch.clamp((z + 2.0) / 4.0, 0.0, 1.0)


def modified_tanh(z: Tensor) -> Tensor:
    """``clamp(z / 2, -1, 1)``; its gradient is 1/2 inside ``[-2, 2]`` and 0 outside. Any shape."""
    return torch.clamp(z / 2.0, -1.0, 1.0)


def _cell_update(i: Tensor, f: Tensor, g: Tensor, o: Tensor, c_prev: Tensor, clamp_c: bool) -> tuple[Tensor, Tensor]:
    c = f * c_prev + i * g
    h = o * modified_tanh(c)  # the reference computes h from the unclamped c and carries clamp(c)
    return h, torch.clamp(c, -1.0, 1.0) if clamp_c else c


def modified_cell_step(z: Tensor, c_prev: Tensor, clamp_c: bool = False) -> tuple[Tensor, Tensor]:
    """One step of the ModifiedLSTMCell from its pre-activations.

    Args:
        z: ``W [x; h] + b``, ``[..., 4H]`` in gate order (i, f, c̃, o).
        c_prev: cell state ``[..., H]``.
        clamp_c: clamp the carried cell state to ``[-1, 1]`` after ``h`` is computed (the reference's
            seq-MNIST/Loihi setting).

    Returns:
        ``(h, c)``, each ``[..., H]``.
    """
    zi, zf, zg, zo = z.chunk(4, dim=-1)
    return _cell_update(modified_sigmoid(zi), modified_sigmoid(zf), modified_tanh(zg), modified_sigmoid(zo), c_prev, clamp_c)


def quantize_weight(weight: Tensor) -> Tensor:
    """``clamp(2 round(128 W), -254, 254)``: even integers, 256 per unit of weight. Any shape, same dtype."""
    return torch.clamp(2.0 * torch.round(128.0 * weight), -254.0, 254.0)


def quantize_bias(bias: Tensor) -> Tensor:
    """``512 + round(256 b)`` for the i, f, o blocks and ``round(256 b)`` for c̃.

    Args:
        bias: ``[4H]`` in gate order (i, f, c̃, o) (the shared bias of the ModifiedLSTMCell).

    Returns:
        ``[4H]``, integer-valued, same dtype.
    """
    offset = torch.full_like(bias, 512.0).view(4, -1)
    offset[2] = 0.0
    return offset.reshape(bias.shape) + torch.round(256.0 * bias)


def spike_generator_step(v: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the signed input spike generator.

    ``V += |u|``; where ``V > 2048``: emit ``sign(u)`` and ``V -= 2048``. Over ``T`` steps from ``V = 1``
    the spike count is ``floor((1 + T |u|) / 2048)`` (up to the strict comparison), i.e. rate ``~ |u| / 2048``.

    Args:
        v: membrane ``[...]``.
        u: integer drive ``round(2048 value)``, same shape.

    Returns:
        ``(v, spikes)`` with spikes in ``{-1, 0, +1}``.
    """
    v = v + u.abs()
    fire = v > GEN_THRESHOLD
    return v - GEN_THRESHOLD * fire, torch.sign(u) * fire


def soft_if_step(v: Tensor, current: Tensor, threshold: float = GATE_THRESHOLD) -> tuple[Tensor, Tensor]:
    """IF neuron with soft reset: ``V += I``; where ``V > threshold``: spike 1 and ``V -= threshold``.

    Returns:
        ``(v, spikes)``, spikes in ``{0, 1}``, same shape as ``v``.
    """
    v = v + current
    fire = v > threshold
    return v - threshold * fire, fire.to(v.dtype)


def signed_if_step(v_pos: Tensor, v_neg: Tensor, current: Tensor, threshold: float = CAND_THRESHOLD) -> tuple[Tensor, Tensor, Tensor]:
    """The signed c̃ neuron: ``V+ += I`` and ``V- -= I``, each an IF membrane with soft reset.

    Returns:
        ``(v_pos, v_neg, spikes)`` with spikes ``+1`` (``V+`` fired), ``-1`` (``V-`` fired) or 0.
    """
    v_pos, up = soft_if_step(v_pos, current, threshold)
    v_neg, down = soft_if_step(v_neg, -current, threshold)
    return v_pos, v_neg, up - down


def generator_spike_train(values: Tensor, timesteps: int, use_cpp: bool = False) -> Tensor:
    """The signed spike generator run for ``timesteps`` steps from ``V = 1``, in closed form.

    With ``u = round(2048 v)`` the generator has fired ``n_t = min(t, floor(t |u| / 2048))`` times after
    ``t`` steps (it fires at step ``t`` iff ``1 + t|u| - 2048 n_{t-1} > 2048``, at most once a step), so
    the train is ``sign(u) (n_t - n_{t-1})``: exactly :func:`spike_generator_step` iterated, without a
    loop over ``T``.

    Args:
        values: analog inputs ``[...]``.
        timesteps: ``T >= 1``.
        use_cpp: one pass of the C++ kernel (float32 CPU ``values``, kernels built) instead of torch
            operators; the same spikes.

    Returns:
        Spikes ``[T, ...]`` in ``{-1, 0, +1}``, dtype and device of ``values``.

    Raises:
        RuntimeError: ``use_cpp`` where the C++ kernels cannot run.
    """
    if use_cpp:
        flat = values.reshape(1, -1).contiguous()
        spikes = _cpp_kernels(values).hybrid_generator(flat, timesteps, float(GEN_THRESHOLD))
        return spikes.view(timesteps, *values.shape)
    u = torch.round(GEN_THRESHOLD * values)
    steps = torch.arange(timesteps + 1, dtype=u.dtype, device=u.device).view(-1, *([1] * u.dim()))
    fired = torch.minimum(steps, torch.floor(steps * u.abs() / GEN_THRESHOLD))  # n_t, [T + 1, ...]
    return torch.sign(u) * fired.diff(dim=0)


def hybrid_membrane_counts(current: Tensor, use_cpp: bool = False) -> Tensor:
    """Spikes of every gate membrane driven by integer currents over ``T`` steps.

    i, f, o are soft-reset IF neurons (threshold 1024), c̃ the signed IF neuron (threshold 512) with
    two membranes, ``V+`` driven by ``I`` and ``V-`` by ``-I``; all membranes start at 1. Per step
    ``t``, for every membrane with drive ``I_t`` (``-I_t`` for ``V-``) and threshold ``θ``::

        V <- V + I_t;   s = [V > θ];   V <- V - θ s;   count <- count + s

    (:func:`soft_if_step`): a loop over ``T`` of whole-tensor operations, or with ``use_cpp`` one
    pass of a C++ kernel with the same float arithmetic, so the same counts.

    Args:
        current: ``[T, ..., 4H]`` input currents (synaptic input plus quantised bias), gates (i, f, c̃, o).
        use_cpp: count in the C++ kernel (float32 CPU ``current``, kernels built).

    Returns:
        Counts ``[..., 5H]``, all ``>= 0``, in the order (i, f, c̃ ``V+``, o, c̃ ``V-``).

    Raises:
        ValueError: ``current`` is not ``[T, ..., 4H]``.
        RuntimeError: ``use_cpp`` where the C++ kernels cannot run.
    """
    if current.dim() < 2 or current.shape[-1] % 4:
        raise ValueError(f"current must be [T, ..., 4H] (gates i, f, c~, o), got shape {tuple(current.shape)}")
    if not use_cpp:
        return _membrane_counts_torch(current)
    kernels = _cpp_kernels(current)
    timesteps, width = current.shape[0], current.shape[-1]
    flat = current.reshape(timesteps, math.prod(current.shape[1:-1]), width).contiguous()
    counts = kernels.hybrid_gate_counts(flat, float(GATE_THRESHOLD), float(CAND_THRESHOLD), float(MEMBRANE_START))
    return counts.view(*current.shape[1:-1], width + width // 4)


def hybrid_gate_rates(current: Tensor, use_cpp: bool = False) -> Tensor:
    """Spike rates of the gate neurons driven by integer currents over ``T`` steps
    (:func:`hybrid_membrane_counts` over ``T``; c̃'s rate is signed, ``(V+ - V-) / T``).

    Args:
        current: ``[T, ..., 4H]`` input currents (synaptic input plus quantised bias), gates (i, f, c̃, o).
        use_cpp: count in the C++ kernel (see :func:`hybrid_membrane_counts`).

    Returns:
        Rates ``[..., 4H]``, gates (i, f, c̃, o).

    Raises:
        ValueError: ``current`` is not ``[T, ..., 4H]``.
        RuntimeError: ``use_cpp`` where the C++ kernels cannot run.
    """
    return _counts_to_rates(hybrid_membrane_counts(current, use_cpp), current.shape[0])


def _counts_to_rates(counts: Tensor, timesteps: int) -> Tensor:
    """Gate rates ``[..., 4H]`` (c̃ signed: ``V+ - V-``) from membrane counts ``[..., 5H]``, over ``T``."""
    i, f, pos, o, neg = counts.chunk(5, dim=-1)
    return torch.cat([i, f, pos - neg, o], dim=-1) / timesteps


def _counts_to_gate_spikes(counts: Tensor) -> Tensor:
    """Spikes per gate neuron ``[..., 4H]`` (c̃: every spike of both membranes) from membrane counts."""
    i, f, pos, o, neg = counts.chunk(5, dim=-1)
    return torch.cat([i, f, pos + neg, o], dim=-1)


def _cpp_kernels(*tensors: Tensor) -> Any:
    """The compiled kernel module, for a caller that passed ``use_cpp=True``.

    Raises:
        RuntimeError: a tensor is not float32 on the CPU, or the kernels are not built.
    """
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != torch.float32:
            raise RuntimeError(
                f"the C++ hybrid kernels take float32 CPU tensors, got {t.dtype} on {t.device}; "
                "pass use_cpp=False (a layer: backend='torch') to run in torch"
            )
    from ..kernels.build import fused_cell_kernels

    kernels = fused_cell_kernels()
    if kernels is None:
        raise RuntimeError(
            "the C++ hybrid kernels are not built (SNNLSTM_NO_CPP is set, or no C++ compiler/ninja); "
            "pass use_cpp=False (a layer: backend='torch') to run in torch"
        )
    return kernels


def _membrane_counts_torch(current: Tensor) -> Tensor:
    """:func:`hybrid_membrane_counts` in torch: every membrane at once, a loop over ``T``, in place."""
    ci, cf, cg, co = current.chunk(4, dim=-1)
    drive = torch.cat([ci, cf, cg, co, -cg], dim=-1)  # [T, ..., 5H]; V- integrates -I (signed_if_step)
    hidden = ci.shape[-1]
    threshold = torch.full_like(drive[0], GATE_THRESHOLD)
    threshold[..., 2 * hidden : 3 * hidden] = CAND_THRESHOLD
    threshold[..., 4 * hidden :] = CAND_THRESHOLD
    v = torch.full_like(drive[0], MEMBRANE_START)
    counts = torch.zeros_like(v)
    for drive_t in drive.unbind(0):
        v.add_(drive_t)
        fire = v > threshold
        v.sub_(threshold * fire)
        counts.add_(fire)
    return counts


class HybridCellOutput(NamedTuple):
    """One input element through the hybrid cell: new state, mean gate spike rates, input spike count."""

    h: Tensor
    c: Tensor
    rates: Tensor  # [..., 4H] spike counts / T in gate order (i, f, c̃, o); c̃ signed, (V+ - V-) / T
    input_spikes: Tensor  # [...] spikes emitted by the input generator over the T steps (for energy)
    gate_spikes: Tensor  # [..., 4H] spikes of each gate neuron over the T steps; c̃: both membranes, V+ + V-


def hybrid_cell_step(
    x: Tensor,
    h_prev: Tensor,
    c_prev: Tensor,
    weight_q: Tensor,
    bias_q: Tensor,
    timesteps: int,
    clamp_c: bool = False,
    use_cpp: bool = False,
) -> HybridCellOutput:
    """One input element of the hybrid analog-spiking cell (``timesteps`` SNN steps).

    ``[x; h]`` goes through the spike generator, its spikes through the integer synapses
    (``current_t = W' s_t + b'``) into the gate neurons (in torch one matmul for all T steps, then
    :func:`hybrid_membrane_counts`; with ``use_cpp`` one event-driven C++ pass that adds only the
    synapse rows of the inputs that spiked, with the same integer sums, so the same counts); the rates
    ``ī, f̄, c̄, ō`` then update ``c' = f̄ c + ī c̄`` and ``h' = ō clamp(c'/2, -1, 1)`` in analog.

    Args:
        x: input ``[B, I]``.
        h_prev: hidden state ``[B, H]``.
        c_prev: cell state ``[B, H]``.
        weight_q: :func:`quantize_weight` of ``[W_ih, W_hh]``, ``[4H, I + H]``.
        bias_q: :func:`quantize_bias` of the shared bias, ``[4H]``.
        timesteps: ``T >= 1``.
        clamp_c: clamp ``c`` to ``[-1, 1]`` as the trained cell did.
        use_cpp: the event-driven C++ pass (CPU, float32, kernels built; a layer asks for it when its
            backend resolved to ``"cpp-event"``), else the dense torch path (any device and dtype).
            Both give the same integer sums, so the same counts.

    Returns:
        :class:`HybridCellOutput`; ``h``, ``c`` ``[B, H]``.

    Raises:
        RuntimeError: ``use_cpp`` where the C++ kernels cannot run.
        ValueError: ``use_cpp`` with inputs that are not ``[B, I]``.
    """
    values = torch.cat([x, h_prev], dim=-1)
    if use_cpp:
        kernels = _cpp_kernels(values, weight_q, bias_q)
        if values.dim() != 2:
            raise ValueError(f"the event-driven C++ hybrid kernel takes x [B, I] and h_prev [B, H], got [x; h] {tuple(values.shape)}")
        # event-driven: only the synapses of the inputs that spiked, no [T, B, 4H] current
        counts, input_spikes = kernels.hybrid_element_counts(
            values.contiguous(), weight_q.t().contiguous(), bias_q.contiguous(), timesteps,
            float(GEN_THRESHOLD), float(GATE_THRESHOLD), float(CAND_THRESHOLD), float(MEMBRANE_START),
        )
    else:
        spikes = generator_spike_train(values, timesteps)  # [T, B, I + H]
        current = torch.addmm(bias_q, spikes.flatten(0, 1), weight_q.t()).view(*spikes.shape[:-1], -1)
        counts = hybrid_membrane_counts(current)
        input_spikes = spikes.abs().sum(dim=(0, -1))
    rates = _counts_to_rates(counts, timesteps)
    i, f, g, o = rates.chunk(4, dim=-1)
    h, c = _cell_update(i, f, g, o, c_prev, clamp_c)
    return HybridCellOutput(h, c, rates, input_spikes, _counts_to_gate_spikes(counts))


class HybridSequenceOutput(NamedTuple):
    """A whole sequence through the hybrid cell.

    Attributes:
        h: hidden states ``[N, B, H]`` (analog).
        c: cell states ``[N, B, H]`` (carried, so clamped with ``clamp_c``).
        gate_spikes: spike counts per gate, summed over N, T, B and H, ``[4]`` (i, f, c̃, o; c̃ counts
            every spike of both of its membranes, ``V+`` and ``V-``, not the net signed count).
        input_spikes: spikes of the input generators (``[x; h]``), summed over everything, 0-dim.
    """

    h: Tensor
    c: Tensor
    gate_spikes: Tensor
    input_spikes: Tensor


def hybrid_sequence(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    timesteps: int,
    clamp_c: bool = False,
    use_cpp: bool = False,
) -> HybridSequenceOutput:
    """Run the hybrid cell over a sequence, ``T`` SNN steps per element (``T * N`` in all).

    The float weights are quantised here (:func:`quantize_weight`, :func:`quantize_bias`), so one
    trained checkpoint can be run at any ``T``. Integer arithmetic is exact in float32.

    Args:
        x: ``[N, B, I]``.
        h0, c0: ``[B, H]``.
        weight_ih: ``[4H, I]``; weight_hh: ``[4H, H]``; bias: shared bias ``[4H]`` or None; all in gate
            order (i, f, c̃, o), as ``torch.nn.LSTM`` stores them.
        timesteps: ``T >= 1``.
        clamp_c: clamp ``c`` to ``[-1, 1]``.
        use_cpp: the event-driven C++ kernel, else torch (see :func:`hybrid_cell_step`).

    Returns:
        :class:`HybridSequenceOutput`.

    Raises:
        RuntimeError: ``use_cpp`` where the C++ kernels cannot run.
    """
    with torch.no_grad():
        weight_q = quantize_weight(torch.cat([weight_ih, weight_hh], dim=1))
        bias_q = quantize_bias(bias if bias is not None else weight_q.new_zeros(weight_q.shape[0]))
        h, c = h0, c0
        outs, cells = [], []
        gate_spikes = x.new_zeros(4)
        input_spikes = x.new_zeros(())
        hidden = h0.shape[-1]
        for x_n in x.unbind(0):
            out = hybrid_cell_step(x_n, h, c, weight_q, bias_q, timesteps, clamp_c, use_cpp)
            h, c = out.h, out.c
            outs.append(h)
            cells.append(c)
            gate_spikes += out.gate_spikes.view(-1, 4, hidden).sum(dim=(0, 2))
            input_spikes += out.input_spikes.sum()
    return HybridSequenceOutput(torch.stack(outs), torch.stack(cells), gate_spikes, input_spikes)
