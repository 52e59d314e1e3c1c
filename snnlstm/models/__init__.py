"""LightningModules of snnlstm."""

from .classifier import SequenceClassifier, spiking_layers

__all__ = ["SequenceClassifier", "spiking_layers"]
