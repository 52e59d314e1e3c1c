"""``LSTMSettings``: the arguments of :class:`snnlstm.nn.lstm.SpikingLSTM` as one config block.

A model that contains a spiking LSTM takes its layer settings as one ``layer:`` argument instead of
re-declaring them (``SequenceClassifier(layer=LSTMSettings(hidden_size=128, mode="snn"))``; in YAML
``model.init_args.layer.timesteps: 4``, on the command line ``--model.init_args.layer.timesteps 4``).
The fields are ``SpikingLSTM``'s constructor arguments except ``input_size`` (the data's, linked by the
CLI) and ``batch_first`` (models feed ``[batch, N, features]``), with the same defaults; a test keeps the
two in step. Values are validated where the layer is built (:meth:`LSTMSettings.build`), with errors
that list the allowed values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .options import DEFAULT_SPIKING_GATES

if TYPE_CHECKING:
    from .lstm import SpikingLSTM


@dataclass(frozen=True)
class LSTMSettings:
    """Settings of a :class:`~snnlstm.nn.lstm.SpikingLSTM` (see its docstring for each field).

    Attributes:
        hidden_size: hidden units H per layer.
        num_layers: stacked layers.
        bias: learn biases.
        dropout: dropout on the outputs of every layer but the last (training only).
        activation: ``"hard"`` (Datta's clipped sigmoid/tanh) or ``"standard"`` (sigmoid/tanh).
        mode: ``"ann"``, ``"snn"`` or ``"hybrid"``.
        timesteps: SNN time steps T per input element.
        spiking_gates: gates that spike in SNN mode (a subset of ``i, f, g, o, tanh_c`` with
            ``f, o, tanh_c``).
        encoding: first-layer input in SNN mode, ``"direct"`` or ``"poisson"``.
        bias_shift: add the optimal shift ``V/(2T)``.
        leak: initial leak of every neuron (1 = IF).
        learn_threshold: thresholds are trained in SNN mode.
        learn_leak: leaks are trained in SNN mode.
        surrogate: surrogate gradient name.
        gamma: height of the triangular surrogate.
        v_sig: hard-sigmoid threshold.
        v_tanh_pos: hard-tanh positive threshold.
        v_tanh_neg: hard-tanh negative threshold.
        schedule: ``"fused"``, ``"pipelined"`` or ``"sequential"``.
        compile: ``"none"``, ``"step"`` or ``"full"`` (a bool from older checkpoints is accepted).
        cell: ``"lstm"``, ``"modified"`` or ``"baseline"``.
        clamp_c: clamp the carried cell state to ``[-1, 1]``.
        forget_bias: initial forget-gate bias of the shared-bias cells.
        input_bias: initial input-gate bias of the shared-bias cells.
        backend: ``"auto"``, ``"cpp"`` or ``"torch"``.
    """

    hidden_size: int = 128
    num_layers: int = 1
    bias: bool = True
    dropout: float = 0.0
    activation: Literal["hard", "standard"] = "hard"
    mode: Literal["ann", "snn", "hybrid"] = "ann"
    timesteps: int = 2
    spiking_gates: tuple[str, ...] = DEFAULT_SPIKING_GATES
    encoding: Literal["direct", "poisson"] = "direct"
    bias_shift: bool = True
    leak: float = 1.0
    learn_threshold: bool = True
    learn_leak: bool = True
    surrogate: str = "triangular"
    gamma: float = 1.0
    v_sig: float = 4.0
    v_tanh_pos: float = 1.0
    v_tanh_neg: float = -1.0
    schedule: Literal["fused", "pipelined", "sequential"] = "fused"
    compile: Literal["none", "step", "full"] | bool = "none"
    cell: Literal["lstm", "modified", "baseline"] = "lstm"
    clamp_c: bool = False
    forget_bias: float = 1.0
    input_bias: float = 0.0
    backend: Literal["auto", "cpp", "torch"] = "auto"

    def __post_init__(self) -> None:
        # a YAML list or any sequence of gate names is stored as a tuple (hashable, frozen)
        object.__setattr__(self, "spiking_gates", tuple(self.spiking_gates))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The settings' names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def coerce(cls, value: LSTMSettings | Mapping[str, Any] | None) -> LSTMSettings:
        """``value`` as settings: a mapping (a checkpoint's hyper-parameters, a YAML block) or None
        (all defaults).

        Raises:
            TypeError: a mapping with keys that are not settings (they are named) or another type.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(cls.field_names()))
            if unknown:
                raise TypeError(f"unknown layer setting(s) {unknown}; allowed: {', '.join(cls.field_names())}")
            return cls(**value)
        raise TypeError(f"layer must be LSTMSettings or a mapping of its fields, got {type(value).__name__}")

    def replace(self, **changes: Any) -> LSTMSettings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of the settings (what a checkpoint stores: no class, loads with ``weights_only``)."""
        out = dataclasses.asdict(self)
        out["spiking_gates"] = list(self.spiking_gates)
        return out

    def build(self, input_size: int) -> SpikingLSTM:
        """A :class:`~snnlstm.nn.lstm.SpikingLSTM` with these settings (``batch_first=True``).

        Raises:
            ValueError: a setting the layer refuses (the message names it and the allowed values).
        """
        from .lstm import SpikingLSTM

        return SpikingLSTM(input_size, batch_first=True, **dataclasses.asdict(self))


def merge_flat_settings(
    layer: LSTMSettings | Mapping[str, Any] | None, flat: Mapping[str, Any], owner: str
) -> LSTMSettings:
    """Settings from a ``layer`` block plus layer arguments given at the top level (the form models
    took before the block; old checkpoints store it). Top-level values win over the block's.

    Args:
        layer: the block (None: defaults).
        flat: keyword arguments the model did not recognise itself.
        owner: the model's name, for the error message.

    Raises:
        TypeError: a key of ``flat`` that is not a layer setting.
    """
    settings = LSTMSettings.coerce(layer)
    if not flat:
        return settings
    unknown = sorted(set(flat) - set(LSTMSettings.field_names()))
    if unknown:
        raise TypeError(f"{owner} got unexpected argument(s) {unknown}")
    return settings.replace(**flat)


def split_flat_settings(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters with top-level layer settings moved into their ``layer`` block.

    Checkpoints written before models took a ``layer`` block store ``hidden_size``, ``timesteps``, ...
    next to ``lr``; this gives the current form. A key present in both is taken from the top level, as
    :func:`merge_flat_settings` does.
    """
    names = set(LSTMSettings.field_names())
    flat = {k: v for k, v in hparams.items() if k in names}
    if not flat:
        return dict(hparams)
    out = {k: v for k, v in hparams.items() if k not in names}
    block = dict(LSTMSettings.coerce(out.get("layer")).as_dict())
    block.update(flat)
    block["spiking_gates"] = list(block["spiking_gates"])
    out["layer"] = block
    return out

