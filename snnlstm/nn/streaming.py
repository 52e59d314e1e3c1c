"""Streaming inference for real-time use: batch ``B`` (typically 1), one input element per call.

``stepper = layer.streamer()`` returns a :class:`Streamer` (:class:`LSNNStreamer` for an LSNN);
``stepper(x_t)`` runs one element ``x_t [B, F]`` with the state carried from the previous call and
returns exactly what the whole-sequence forward returns at that position, so for a sequence ``x``::

    stepper = lstm.eval().streamer()
    outputs = [stepper(x[:, n]) for n in range(x.shape[1])]      # == lstm(x).output[:, n]

(for spikes and spike rates bit for bit wherever the products ``W x`` round alike, e.g. always for
weights and inputs on a power-of-two grid; the non-spiking ``h`` to rounding; see
``tests/nn/test_streaming.py``). ``stepper.reset()`` starts a new sequence (optionally from a given
state) and ``stepper.state`` is the carried state. With Poisson encoding each call draws the element's
``T`` input spike vectors (:func:`snnlstm.functional.encoding.poisson_encode`) from torch's global
generator; on the CPU, from the same seed, these are the whole-sequence forward's spike trains.

The streamer is inference only: it runs without autograd (its outputs never carry a graph) and reads
the layer's weights, thresholds and leaks once, when it is created (make a new one after changing
them). It computes the layer in evaluation mode: a layer in training mode with dropout between its
layers is refused. Which kernel runs is chosen once, as the layer's backend is (``layer.backend``
``"auto"``/``"cpp"``/``"torch"``, or the ``backend=`` argument), visible as ``stepper.backend``,
``stepper.kernel`` and ``stepper.reason`` and logged once: ``"cpp-stream"`` runs each element as one
C++ call on buffers allocated once (CPU, float32/float64), ``"torch-stream"`` as torch operators on
any device (:mod:`snnlstm.backends.streaming`). The schedule and ``compile`` options of the layer
concern whole sequences and do not apply.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from ..backends.selection import Resolved
from ..backends.streaming import (
    ann_element, lsnn_element, lsnn_stream_weights, resolve_stream, snn_element, stream_kernels, stream_weights,
)
from ..functional.encoding import poisson_encode
from .inputs import check_precision
from .outputs import LSTMState

if TYPE_CHECKING:
    from .lsnn import LSNN, LSNNState
    from .lstm import SpikingLSTM

_log = logging.getLogger(__name__)


def _check_batch(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def _check_element(x: Tensor, batch: int, features: int, dtype: torch.dtype, who: str) -> None:
    """The torch streamers' input check (the C++ kernel makes the same checks in C++)."""
    if not isinstance(x, Tensor) or x.dim() != 2 or tuple(x.shape) != (batch, features):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who} expects one input element of shape [batch={batch}, features={features}], got {shape}")
    if x.dtype != dtype:
        raise TypeError(f"{who} expects inputs of the layer's dtype {dtype}, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who} input contains NaN or infinite values; clean or impute the data first")


class _KernelChoice:
    """The resolved kernel of a streamer (:func:`snnlstm.backends.streaming.resolve_stream`)."""

    _resolved: Resolved

    @property
    def backend(self) -> str:
        """``"cpp"`` or ``"torch"``."""
        return self._resolved.backend

    @property
    def kernel(self) -> str:
        """``"cpp-stream"`` or ``"torch-stream"``."""
        return self._resolved.kernel

    @property
    def reason(self) -> str:
        """Why ``"auto"`` resolved to the torch kernel (the obstacle), else empty."""
        return self._resolved.reason


