"""LightningModules of snnlstm."""

from ..nn.settings import LSTMSettings
from .classifier import SequenceClassifier, spiking_layers
from .lsnn_classifier import LSNNClassifier
from .translator import Translator

__all__ = ["LSNNClassifier", "LSTMSettings", "SequenceClassifier", "Translator", "spiking_layers"]
