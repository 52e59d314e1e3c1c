"""``LSTMCompat``: a spiking LSTM that answers exactly like ``torch.nn.LSTM`` (a drop-in replacement).

:class:`LSTMCompat` holds a :class:`~snnlstm.nn.lstm.SpikingLSTM` (its submodule ``spiking``) and looks
like an ``nn.LSTM`` from outside:

* ``forward(input, hx=None) -> output, (h_n, c_n)``, batched ``[B, N, F]`` / ``[N, B, F]`` input,
  unbatched ``[N, F]`` input with ``hx`` of shape ``[L, H]``, and ``PackedSequence`` input, as
  ``nn.LSTM`` documents them;
* the attributes ``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``, ``dropout``,
  ``bidirectional`` (False), ``proj_size`` (0), ``all_weights`` and a no-op ``flatten_parameters()``;
* its weights are registered under ``nn.LSTM``'s names (``weight_ih_l0``, ``weight_hh_l0``,
  ``bias_ih_l0``, ``bias_hh_l0``, ...; ``named_parameters()`` and ``state_dict()`` keys included) and
  are the very Parameter objects the inner SpikingLSTM computes with. Built by :meth:`LSTMCompat.from_torch`
  they are the ``nn.LSTM``'s own Parameters, so an optimizer that holds them keeps training them.

What ``nn.LSTM`` does not have sits under ``spiking.``: the thresholds and leaks
(``spiking.neurons.*``) and the conversion settings (``spiking._extra_state``). A state dict of a plain
``nn.LSTM`` (weights only) loads strictly into an ``LSTMCompat`` (thresholds and settings keep their
values), and so does one written by the earlier ``LSTMCompat`` that subclassed SpikingLSTM (its
``neurons.*`` / ``_extra_state`` keys move under ``spiking.``).

Two deliberate differences: ``mode`` is the spiking mode (``"ann"``, ``"snn"``, ``"hybrid"``) instead of
``nn.LSTM``'s constant ``"LSTM"``; in SNN mode ``(h_n, c_n)`` is the state averaged over the last element's
T steps (``nn.LSTM``'s contract has no per-step state; use the inner ``spiking`` layer, whose
``step_state`` continues a sequence exactly, for token-by-token decoding).

Spike statistics: the inner SpikingLSTM is the :class:`~snnlstm.measure.stats.StatsSource` (found by
:func:`~snnlstm.measure.stats.stats_sources`); ``LSTMCompat`` is not one, so every layer is counted once.
:meth:`LSTMCompat.register_stats_hook` registers on the inner layer. :func:`snnlstm.measure.stats.named_stats_sources` names
each inner layer by its ``LSTMCompat``'s path (``encoder`` rather than ``encoder.spiking``).

Which ``nn.LSTM`` modules convert (:func:`check_convertible`): unidirectional, ``proj_size=0``, and either
``nn.LSTM`` itself or a subclass that does not override ``forward`` and holds nothing beyond ``nn.LSTM``'s
own weights (no extra parameters, buffers, submodules or parametrizations: converting would drop them).
Everything else is refused with an error that names the module.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.utils.hooks import RemovableHandle

from ..measure.stats import SpikeStats, StatsSource
from .lstm import SpikingLSTM

__all__ = ["INNER", "LSTMCompat", "NotConvertibleError", "check_convertible", "lstm_weight_names"]

#: attribute name of the inner :class:`SpikingLSTM`
INNER = "spiking"


class NotConvertibleError(ValueError):
    """An ``nn.LSTM`` that cannot become a spiking LSTM (bidirectional, projected, custom forward, extra state)."""


def lstm_weight_names(num_layers: int, bias: bool) -> list[str]:
    """``nn.LSTM``'s parameter names for a unidirectional LSTM without projections, in its order."""
    names: list[str] = []
    for k in range(num_layers):
        names += [f"weight_ih_l{k}", f"weight_hh_l{k}"]
        if bias:
            names += [f"bias_ih_l{k}", f"bias_hh_l{k}"]
    return names


