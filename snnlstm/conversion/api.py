"""The conversion API: :func:`convert` (for good) and :func:`spiking` (for a ``with`` block).

Both work on any ``nn.Module`` and on every LSTM inside it: :class:`~snnlstm.nn.lstm.SpikingLSTM`
layers, and (for :func:`convert`) ``torch.nn.LSTM`` layers, which are first swapped for weight-sharing
:class:`~snnlstm.nn.compat.LSTMCompat` drop-ins. A sigmoid/tanh (``activation="standard"``) layer that
does not spike yet has no thresholds to convert with: they are calibrated on the batches given as
``calibrate_with``, and without them the switch stops with a :class:`CalibrationError` instead of
running an uncalibrated SNN.

::

    from snnlstm.conversion import DattaRecipe, convert, spiking

    report = convert(model, DattaRecipe(timesteps=4), calibrate_with=train_batches)  # permanent
    with spiking(model, timesteps=8, encoding="poisson", calibrate_with=train_batches):
        evaluate(model)                                                              # restored after
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from torch import nn

from ..nn.compat import LSTMCompat
from ..nn.lstm import MODES, SpikingLSTM
from .calibration import CalibrationError, CalibrationForward, calibrate
from .layers import named_spiking_layers, replace_torch_lstms, torch_lstm_names
from .recipes import ConversionRecipe, DattaRecipe, HybridRecipe
from .snapshot import LayerSnapshot, threshold_table

__all__ = ["SPIKING_MODES", "CalibrationData", "ConversionReport", "apply_recipe", "convert", "fit_if_needed", "spiking"]

#: ``calibrate_with``: batches, a callable returning batches (called only when a layer needs them), or None
CalibrationData = Iterable[Any] | Callable[[], Iterable[Any]] | None


@dataclass
class ConversionReport:
    """What :func:`convert` did.

    Attributes:
        module: the converted model (a new :class:`LSTMCompat` when ``module`` itself was an ``nn.LSTM``).
        converted: names of the layers converted now.
        skipped: names of the layers that already ran as spiking layers (left alone).
        replaced: paths of the ``nn.LSTM`` layers swapped for :class:`LSTMCompat`.
        thresholds: converted layer name -> per LSTM layer, its neuron thresholds and leaks (Datta recipe).
    """

    module: nn.Module
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    thresholds: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def _uncalibrated_error(names: Sequence[str]) -> CalibrationError:
    return CalibrationError(
        f"layers {sorted(names)} use sigmoid/tanh (activation='standard') and do not spike yet: their thresholds "
        "must be calibrated on data before they run as SNNs, and no calibration data was given. Pass "
        "calibrate_with=<a few training batches (or a callable returning them)>, or convert during training "
        "with the ANNToSNNConversion callback (it calibrates on the next training batches)"
    )


def fit_if_needed(
    module: nn.Module,
    recipe: ConversionRecipe,
    layers: Mapping[str, SpikingLSTM],
    calibrate_with: CalibrationData,
    forward: CalibrationForward | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Calibrated thresholds of the ``layers`` the recipe needs calibrated (``{}`` when none does).

    Raises:
        CalibrationError: some layer needs calibrating and ``calibrate_with`` is None or gives no batch.
    """
    needed = {name: layer for name, layer in layers.items() if recipe.needs_calibration(layer)}
    if not needed:
        return {}
    if calibrate_with is None:
        raise _uncalibrated_error(list(needed))
    batches = calibrate_with() if callable(calibrate_with) else calibrate_with
    if batches is None:
        raise _uncalibrated_error(list(needed))
    return calibrate(
        module,
        needed,
        batches,
        forward,
        max_batches=recipe.calibration_batches,
        bins=recipe.calibration_bins,
        value_range=recipe.calibration_range,
    )


def apply_recipe(
    recipe: ConversionRecipe, layers: Mapping[str, SpikingLSTM], fitted: Mapping[str, Sequence[dict[str, float]]]
) -> None:
    """Apply ``recipe`` to every layer, all or none: on an error every layer is put back, then it is raised."""
    snapshots = [LayerSnapshot(layer) for layer in layers.values()]
    try:
        for name, layer in layers.items():
            recipe.apply(layer, fitted.get(name))
    except BaseException:
        for snapshot in reversed(snapshots):
            snapshot.restore()
        raise


