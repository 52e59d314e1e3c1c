"""The gate neuron populations of one spiking LSTM layer (Datta et al. 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ..functional.cells import SpikingCellParams
from .neurons import IFNeuron, TernaryNeuron


class GateNeurons(nn.Module):
    """The five neuron populations of one spiking LSTM layer (one threshold and leak each).

    Attributes:
        i, f, o: :class:`IFNeuron` (hard sigmoid, threshold ``V_sig``).
        g, tanh_c: :class:`TernaryNeuron` (hard tanh, thresholds ``V+``/``V-``).
    """

    def __init__(
        self,
        v_sig: float,
        v_tanh_pos: float,
        v_tanh_neg: float,
        leak: float,
        learn_threshold: bool,
        learn_leak: bool,
        surrogate: str,
        gamma: float,
    ) -> None:
        super().__init__()
        common = dict(leak=leak, learn_threshold=learn_threshold, learn_leak=learn_leak, surrogate=surrogate, gamma=gamma)
        self.i = IFNeuron(v_sig, **common)
        self.f = IFNeuron(v_sig, **common)
        self.o = IFNeuron(v_sig, **common)
        self.g = TernaryNeuron(v_tanh_pos, v_tanh_neg, **common)
        self.tanh_c = TernaryNeuron(v_tanh_pos, v_tanh_neg, **common)

    def cell_params(
        self,
        hidden: int,
        timesteps: int,
        bias_shift: bool,
        spiking: frozenset[str],
        activation: str,
        clamp_c: bool = False,
    ) -> SpikingCellParams:
        """Assemble the per-forward constants of :func:`spiking_cell_step` (differentiable)."""
        v3 = torch.stack([n.effective_threshold() for n in (self.i, self.f, self.o)])
        l3 = torch.stack([n.effective_leak() for n in (self.i, self.f, self.o)])
        shift = 0.5 / timesteps if bias_shift else 0.0
        v_sig = v3.repeat_interleave(hidden)
        return SpikingCellParams(
            v_sig=v_sig,
            leak_sig=l3.repeat_interleave(hidden),
            offset_sig=v_sig * (0.5 + shift),
            v_g=(self.g.effective_threshold(), self.g.effective_threshold_neg()),
            leak_g=self.g.effective_leak(),
            v_c=(self.tanh_c.effective_threshold(), self.tanh_c.effective_threshold_neg()),
            leak_c=self.tanh_c.effective_leak(),
            shift=shift,
            spike_i="i" in spiking,
            spike_g="g" in spiking,
            activation=activation,
            clamp_c=clamp_c,
        )

    def neurons(self) -> dict[str, IFNeuron]:
        """Gate name -> neuron module."""
        return {"i": self.i, "f": self.f, "g": self.g, "o": self.o, "tanh_c": self.tanh_c}

    def set_trainable(self, threshold: bool, leak: bool) -> None:
        """Let the optimiser train (or freeze) every threshold and leak that is a Parameter."""
        for neuron in self.neurons().values():
            for name, flag in (("threshold", threshold), ("threshold_neg", threshold), ("beta", leak)):
                param = getattr(neuron, name, None)
                if isinstance(param, nn.Parameter):
                    param.requires_grad_(flag)

    def set_thresholds(self, fitted: dict[str, float], v_sig: float, v_pos: float, v_neg: float) -> None:
        """Fill the thresholds: ``fitted`` values (keys ``i, f, o, g+, g-, tanh_c+, tanh_c-``) where
        given, else the hard-activation thresholds ``v_sig``, ``v_pos``, ``v_neg``."""
        with torch.no_grad():
            for gate in ("i", "f", "o"):
                getattr(self, gate).threshold.fill_(fitted.get(gate, v_sig))
            for gate in ("g", "tanh_c"):
                neuron = getattr(self, gate)
                neuron.threshold.fill_(fitted.get(gate + "+", v_pos))
                neuron.threshold_neg.fill_(fitted.get(gate + "-", v_neg))

    def leaks(self, gates: frozenset[str]) -> torch.Tensor:
        """The effective leaks of the named populations, ``[len(gates)]``."""
        return torch.stack([n.effective_leak() for g, n in self.neurons().items() if g in gates])