def check_convertible(lstm: nn.Module, name: str = "") -> None:
    """Raise :class:`NotConvertibleError` unless ``lstm`` can be replaced by an :class:`LSTMCompat`.

    Args:
        lstm: the module to check.
        name: its path in the model (for the message).

    Raises:
        NotConvertibleError: not an ``nn.LSTM``; bidirectional; ``proj_size > 0``; a subclass that
            overrides ``forward``; or parameters, buffers or submodules ``nn.LSTM`` does not have.
    """
    where = f"{name!r} ({type(lstm).__qualname__})" if name else type(lstm).__qualname__
    keep = (
        "keep it non-spiking with ANNToSNNConversion(convert_torch_lstm=False) (snnlstm layers still convert), "
        "or replace it by a convertible LSTM"
    )
    if not isinstance(lstm, nn.LSTM):
        raise NotConvertibleError(f"{where} is not a torch.nn.LSTM")
    if lstm.bidirectional:
        raise NotConvertibleError(f"LSTM {where} is bidirectional: spiking LSTMs are unidirectional (they run forwards only); {keep}")
    if lstm.proj_size:
        raise NotConvertibleError(f"LSTM {where} has proj_size={lstm.proj_size}: spiking LSTMs have no output projection; {keep}")
    cls = type(lstm)
    if cls is not nn.LSTM and cls.forward is not nn.LSTM.forward:
        raise NotConvertibleError(
            f"LSTM {where} is a subclass of nn.LSTM that overrides forward(): the replacement would silently "
            f"drop its own computation; {keep}"
        )
    expected = set(lstm_weight_names(lstm.num_layers, lstm.bias))
    extra = sorted(set(n for n, _ in lstm.named_parameters(recurse=False)) ^ expected)
    extra += sorted(n for n, _ in lstm.named_buffers(recurse=False))
    extra += sorted(n for n, _ in lstm.named_children())
    if extra:
        raise NotConvertibleError(
            f"LSTM {where} has parameters, buffers or submodules nn.LSTM does not have, or lacks some of its own "
            f"(e.g. weight norm or parametrizations): {extra}; converting would drop them; {keep}"
        )


