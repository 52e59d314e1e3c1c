"""DataModules of ``snnlstm``: sequence-classification data as ``[batch, time, features]`` batches.

Every DataModule subclasses :class:`SequenceDataModule` and exposes ``input_size``,
``num_classes`` and ``seq_len`` right after construction.
"""

from .base import SequenceDataModule
from .digits import SequentialDigits
from .mnist import SequentialMNIST

__all__ = ["SequenceDataModule", "SequentialDigits", "SequentialMNIST"]
