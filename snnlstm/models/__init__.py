"""LightningModules of snnlstm."""

from .classifier import SequenceClassifier, spiking_layers
from .lsnn_classifier import LSNNClassifier
from .translator import Translator

__all__ = ["LSNNClassifier", "SequenceClassifier", "Translator", "spiking_layers"]
