"""Lightning callbacks of snnlstm (installed as ``snnlstm.callbacks``)."""

from .conversion import ANNToSNNConversion, replace_torch_lstms
from .spike_monitor import SpikeMonitor

__all__ = ["ANNToSNNConversion", "SpikeMonitor", "replace_torch_lstms"]
