"""Compatibility import path of :mod:`snnlstm.measure.energy`."""

from .measure.energy import *  # noqa: F401,F403
from .measure.energy import E_AC_PJ, E_MAC_PJ, energy_report  # noqa: F401
