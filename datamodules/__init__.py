"""DataModules of ``snnlstm``: sequence-classification data as ``[batch, time, features]`` batches.

Every DataModule subclasses :class:`SequenceDataModule` and exposes ``input_size``,
``num_classes`` and ``seq_len`` right after construction.
"""

from .base import SequenceDataModule
from .digits import SequentialDigits
from .mnist import SequentialMNIST
from .speech_commands import SpeechCommands
from .uci_har import UCIHAR

__all__ = ["SequenceDataModule", "SequentialDigits", "SequentialMNIST", "SpeechCommands", "UCIHAR"]
