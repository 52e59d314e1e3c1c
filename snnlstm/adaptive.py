"""Compatibility import path of :mod:`snnlstm.nn.adaptive` (``from snnlstm.adaptive import AHPNeuron``)."""

from .nn.adaptive import *  # noqa: F401,F403
from .nn.adaptive import AHPNeuron, ALIFNeuron  # noqa: F401
