"""Compatibility import path of :mod:`snnlstm.nn.lstm` (``from snnlstm.layers import SpikingLSTM``)."""

from .nn.lstm import *  # noqa: F401,F403
from .nn.compat import LSTMCompat  # noqa: F401
from .nn.lstm import LSTMOutput, LSTMState, SpikingLSTM, spiking_layers  # noqa: F401
