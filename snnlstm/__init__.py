"""snnlstm: spiking LSTMs on PyTorch Lightning and snnTorch."""

__version__ = "0.1.0"