class Streamer(_KernelChoice):
    """Element-by-element inference of a :class:`~snnlstm.nn.lstm.SpikingLSTM` (ANN or SNN mode).

    Built by :meth:`SpikingLSTM.streamer <LSTMStreaming.streamer>`. Each call runs one input element
    through every layer, in SNN mode all ``T`` steps of it (cell ``(n, t)`` reads the carried
    ``h, c`` of ``(n-1, t)`` and its own membranes, which start at rest every element)::

        z_k(t) = W_ih in_k(t) + b + W_hh h_k(n-1, t)   (+ V/2 + V/(2T) on the spiking i, f, o)
        out    = (1/T) sum_t h_{L-1}(n, t)              (SNN; ANN: out = h_{L-1}(n))

    with ``in_0(t) = x_t`` (direct encoding) or its Poisson spikes at step ``t``, and
    ``in_k(t) = h_{k-1}(n, t)`` above.

    Attributes:
        backend: ``"cpp"`` or ``"torch"``.
        kernel: ``"cpp-stream"`` or ``"torch-stream"``.
        reason: why ``"auto"`` chose the torch kernel (empty otherwise).
        batch_size: B.
        mode: ``"ann"`` or ``"snn"``.
        timesteps: T (1 in ANN mode).

    Shapes:
        ``stepper(x_t)``: ``x_t [B, F]`` of the layer's dtype and device -> ``[B, H]``.
        ``stepper.state``: ANN ``(h, c)`` each ``[L, B, H]``; SNN per step, each ``[L, T, B, H]``
        (the layout of :attr:`LSTMOutput.step_state`).
    """

    def __init__(self, layer: "SpikingLSTM", batch_size: int = 1, backend: str | None = None) -> None:
        _check_batch(batch_size)
        if layer.mode == "hybrid":
            raise ValueError(
                "streaming runs ANN and SNN mode; Ponghiran & Roy's hybrid cell (mode='hybrid') has no streaming "
                "kernel: run whole sequences, or stream the same weights with layer.configure(mode='ann')"
            )
        if layer.training and layer.dropout > 0 and layer.num_layers > 1:
            raise ValueError(
                f"the streamer computes the layer in evaluation mode, and this layer is in training mode with "
                f"dropout={layer.dropout} between its layers: call layer.eval() first"
            )
        weight = layer.weight_hh_l0
        check_precision(layer.mode, weight.dtype)
        self._resolved = resolve_stream(layer.backend_request if backend is None else backend, weight.device, weight.dtype)
        self.batch_size, self.mode = batch_size, layer.mode
        self._cfg, self._layers = stream_weights(layer)
        self.timesteps = self._cfg.timesteps
        self._features, self._hidden, self._num_layers = layer.input_size, layer.hidden_size, layer.num_layers
        shape = (layer.num_layers, self.timesteps, batch_size, layer.hidden_size)
        self._h = weight.new_zeros(shape)
        self._c = weight.new_zeros(shape)
        self._step: Callable[[Tensor], Tensor]
        if self.kernel == "cpp-stream":
            self._step = self._cpp_kernel().step
        else:
            self._step = self._torch_step
        if self._cfg.encoding == "poisson":
            self._step = self._poisson(self._step)
        why = f" ({self.reason})" if self.reason else ""
        _log.info("SpikingLSTM streamer (%s mode, batch %d) on %s/%s runs %r, %s%s", self.mode, batch_size, weight.device,
                  str(weight.dtype).removeprefix("torch."), self.backend, self.kernel, why)

    def _cpp_kernel(self) -> Any:
        ext = stream_kernels()
        cfg, layers = self._cfg, self._layers
        snn = cfg.mode == "snn"
        fused = cfg.fused
        scalars = [[float(v) for v in torch.stack(lw.neurons[2:]).tolist()] for lw in layers] if snn else []  # type: ignore[index]
        return ext.LSTMStream(
            snn, cfg.encoding == "poisson", bool(fused and fused.spike_i), bool(fused and fused.spike_g), cfg.activation == "standard", cfg.clamp_c,
            float(fused.shift) if fused else 0.0, cfg.v_sig, cfg.v_pos, cfg.v_neg,
            [lw.w_ih_t for lw in layers], [lw.w_hh_t for lw in layers], [lw.bias for lw in layers],
            [lw.neurons.v_sig for lw in layers] if snn else [],  # type: ignore[union-attr]
            [lw.neurons.leak_sig for lw in layers] if snn else [],  # type: ignore[union-attr]
            scalars, self._h, self._c,
        )

    def _poisson(self, step: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """``step`` after the Poisson encoder: the element's ``T`` input spike vectors ``[T, B, F]``."""
        steps, batch, features = self.timesteps, self.batch_size, self._features

        def encoded(x: Tensor) -> Tensor:
            _check_element(x, batch, features, self._h.dtype, "SpikingLSTM streamer")  # NaN would encode to 0
            with torch.no_grad():
                return step(poisson_encode(x.unsqueeze(0), steps)[0])

        return encoded

    def _torch_step(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # Poisson: the encoded spikes of the element
            if not bool(torch.isfinite(x).all()):
                raise ValueError("SpikingLSTM streamer input contains NaN or infinite values; clean or impute the data first")
        else:
            _check_element(x, self.batch_size, self._features, self._h.dtype, "SpikingLSTM streamer")
        if x.device != self._h.device:
            raise ValueError(f"SpikingLSTM streamer: the input is on {x.device} and the layer on {self._h.device}")
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            if self.mode == "snn":
                out, state = snn_element(x, self._layers, self._cfg, LSTMState(self._h, self._c))
                self._h, self._c = state
            else:
                out, state = ann_element(x, self._layers, self._cfg, LSTMState(self._h[:, 0], self._c[:, 0]))
                self._h, self._c = state.h.unsqueeze(1), state.c.unsqueeze(1)
        return out

    def __call__(self, x_t: Tensor) -> Tensor:
        """Run one input element ``x_t [B, F]``; returns the last layer's output ``[B, H]`` for it
        (SNN: the spike rate over its T steps; ANN: ``h``). No autograd."""
        return self._step(x_t)

    def reset(self, state: tuple[Tensor, Tensor] | None = None) -> None:
        """Start a new sequence: from rest, or from ``state``.

        Args:
            state: optional ``(h0, c0)``, each ``[L, B, H]`` (in SNN mode read at every step of the
                first element, as the forward reads it), or in SNN mode a per-step state
                ``[L, T, B, H]`` (an ``out.carry``), which continues that sequence.
        """
        if state is None:
            self._h.zero_()
            self._c.zero_()
            return
        flat = (self._num_layers, self.batch_size, self._hidden)
        per_step = (self._num_layers, self.timesteps, self.batch_size, self._hidden)
        for name, t in zip(("h0", "c0"), state):
            if tuple(t.shape) not in (flat, per_step) or (self.mode == "ann" and tuple(t.shape) != flat):
                also = f" or {per_step}" if self.mode == "snn" else ""
                raise ValueError(f"initial state {name} must have shape {flat}{also}, got {tuple(t.shape)}")
        with torch.no_grad():  # in place: the C++ kernel holds these buffers
            self._h.copy_(state[0] if state[0].dim() == 4 else state[0].unsqueeze(1).expand_as(self._h))
            self._c.copy_(state[1] if state[1].dim() == 4 else state[1].unsqueeze(1).expand_as(self._c))

    @property
    def state(self) -> LSTMState:
        """The carried state (a copy): ANN ``(h, c)`` each ``[L, B, H]``; SNN per step, each ``[L, T, B, H]``."""
        if self.mode == "ann":
            return LSTMState(self._h[:, 0].clone(), self._c[:, 0].clone())
        return LSTMState(self._h.clone(), self._c.clone())


class LSNNStreamer(_KernelChoice):
    """Step-by-step inference of an :class:`~snnlstm.nn.lsnn.LSNN`: one input step per call.

    Built by :meth:`LSNN.streamer <LSNNStreaming.streamer>`. Each call computes
    ``I = W_in x(t) + b + W_rec z(t-1)`` and one step of the LIF/AHP neurons
    (:func:`snnlstm.functional.ahp.ahp_step`, or ``alif_step``), as the layer's forward does per step.

    Attributes:
        backend, kernel, reason, batch_size: as :class:`Streamer`'s (the C++ kernel runs the ``ahp``
            neuron form).

    Shapes:
        ``stepper(x_t)``: ``x_t [B, F]`` -> spikes ``[B, K]``; ``stepper.state``: :class:`LSNNState`.
    """

    def __init__(self, layer: "LSNN", batch_size: int = 1, backend: str | None = None) -> None:
        _check_batch(batch_size)
        weight = layer.weight_hh
        check_precision("snn", weight.dtype)
        unsupported = None if layer.neuron_form == "ahp" else "the C++ streaming kernel runs neuron_form='ahp' only"
        self._resolved = resolve_stream(layer.backend_request if backend is None else backend, weight.device,
                                        weight.dtype, unsupported)
        self.batch_size = batch_size
        self._weights = lsnn_stream_weights(layer)
        self._spike_fn = layer.ahp.spike_grad
        self._features, self._size = layer.input_size, layer.hidden_size
        self._buffers = [weight.new_zeros(batch_size, layer.hidden_size) for _ in range(4)]  # z, v, a, r
        self._step: Callable[[Tensor], Tensor]
        if self.kernel == "cpp-stream":
            w = self._weights
            self._step = stream_kernels().LSNNStream(  # type: ignore[union-attr]
                w.w_in_t, w.bias, w.w_rec_t, w.threshold, w.mem_decay, w.slow_decay, w.strength, w.refractory, *self._buffers
            ).step
        else:
            self._step = self._torch_step
        why = f" ({self.reason})" if self.reason else ""
        _log.info("LSNN streamer (batch %d) on %s/%s runs %r, %s%s", batch_size, weight.device,
                  str(weight.dtype).removeprefix("torch."), self.backend, self.kernel, why)

    def _torch_step(self, x: Tensor) -> Tensor:
        from .lsnn import LSNNState

        _check_element(x, self.batch_size, self._features, self._buffers[0].dtype, "LSNN streamer")
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            z, (spikes, neurons) = lsnn_element(x, self._weights, LSNNState(self._buffers[0], tuple(self._buffers[1:])), self._spike_fn)
        self._buffers = [spikes, *neurons]
        return z

    def __call__(self, x_t: Tensor) -> Tensor:
        """Run one input step ``x_t [B, F]``; returns the spikes ``[B, K]`` of this step. No autograd."""
        return self._step(x_t)

    def reset(self, state: "LSNNState | None" = None) -> None:
        """Start a new sequence: from rest, or from ``state`` (an :class:`LSNNState` of ``[B, K]`` tensors)."""
        with torch.no_grad():  # in place: the C++ kernel holds these buffers
            if state is None:
                for buffer in self._buffers:
                    buffer.zero_()
                return
            values = [state.spikes, *state.neurons]
            for value in values:
                if tuple(value.shape) != (self.batch_size, self._size):
                    raise ValueError(f"LSNN state tensors must have shape {(self.batch_size, self._size)}, got {tuple(value.shape)}")
            for buffer, value in zip(self._buffers, values):
                buffer.copy_(value)

    @property
    def state(self) -> "LSNNState":
        """The carried :class:`LSNNState` (a copy): spikes of the last step and the neuron state."""
        from .lsnn import LSNNState

        z, *neurons = (b.clone() for b in self._buffers)
        return LSNNState(z, tuple(neurons))  # type: ignore[arg-type]


class LSTMStreaming:
    """Mixin of :class:`~snnlstm.nn.lstm.SpikingLSTM`: :meth:`streamer`."""

    def streamer(self: "SpikingLSTM", batch_size: int = 1, backend: str | None = None) -> Streamer:  # type: ignore[misc]
        """A :class:`Streamer` for real-time inference: one input element per call, the state carried.

        ``stepper = layer.streamer(); y_n = stepper(x[:, n])`` gives ``layer(x).output[:, n]``: in
        SNN mode the spike rate of the last layer over the element's T steps, in ANN mode its ``h``.
        Inference only (no autograd), evaluation-mode semantics, weights read now (module docstring of
        :mod:`snnlstm.nn.streaming`).

        Args:
            batch_size: sequences streamed side by side (B; 1 for real-time use).
            backend: ``"auto"``, ``"cpp"`` or ``"torch"``; None follows ``layer.backend``'s request.

        Returns:
            :class:`Streamer`.

        Raises:
            ValueError: hybrid mode, or training mode with dropout (the message says why).
            snnlstm.backends.selection.BackendError: ``"cpp"`` where the C++ kernel cannot run.
        """
        return Streamer(self, batch_size, backend)


def lsnn_streamer(layer: "LSNN", batch_size: int = 1, backend: str | None = None) -> LSNNStreamer:
    """An :class:`LSNNStreamer` of ``layer`` (what :meth:`LSNN.streamer` returns).

    Args:
        layer: the LSNN.
        batch_size: sequences streamed side by side (B).
        backend: ``"auto"``, ``"cpp"`` or ``"torch"``; None follows ``layer.backend``'s request.

    Raises:
        snnlstm.backends.selection.BackendError: ``"cpp"`` where the C++ kernel cannot run.
    """
    return LSNNStreamer(layer, batch_size, backend)
