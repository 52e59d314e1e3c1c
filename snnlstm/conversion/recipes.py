"""Conversion recipes: what an ANN-to-SNN conversion does to one :class:`~snnlstm.nn.lstm.SpikingLSTM`.

A recipe is a small, YAML-configurable object (``class_path: snnlstm.conversion.DattaRecipe``) that
:func:`snnlstm.conversion.convert`, :func:`snnlstm.conversion.spiking` and the
:class:`~snnlstm.callbacks.ANNToSNNConversion` callback apply layer by layer; the callback decides
*when* (an epoch or a step) and looks after the optimizer, the recipe decides *what*:

* :class:`DattaRecipe`: Datta et al. 2022. Thresholds from the source activations (hard activations
  directly, sigmoid/tanh layers calibrated on data first), then SNN mode with the given T, spiking
  gates, input encoding and bias shift; thresholds and leaks are trained afterwards.
* :class:`HybridRecipe`: Ponghiran & Roy 2021's hybrid analog-spiking cell with T SNN steps per
  element (a model trained with ``cell="modified"``); nothing is calibrated or trained.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Sequence

from ..functional.encoding import check_encoding
from ..nn.lstm import SpikingLSTM, check_spiking_gates, check_timesteps
from .calibration import CalibrationError

__all__ = ["METHODS", "ConversionRecipe", "DattaRecipe", "HybridRecipe", "make_recipe"]


class ConversionRecipe(abc.ABC):
    """Base of the recipes.

    Args:
        timesteps: SNN time steps T per input element (None keeps each layer's own).

    Attributes:
        method: the recipe's name (``ANNToSNNConversion(method=...)``).
        mode: the layer mode a converted layer runs in.
        trains_spiking_parameters: thresholds and leaks are fine-tuned after the conversion (the
            callback adds them to the optimizer and applies ``lr_factor``).
    """

    method: ClassVar[str]
    mode: ClassVar[str]
    trains_spiking_parameters: ClassVar[bool] = False
    #: training batches observed to calibrate a standard-activation layer (0: never calibrates)
    calibration_batches: int = 0
    calibration_bins: int = 1024
    calibration_range: float = 16.0

    def __init__(self, timesteps: int | None = None) -> None:
        if timesteps is not None:
            check_timesteps(timesteps)
        self.timesteps = timesteps

    @property
    def settings(self) -> dict[str, Any]:
        """``timesteps``, ``spiking_gates``, ``encoding``, ``bias_shift`` as given (None: the layer's own)."""
        return {"timesteps": self.timesteps, "spiking_gates": None, "encoding": None, "bias_shift": None}

    def needs_calibration(self, layer: SpikingLSTM) -> bool:
        """Whether converting ``layer`` needs thresholds fitted on data first."""
        return False

    @abc.abstractmethod
    def apply(self, layer: SpikingLSTM, fitted: Sequence[dict[str, float]] | None = None) -> None:
        """Convert ``layer`` in place (a layer already in :attr:`mode` only takes the given settings).

        Args:
            layer: the layer.
            fitted: calibrated thresholds per LSTM layer (:func:`snnlstm.conversion.calibration.fit_thresholds`),
                required when :meth:`needs_calibration` says so.
        """

    def __repr__(self) -> str:
        given = {k: v for k, v in self.settings.items() if v is not None}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in given.items())})"


