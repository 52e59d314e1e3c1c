"""A layer's constructor arguments as one config block: ``LSTMSettings`` and ``LSNNSettings``.

A model takes its layer settings as one ``layer:`` argument instead of re-declaring them
(``SequenceClassifier(layer=LSTMSettings(hidden_size=128, mode="snn"))``; in YAML
``model.init_args.layer.timesteps: 4``, on the command line ``--model.init_args.layer.timesteps 4``).
The fields are the layer's constructor arguments (:class:`snnlstm.nn.lstm.SpikingLSTM`,
:class:`snnlstm.nn.lsnn.LSNN`) except those the model sets itself (the input size, linked from the data
by the CLI; the batch layout; the readout size), with the same defaults; a test keeps them in step.
Values are validated where the layer is built (``settings.build(input_size)``), with errors that list
the allowed values. Checkpoints written before the block (settings at the top level of the model's
hyper-parameters) load through :meth:`SettingsBlock.merge` and :meth:`SettingsBlock.migrate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .options import DEFAULT_SPIKING_GATES

if TYPE_CHECKING:
    from .lsnn import LSNN
    from .lstm import SpikingLSTM

S = TypeVar("S", bound="SettingsBlock")


@dataclass(frozen=True)
class SettingsBlock:
    """Shared behaviour of the frozen settings dataclasses (construction from mappings, plain dicts,
    the older top-level form). A dataclass itself (without fields), so jsonargparse reads its
    subclasses as plain nested options, not as ``class_path`` objects."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The settings' names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def coerce(cls: type[S], value: S | Mapping[str, Any] | None) -> S:
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
        raise TypeError(f"layer must be {cls.__name__} or a mapping of its fields, got {type(value).__name__}")

    @classmethod
    def merge(cls: type[S], layer: S | Mapping[str, Any] | None, flat: Mapping[str, Any], owner: str) -> S:
        """Settings from a ``layer`` block plus layer arguments given at the top level (the form models
        took before the block; older checkpoints store it). Top-level values win over the block's.

        Args:
            layer: the block (None: defaults).
            flat: keyword arguments the model did not recognise itself.
            owner: the model's name, for the error message.

        Raises:
            TypeError: a key of ``flat`` that is not a layer setting.
        """
        settings = cls.coerce(layer)
        if not flat:
            return settings
        unknown = sorted(set(flat) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{owner} got unexpected argument(s) {unknown}")
        return dataclasses.replace(settings, **flat)  # type: ignore[type-var]

    @classmethod
    def migrate(cls, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """Hyper-parameters with top-level layer settings moved into their ``layer`` block (the current
        form of an older checkpoint's); a key present in both is taken from the top level."""
        names = set(cls.field_names())
        flat = {k: v for k, v in hparams.items() if k in names}
        if not flat:
            return dict(hparams)
        out = {k: v for k, v in hparams.items() if k not in names}
        out["layer"] = cls.merge(out.get("layer"), flat, cls.__name__).as_dict()
        return out

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def as_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of the settings (what a checkpoint stores: no class, loads with ``weights_only``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class LSTMSettings(SettingsBlock):
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

    def build(self, input_size: int) -> SpikingLSTM:
        """A :class:`~snnlstm.nn.lstm.SpikingLSTM` with these settings (``batch_first=True``).

        Raises:
            ValueError: a setting the layer refuses (the message names it and the allowed values).
        """
        from .lstm import SpikingLSTM

        return SpikingLSTM(input_size, batch_first=True, **dataclasses.asdict(self))


@dataclass(frozen=True)
class LSNNSettings(SettingsBlock):
    """Settings of an :class:`~snnlstm.nn.lsnn.LSNN` (see its docstring for each field).

    Attributes:
        n_lif: LIF neurons.
        n_ahp: AHP neurons.
        n_inhibitory: how many of the LIF neurons are inhibitory (needs ``sign_constraints``).
        sign_constraints: keep each neuron's outgoing recurrent weights at its sign (Dale's law).
        threshold: firing threshold.
        tau_v: membrane time constant (steps).
        tau_a: AHP current time constant (steps).
        beta: AHP strength as the equivalent ALIF threshold jump ``beta / tau_a`` per spike (0: off).
        refractory: refractory steps after a spike.
        neuron_form: ``"ahp"`` or ``"alif"``.
        learn_tau: train the time constants.
        learn_ahp: train the AHP strength (ignored when ``beta`` is 0).
        learn_threshold: train the thresholds.
        surrogate: surrogate gradient name.
        gamma: height of the triangular surrogate.
        input_gain: scale of the input weights' init.
        recurrent_gain: scale of the recurrent weights' init.
        bias: a trainable bias current per neuron.
        schedule: ``"fused"`` or ``"eager"``.
        backend: ``"auto"``, ``"cpp"`` or ``"torch"``.
    """

    n_lif: int = 140
    n_ahp: int = 100
    n_inhibitory: int = 0
    sign_constraints: bool = False
    threshold: float = 1.0
    tau_v: float = 20.0
    tau_a: float = 700.0
    beta: float = 1.8
    refractory: int = 1
    neuron_form: Literal["ahp", "alif"] = "ahp"
    learn_tau: bool = True
    learn_ahp: bool = True
    learn_threshold: bool = False
    surrogate: str = "triangular"
    gamma: float = 0.3
    input_gain: float = 1.0
    recurrent_gain: float = 1.0
    bias: bool = False
    schedule: Literal["fused", "eager"] = "fused"
    backend: Literal["auto", "cpp", "torch"] = "auto"

    def build(self, input_size: int, readout_size: int = 0) -> LSNN:
        """An :class:`~snnlstm.nn.lsnn.LSNN` with these settings (the AHP strength is trained only when
        ``beta > 0``).

        Raises:
            ValueError: a setting the layer refuses (the message names it and the allowed values).
        """
        from .lsnn import LSNN

        args = dataclasses.asdict(self)
        args["learn_ahp"] = self.learn_ahp and self.beta > 0
        return LSNN(input_size, readout_size=readout_size, **args)