class LSTMCompat(nn.Module):
    """A :class:`~snnlstm.nn.lstm.SpikingLSTM` behind ``torch.nn.LSTM``'s interface (see the module docstring).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout: as ``torch.nn.LSTM`` (same
            defaults: ``batch_first=False``).
        bidirectional: must be False (spiking LSTMs run forwards only); accepted for signature parity.
        proj_size: must be 0; accepted for signature parity.
        device, dtype: where and in which dtype to create the parameters.
        **spiking_kwargs: further :class:`SpikingLSTM` arguments (``mode``, ``timesteps``, ``encoding``,
            ...); ``activation`` defaults to ``"standard"`` (sigmoid/tanh, what ``nn.LSTM`` computes).

    Attributes:
        spiking: the inner :class:`SpikingLSTM` (its ``configure``, ``set_thresholds``, ``neurons``, ...).

    Raises:
        NotConvertibleError: ``bidirectional`` or ``proj_size`` set.
    """

    #: the attribute holding the StatsSource, so statistics are named after this module
    stats_child: str = INNER

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **spiking_kwargs: Any,
    ) -> None:
        if bidirectional or proj_size:
            raise NotConvertibleError(
                f"LSTMCompat runs a unidirectional LSTM without projection; got bidirectional={bidirectional}, proj_size={proj_size}"
            )
        super().__init__()
        self._flat_weights_names = lstm_weight_names(num_layers, bias)
        spiking_kwargs.setdefault("activation", "standard")
        inner = SpikingLSTM(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=batch_first, dropout=dropout, **spiking_kwargs)
        if device is not None or dtype is not None:
            inner.to(device=device, dtype=dtype)
        self.spiking = inner
        for weight in self._flat_weights_names:
            self.register_parameter(weight, getattr(inner, weight))
        self.register_state_dict_post_hook(_drop_inner_weights)
        self.register_load_state_dict_pre_hook(_route_state_dict)
        self.register_load_state_dict_post_hook(_after_load)
        self._loading: tuple[str, bool] | None = None

    @classmethod
    def from_torch(cls, lstm: nn.LSTM, name: str = "", **spiking_kwargs: Any) -> "LSTMCompat":
        """Build the replacement of ``lstm``; it takes over ``lstm``'s Parameter objects.

        Args:
            lstm: a convertible ``nn.LSTM`` (see :func:`check_convertible`).
            name: its path in the model (for error messages).
            **spiking_kwargs: further :class:`SpikingLSTM` arguments (``activation`` defaults to
                ``"standard"``, so the result computes exactly what ``lstm`` did, in ANN mode).

        Raises:
            NotConvertibleError: see :func:`check_convertible`.
        """
        check_convertible(lstm, name)
        ref = lstm.weight_ih_l0
        new = cls(
            lstm.input_size,
            lstm.hidden_size,
            num_layers=lstm.num_layers,
            bias=lstm.bias,
            batch_first=lstm.batch_first,
            dropout=float(lstm.dropout),
            device=ref.device,
            dtype=ref.dtype,
            **spiking_kwargs,
        )
        for weight in new._flat_weights_names:
            setattr(new, weight, getattr(lstm, weight))
        new.train(lstm.training)
        return new

    # ------------------------------------------------------------------ nn.LSTM's attributes
    @property
    def input_size(self) -> int:
        return self.spiking.input_size

    @property
    def hidden_size(self) -> int:
        return self.spiking.hidden_size

    @property
    def num_layers(self) -> int:
        return self.spiking.num_layers

    @property
    def bias(self) -> bool:
        return self.spiking.bias

    @property
    def batch_first(self) -> bool:
        return self.spiking.batch_first

    @batch_first.setter
    def batch_first(self, value: bool) -> None:
        self.spiking.batch_first = bool(value)

    @property
    def dropout(self) -> float:
        return self.spiking.dropout

    @dropout.setter
    def dropout(self, value: float) -> None:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {value}")
        self.spiking.dropout = float(value)

    @property
    def bidirectional(self) -> bool:
        return False

    @property
    def proj_size(self) -> int:
        return 0

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Per layer, its parameters in ``nn.LSTM``'s order (as ``nn.LSTM.all_weights``)."""
        per_layer = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[k : k + per_layer]] for k in range(0, len(names), per_layer)]

    def flatten_parameters(self) -> None:
        """No-op (``nn.LSTM`` compacts its cuDNN weights here; a spiking LSTM has none)."""

    # ------------------------------------------------------------------ spiking side
    @property
    def mode(self) -> str:
        """The inner layer's mode: ``"ann"``, ``"snn"`` or ``"hybrid"`` (not ``nn.LSTM``'s ``"LSTM"``)."""
        return self.spiking.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.spiking.mode = mode

    @property
    def timesteps(self) -> int:
        """The inner layer's SNN time steps T per input element."""
        return self.spiking.timesteps

    @timesteps.setter
    def timesteps(self, timesteps: int) -> None:
        self.spiking.timesteps = timesteps

    def register_stats_hook(self, hook: Callable[[StatsSource, SpikeStats], None]) -> RemovableHandle:
        """Call ``hook(inner_layer, stats)`` after every forward (registered on the inner SpikingLSTM)."""
        return self.spiking.register_stats_hook(hook)

    # ------------------------------------------------------------------ forward
    def forward(
        self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """Run the sequence as ``nn.LSTM.forward`` does.

        Args:
            input: ``[N, B, F]`` (``[B, N, F]`` if ``batch_first``), unbatched ``[N, F]``, or a ``PackedSequence``.
            hx: optional ``(h_0, c_0)``, each ``[L, B, H]`` (``[L, H]`` for unbatched input).

        Returns:
            ``output, (h_n, c_n)`` with ``nn.LSTM``'s shapes (``output`` packed like ``input`` if it was packed).
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"LSTMCompat expects a tensor or a PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        _check_hx(hx, batched)
        batch_dim = 0 if self.batch_first else 1
        x = input if batched else input.unsqueeze(batch_dim)
        if hx is not None and not batched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        out = self.spiking(x, hx)
        output, h_n, c_n = out.output, out.state.h, out.state.c
        if not batched:
            output, h_n, c_n = output.squeeze(batch_dim), h_n.squeeze(1), c_n.squeeze(1)
        return output, (h_n, c_n)

    def _forward_packed(self, packed: PackedSequence, hx: tuple[Tensor, Tensor] | None) -> tuple[PackedSequence, tuple[Tensor, Tensor]]:
        """A PackedSequence: padded run with ``lengths``; the output reuses ``packed``'s layout (batch
        sizes and sort order), and ``h_n``/``c_n`` are in the caller's batch order, as ``nn.LSTM``'s."""
        _check_hx(hx, batched=True)
        padded, lengths = pad_packed_sequence(packed, batch_first=self.batch_first)  # the caller's order
        out = self.spiking(padded, hx, lengths=lengths)
        output = out.output
        if packed.sorted_indices is not None:
            output = output.index_select(0 if self.batch_first else 1, packed.sorted_indices)
            lengths = lengths[packed.sorted_indices.cpu()]
        data = pack_padded_sequence(output, lengths, batch_first=self.batch_first, enforce_sorted=True).data
        result = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return result, (out.state.h, out.state.c)

    # ------------------------------------------------------------------ keeping the shared weights shared
    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in self.__dict__.get("_flat_weights_names", ()) and INNER in self._modules:
            setattr(self._modules[INNER], name, value)

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> "LSTMCompat":
        result = super()._apply(fn, recurse)
        self._sync_weights()
        return result

    def _sync_weights(self) -> None:
        """Point the inner layer at this module's weight Parameters (after ``.to()`` made new ones, or ``assign`` loading)."""
        inner = self._modules[INNER]
        for weight in self._flat_weights_names:
            if inner._parameters.get(weight) is not self._parameters[weight]:
                inner._parameters[weight] = self._parameters[weight]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


