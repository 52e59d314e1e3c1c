"""Lightning callbacks of snnlstm (installed as ``snnlstm.callbacks``)."""

from .clamp import ParameterClamp
from .conversion import ANNToSNNConversion, replace_torch_lstms
from .spike_monitor import SpikeMonitor
from .sweep import SpikeRaster, TimestepSweep
from .translation import TranslationWriter

__all__ = [
    "ANNToSNNConversion",
    "ParameterClamp",
    "SpikeMonitor",
    "SpikeRaster",
    "TimestepSweep",
    "TranslationWriter",
    "replace_torch_lstms",
]