class DattaRecipe(ConversionRecipe):
    """Datta et al. 2022: IF/LIF gate neurons with thresholds from the source activations.

    Args:
        timesteps: SNN time steps T (None keeps each layer's own).
        spiking_gates: gates that spike, a subset of ``i, f, g, o, tanh_c`` with ``f, o, tanh_c`` (None: keep).
        encoding: ``direct`` or ``poisson`` (None: keep).
        bias_shift: add the optimal bias shift ``V/(2T)`` (None: keep).
        calibration_batches: batches observed to calibrate a sigmoid/tanh (``activation="standard"``) layer.
        calibration_bins: histogram bins of the calibration.
        calibration_range: histogram half-range of the calibration.

    Raises:
        ValueError: a value out of range (the message lists the allowed ones).
    """

    method = "datta"
    mode = "snn"
    trains_spiking_parameters = True

    def __init__(
        self,
        timesteps: int | None = None,
        spiking_gates: Sequence[str] | None = None,
        encoding: str | None = None,
        bias_shift: bool | None = None,
        calibration_batches: int = 8,
        calibration_bins: int = 1024,
        calibration_range: float = 16.0,
    ) -> None:
        super().__init__(timesteps)
        if spiking_gates is not None:
            check_spiking_gates(spiking_gates)
        if encoding is not None:
            check_encoding(encoding)
        if isinstance(calibration_batches, bool) or not isinstance(calibration_batches, int) or calibration_batches < 1:
            raise ValueError(f"calibration_batches must be an integer >= 1, got {calibration_batches!r}")
        if isinstance(calibration_bins, bool) or not isinstance(calibration_bins, int) or calibration_bins < 8:
            raise ValueError(f"calibration_bins must be an integer >= 8, got {calibration_bins!r}")
        if not calibration_range > 0:
            raise ValueError(f"calibration_range must be > 0, got {calibration_range!r}")
        self.spiking_gates = sorted(spiking_gates) if spiking_gates is not None else None
        self.encoding = encoding
        self.bias_shift = None if bias_shift is None else bool(bias_shift)
        self.calibration_batches = calibration_batches
        self.calibration_bins = calibration_bins
        self.calibration_range = float(calibration_range)

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "timesteps": self.timesteps,
            "spiking_gates": self.spiking_gates,
            "encoding": self.encoding,
            "bias_shift": self.bias_shift,
        }

    def needs_calibration(self, layer: SpikingLSTM) -> bool:
        """A sigmoid/tanh layer that does not spike yet: its thresholds are fitted to its pre-activations."""
        return layer.mode != "snn" and layer.activation == "standard"

    def apply(self, layer: SpikingLSTM, fitted: Sequence[dict[str, float]] | None = None) -> None:
        if layer.mode != "snn":
            if fitted is None and self.needs_calibration(layer):
                raise CalibrationError(
                    "a sigmoid/tanh (activation='standard') layer needs calibrated thresholds to run as an SNN; "
                    "calibrate it first (snnlstm.conversion.calibrate, or pass calibrate_with= to convert/spiking)"
                )
            layer.set_thresholds(fitted)
        layer.configure(mode="snn", **{k: v for k, v in self.settings.items() if v is not None})


class HybridRecipe(ConversionRecipe):
    """Ponghiran & Roy 2021's hybrid analog-spiking cell (evaluation; the layer must use ``cell="modified"``).

    Args:
        timesteps: SNN time steps T per input element (their ``--n-timestep``; None keeps each layer's own).
    """

    method = "hybrid"
    mode = "hybrid"

    def apply(self, layer: SpikingLSTM, fitted: Sequence[dict[str, float]] | None = None) -> None:
        layer.mode = "hybrid"  # first: refuses a layer that is not a ModifiedLSTMCell before anything changes
        if self.timesteps is not None:
            layer.timesteps = self.timesteps


#: the recipes by ``method`` name
_RECIPES: dict[str, type[ConversionRecipe]] = {"datta": DattaRecipe, "hybrid": HybridRecipe}
#: names accepted by :func:`make_recipe` (and ``ANNToSNNConversion(method=...)``)
METHODS: tuple[str, ...] = tuple(_RECIPES)


def make_recipe(method: str, **kwargs: Any) -> ConversionRecipe:
    """The recipe of ``method`` built from keyword arguments (None values are left out).

    Raises:
        ValueError: unknown method, or an argument the method does not have.
    """
    if method not in _RECIPES:
        raise ValueError(f"unknown conversion method {method!r}; allowed: {', '.join(METHODS)}")
    given = {k: v for k, v in kwargs.items() if v is not None}
    if method == "hybrid":
        extra = sorted(k for k in given if k in ("spiking_gates", "encoding", "bias_shift"))
        if extra:
            raise ValueError(f"method='hybrid' has no {', '.join(extra)} setting (Datta et al.'s conversion only); remove it")
        given = {k: v for k, v in given.items() if k == "timesteps"}
    return _RECIPES[method](**given)