def convert(
    module: nn.Module,
    recipe: ConversionRecipe,
    calibrate_with: CalibrationData = None,
    forward: CalibrationForward | None = None,
    compile: str = "none",
) -> ConversionReport:
    """Convert every LSTM inside ``module`` per ``recipe``, for good.

    ``torch.nn.LSTM`` layers are swapped for :class:`LSTMCompat` (sharing their Parameters); then every
    layer still in ANN mode is converted (calibrated first where the recipe says so), and layers that
    already spike are left alone, so converting twice changes nothing.

    Args:
        module: the model (or one ``nn.LSTM``/``SpikingLSTM``).
        recipe: e.g. :class:`DattaRecipe` or :class:`HybridRecipe`.
        calibrate_with: calibration batches for sigmoid/tanh layers (or a callable returning them).
        forward: ``forward(module, batch)`` for the calibration batches (default: ``module(batch[0])``).
        compile: ``compile`` mode of the :class:`LSTMCompat` layers that replace ``nn.LSTM`` ones.

    Returns:
        A :class:`ConversionReport` (``report.module`` is the converted model).

    Raises:
        ValueError: no LSTM in ``module``; an ``nn.LSTM`` that cannot convert (named); a layer the recipe
            cannot convert (e.g. the hybrid cell on a non-``modified`` layer).
        CalibrationError: a sigmoid/tanh layer and no calibration data.
    """
    replaced: list[str] = []
    if isinstance(module, nn.LSTM):
        module, replaced = LSTMCompat.from_torch(module, compile=compile), [""]
    else:
        replaced = replace_torch_lstms(module, compile=compile)
    layers = named_spiking_layers(module)
    if not layers:
        raise ValueError(f"convert found no LSTM in {type(module).__name__}: it needs SpikingLSTM or torch.nn.LSTM layers")
    todo = {name: layer for name, layer in layers.items() if layer.mode == "ann"}
    report = ConversionReport(module, converted=list(todo), skipped=[n for n in layers if n not in todo], replaced=replaced)
    fitted = fit_if_needed(module, recipe, todo, calibrate_with, forward)
    apply_recipe(recipe, todo, fitted)
    if recipe.trains_spiking_parameters:
        report.thresholds = {name: threshold_table(layer) for name, layer in todo.items()}
    return report


#: modes :func:`spiking` switches to (None keeps each layer's mode)
SPIKING_MODES: tuple[str | None, ...] = (None, *MODES)


@contextlib.contextmanager
def spiking(
    module: nn.Module,
    timesteps: int | None = None,
    mode: str | None = "snn",
    spiking_gates: Sequence[str] | None = None,
    encoding: str | None = None,
    bias_shift: bool | None = None,
    calibrate_with: CalibrationData = None,
    calibration_batches: int = 8,
    forward: CalibrationForward | None = None,
) -> Iterator[dict[str, SpikingLSTM]]:
    """Run every spiking layer of ``module`` in ``mode`` inside a ``with`` block; restore all on exit.

    ``mode="snn"``: Datta et al.'s spiking LSTM. Layers in ANN (or hybrid) mode are converted, their
    thresholds from the hard activations or, for sigmoid/tanh layers, calibrated on ``calibrate_with``;
    layers already in SNN mode keep their (trained) thresholds. ``timesteps``, ``spiking_gates``,
    ``encoding`` and ``bias_shift`` apply to every layer (None: each layer's own).
    ``mode="hybrid"``: Ponghiran & Roy's hybrid cell with ``timesteps`` steps (layers trained with
    ``cell="modified"``). ``mode="ann"``: non-spiking. ``mode=None``: every layer keeps its mode and only
    takes the given settings (e.g. a different T for an already converted model).

    On exit (also on an error) every layer gets back its mode, T, spiking gates, encoding, bias shift,
    thresholds, leaks and their ``requires_grad``. Blocks nest.

    Args:
        module: the model.
        timesteps: SNN time steps T per input element.
        mode: ``"snn"``, ``"hybrid"``, ``"ann"`` or None.
        spiking_gates: gates that spike (``snn``).
        encoding: ``direct`` or ``poisson`` (``snn``).
        bias_shift: the optimal bias shift (``snn``).
        calibrate_with: calibration batches, or a callable returning them (called only when a layer needs
            calibrating), or None.
        calibration_batches: use at most this many calibration batches.
        forward: ``forward(module, batch)`` for the calibration batches (default: ``module(batch[0])``).

    Yields:
        name -> SpikingLSTM of every switched layer.

    Raises:
        ValueError: no spiking layer; an unknown mode; a plain ``nn.LSTM`` in the model (it would stay
            non-spiking: convert it first); settings the hybrid cell does not have.
        CalibrationError: a sigmoid/tanh layer to switch to SNN mode and no calibration data.
    """
    if mode not in SPIKING_MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: None, {', '.join(MODES)}")
    layers = named_spiking_layers(module)
    if not layers:
        raise ValueError(f"spiking() found no snnlstm LSTM layer in {type(module).__name__}; convert(module, recipe) it first")
    plain = torch_lstm_names(module)
    if mode in ("snn", "hybrid") and plain:
        raise ValueError(
            f"torch.nn.LSTM layers {plain} would stay non-spiking inside spiking(): swap them for LSTMCompat first "
            "(snnlstm.conversion.replace_torch_lstms(module), or convert(module, recipe))"
        )
    if mode == "hybrid":
        given = sorted(k for k, v in (("spiking_gates", spiking_gates), ("encoding", encoding), ("bias_shift", bias_shift)) if v is not None)
        if given:
            raise ValueError(f"the hybrid cell has its own input spike generator and no {', '.join(given)} setting; leave it unset")
    snapshots = [LayerSnapshot(layer) for layer in layers.values()]
    try:
        if mode == "snn":
            recipe: ConversionRecipe = DattaRecipe(timesteps, spiking_gates, encoding, bias_shift, calibration_batches)
            fitted = fit_if_needed(module, recipe, layers, calibrate_with, forward)
            for name, layer in layers.items():
                recipe.apply(layer, fitted.get(name))
        elif mode == "hybrid":
            recipe = HybridRecipe(timesteps)
            for layer in layers.values():
                recipe.apply(layer)
        else:
            for layer in layers.values():
                layer.configure(mode=mode, timesteps=timesteps, spiking_gates=spiking_gates, encoding=encoding, bias_shift=bias_shift)
        yield layers
    finally:
        for snapshot in reversed(snapshots):
            snapshot.restore()
