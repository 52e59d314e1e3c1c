"""DataModules of ``snnlstm``.

Sequence classification (``[batch, time, features]`` batches): every such DataModule subclasses
:class:`SequenceDataModule` and exposes ``input_size``, ``num_classes`` and ``seq_len`` right after
construction. Translation: :class:`ParallelText` (and its IWSLT14 / Multi30k presets) yields padded
token-id batches (:class:`~snnlstm.datamodules.translation.TranslationBatch`).
"""

from .base import SequenceDataModule
from .digits import SequentialDigits
from .mnist import SequentialMNIST
from .speech_commands import SpeechCommands
from .translation import IWSLT14, Multi30k, ParallelText
from .uci_har import UCIHAR

__all__ = ["IWSLT14", "Multi30k", "ParallelText", "SequenceDataModule", "SequentialDigits", "SequentialMNIST", "SpeechCommands", "UCIHAR"]
