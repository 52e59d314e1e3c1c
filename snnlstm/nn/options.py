"""Options of :class:`snnlstm.nn.lstm.SpikingLSTM` and their validation (errors list the allowed values)."""

from __future__ import annotations

import math
from typing import Literal, Sequence

from ..functional.activations import check_activation

Mode = Literal["ann", "snn", "hybrid"]
MODES: tuple[str, ...] = ("ann", "snn", "hybrid")
Cell = Literal["lstm", "modified", "baseline"]
#: cell types: ``lstm`` (activations from ``activation``/``v_*``; nn.LSTM init), and Ponghiran & Roy's
#: ``modified`` (clamp((z+2)/4), clamp(z/2): hard activations with V_sig=4, V_tanh=±2) and ``baseline``
#: (sigmoid/tanh), both with one shared bias and orthogonal init with forget bias 1
CELLS: tuple[str, ...] = ("lstm", "modified", "baseline")
#: (activation, v_sig, v_tanh_pos, v_tanh_neg) each cell type fixes
CELL_ACTIVATIONS: dict[str, tuple[str, float, float, float]] = {
    "modified": ("hard", 4.0, 2.0, -2.0),
    "baseline": ("standard", 4.0, 1.0, -1.0),
}
DEFAULT_ACTIVATION: tuple[str, float, float, float] = ("hard", 4.0, 1.0, -1.0)
Schedule = Literal["fused", "pipelined", "sequential"]
SCHEDULES: tuple[str, ...] = ("fused", "pipelined", "sequential")
COMPILE_MODES: tuple[str, ...] = ("none", "step", "full")
#: gate neuron populations that can spike; f, o and tanh_c always do (h must be a spike tensor)
SPIKING_GATES: tuple[str, ...] = ("i", "f", "g", "o", "tanh_c")
REQUIRED_SPIKING_GATES: frozenset[str] = frozenset({"f", "o", "tanh_c"})
DEFAULT_SPIKING_GATES: tuple[str, ...] = ("i", "f", "o", "tanh_c")


def check_spiking_gates(spiking_gates: Sequence[str]) -> frozenset[str]:
    """Validate a selective-conversion gate set and return it as a frozenset.

    Raises:
        ValueError: unknown gate names, or f / o / tanh_c missing.
    """
    gates = frozenset(spiking_gates)
    unknown = gates - set(SPIKING_GATES)
    if unknown:
        raise ValueError(f"unknown spiking gate(s) {sorted(unknown)}; allowed: {', '.join(SPIKING_GATES)}")
    missing = REQUIRED_SPIKING_GATES - gates
    if missing:
        raise ValueError(
            f"spiking_gates must include f, o and tanh_c (h = o * tanh_c(c) has to be a spike tensor and "
            f"c_prev cannot spike); missing: {sorted(missing)}"
        )
    return gates


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the allowed values when ``value`` is not one of them."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def check_timesteps(timesteps: int) -> None:
    """Raise ``ValueError`` unless ``timesteps`` is an integer >= 1."""
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps (SNN time steps per input element) must be an integer >= 1, got {timesteps!r}")


def check_cell_options(
    cell: str,
    activation: str,
    v_sig: float,
    v_tanh_pos: float,
    v_tanh_neg: float,
    forget_bias: float,
    input_bias: float,
) -> tuple[str, float, float, float]:
    """Validate the cell type against the activation settings and bias inits.

    Returns:
        ``(activation, v_sig, v_tanh_pos, v_tanh_neg)`` the cell runs: the given ones for ``"lstm"``,
        the ones ``"modified"`` / ``"baseline"`` fix otherwise.

    Raises:
        ValueError: an unknown cell, bias inits for ``"lstm"``, or activation settings a cell fixes.
    """
    check_choice("cell", cell, CELLS)
    for name, value, default in (("forget_bias", forget_bias, 1.0), ("input_bias", input_bias, 0.0)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if cell == "lstm" and value != default:
            raise ValueError(
                f"{name}={value} applies to the shared-bias cells ('modified', 'baseline'); "
                f"cell='lstm' keeps nn.LSTM's uniform init: leave {name} at {default} or choose another cell"
            )
    if cell != "lstm":
        given = (activation, float(v_sig), float(v_tanh_pos), float(v_tanh_neg))
        if given not in (DEFAULT_ACTIVATION, CELL_ACTIVATIONS[cell]):
            raise ValueError(
                f"cell={cell!r} fixes activation, v_sig, v_tanh_pos, v_tanh_neg to {CELL_ACTIVATIONS[cell]}; "
                f"got {given}: leave them at their defaults, or use cell='lstm' to set them yourself"
            )
        activation, v_sig, v_tanh_pos, v_tanh_neg = CELL_ACTIVATIONS[cell]
    check_activation(activation)
    if not v_sig > 0 or not v_tanh_pos > 0 or not v_tanh_neg < 0:
        raise ValueError(
            f"hard-activation thresholds need v_sig > 0, v_tanh_pos > 0, v_tanh_neg < 0; "
            f"got {v_sig}, {v_tanh_pos}, {v_tanh_neg}"
        )
    return activation, float(v_sig), float(v_tanh_pos), float(v_tanh_neg)


def check_sizes(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
    """Raise ``ValueError`` unless the sizes are integers >= 1 and ``0 <= dropout < 1``."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
