"""LightningModules of snnlstm."""

from .classifier import SequenceClassifier, spiking_layers
from .translator import Translator

__all__ = ["SequenceClassifier", "Translator", "spiking_layers"]