def _check_hx(hx: tuple[Tensor, Tensor] | None, batched: bool) -> None:
    if hx is None:
        return
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError("LSTMCompat expects hx as a tuple (h_0, c_0), as nn.LSTM does")
    want = 3 if batched else 2
    if hx[0].dim() != want or hx[1].dim() != want:
        kind = "batched 3-D" if batched else "unbatched 2-D"
        raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")


def _drop_inner_weights(module: LSTMCompat, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any]) -> None:
    """state_dict post-hook: the weights appear once, under nn.LSTM's keys (not again under ``spiking.``)."""
    for weight in module._flat_weights_names:
        state_dict.pop(f"{prefix}{INNER}.{weight}", None)


def _route_state_dict(
    module: LSTMCompat,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: dict[str, Any],
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """load_state_dict pre-hook: the inner layer reads the weights from nn.LSTM's keys; the old
    LSTMCompat layout (SpikingLSTM state directly under ``prefix``) moves under ``spiking.``."""
    inner = f"{prefix}{INNER}."
    weights = module._flat_weights_names
    own = {key.split(".", 1)[0] for key in module._modules[INNER].state_dict(keep_vars=True)} - set(weights)
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        if key[len(prefix) :].split(".", 1)[0] in own:
            state_dict[inner + key[len(prefix) :]] = state_dict.pop(key)
    for weight in weights:
        if prefix + weight in state_dict:
            state_dict[inner + weight] = state_dict[prefix + weight]
    plain = not any(k.startswith(inner) and k[len(inner) :] not in weights for k in state_dict)
    module._loading = (prefix, plain)


def _after_load(module: LSTMCompat, incompatible_keys: Any) -> None:
    """load_state_dict post-hook: report a missing weight once (under nn.LSTM's key); a plain nn.LSTM's
    state dict (no spiking state at all) leaves thresholds and settings as they are."""
    prefix, plain = module._loading or ("", False)
    module._loading = None
    inner = f"{prefix}{INNER}."
    weights = set(module._flat_weights_names)
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys if not (k.startswith(inner) and (plain or k[len(inner) :] in weights))
    ]
    module._sync_weights()
