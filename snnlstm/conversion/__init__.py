"""ANN-to-SNN conversion: recipes, :func:`convert`, the :func:`spiking` context manager, calibration.

See :mod:`snnlstm.conversion.api` for the two entry points, :mod:`snnlstm.conversion.recipes` for what
a conversion does, and :class:`snnlstm.callbacks.ANNToSNNConversion` for converting during training.
"""

from .api import CalibrationData, ConversionReport, convert, spiking
from .calibration import CalibrationError, Calibrator, PreactivationHistogram, calibrate, fit_thresholds
from .layers import named_spiking_layers, replace_torch_lstms, torch_lstm_names
from .recipes import METHODS, ConversionRecipe, DattaRecipe, HybridRecipe, make_recipe
from .snapshot import LayerSnapshot, threshold_table

__all__ = [
    "METHODS",
    "CalibrationData",
    "CalibrationError",
    "Calibrator",
    "ConversionRecipe",
    "ConversionReport",
    "DattaRecipe",
    "HybridRecipe",
    "LayerSnapshot",
    "PreactivationHistogram",
    "calibrate",
    "convert",
    "fit_thresholds",
    "make_recipe",
    "named_spiking_layers",
    "replace_torch_lstms",
    "spiking",
    "threshold_table",
    "torch_lstm_names",
]
