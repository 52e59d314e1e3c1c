"""Compatibility import path of :mod:`snnlstm.nn.lsnn` (``from snnlstm.lsnn import LSNN``)."""

from .nn.lsnn import *  # noqa: F401,F403
from .nn.lsnn import LSNN, LeakyReadout  # noqa: F401
