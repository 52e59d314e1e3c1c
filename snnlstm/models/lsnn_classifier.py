"""``LSNNClassifier``: Rao, Plank, Wild & Maass's spiking network with AHP neurons as a LightningModule.

``x -> [threshold-crossing encoder] -> LSNN (LIF + AHP neurons) -> leaky readout -> logits``: the
class is the argmax of the non-spiking readout neurons' membrane at the last step (after the cue
steps, when the encoder adds them). Trained with BPTT and surrogate gradients; the same DataModules,
CLI, wandb logger and :class:`snnlstm.callbacks.SpikeMonitor` (per-population firing rates, SynOps,
energy) apply as for :class:`snnlstm.models.SequenceClassifier`.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from ..nn.crossing import ThresholdCrossingEncoder
from ..nn.lsnn import LeakyReadout
from ..nn.settings import LSNNSettings
from .base import ClassifierBase, check_training_args, store_layer_hparams

ENCODERS: tuple[str, ...] = ("none", "threshold_crossing")


class LSNNClassifier(ClassifierBase):
    """Classify a sequence with a recurrent LIF/AHP population and a leaky readout.

    Args:
        input_size: features per step (linked from the DataModule by the CLI).
        num_classes: classes (linked from the DataModule).
        seq_len: sequence length N (linked; informational).
        encoder: ``none`` (the input is the synaptic current, e.g. MNIST rows or MFCCs) or
            ``threshold_crossing`` (:class:`snnlstm.nn.crossing.ThresholdCrossingEncoder`, the
            reference's input neurons for pixel-wise MNIST).
        levels, encoder_low, encoder_high, cue_steps, cue_neurons: the encoder's settings (the
            reference: 40 levels for pixels in [0, 1], 56 cue steps).
        layer: the LSNN's settings (:class:`snnlstm.nn.settings.LSNNSettings`: ``n_lif``, ``n_ahp``,
            ``tau_v``, ``tau_a``, ``beta``, ``backend``, ...; see :class:`snnlstm.nn.lsnn.LSNN`), in YAML
            the block ``layer:``. ``beta: 0`` switches the AHP off (a plain LIF population of the same
            size, AHP strength frozen). The resolved backend is ``model.lsnn.backend`` /
            ``model.lsnn.kernel``.
        tau_out: readout time constant in steps.
        rate_target: target firing rate per step of the firing-rate regulariser (Bellec et al.: 10 Hz
            at 1 ms steps, 0.01).
        rate_reg: weight of ``sum_k (mean rate_k - rate_target)^2`` added to the training loss (0: off).
        optimizer, lr, spiking_lr, weight_decay, lr_schedule: as :class:`SequenceClassifier`
            (``spiking_lr`` is the rate of the time constants, AHP strengths and thresholds).
        **flat_layer_settings: layer settings given at the top level, the form of checkpoints written
            before the ``layer`` block (they load unchanged); merged into ``layer``, and stored in it.
    """

    def __init__(
        self,
        input_size: int = 1,
        num_classes: int = 10,
        seq_len: int | None = None,
        encoder: Literal["none", "threshold_crossing"] = "none",
        levels: int = 40,
        encoder_low: float = 0.0,
        encoder_high: float = 1.0,
        cue_steps: int = 0,
        cue_neurons: int = 0,
        layer: LSNNSettings = LSNNSettings(),
        tau_out: float = 20.0,
        rate_target: float = 0.01,
        rate_reg: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam",
        lr: float = 1e-3,
        spiking_lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        **flat_layer_settings: Any,
    ) -> None:
        super().__init__()
        check_training_args(num_classes, optimizer, lr_schedule, lr)
        settings = LSNNSettings.merge(layer, flat_layer_settings, type(self).__name__)
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; allowed: {', '.join(ENCODERS)}")
        if not 0.0 <= rate_target <= 1.0:
            raise ValueError(f"rate_target must be a firing probability per step in [0, 1], got {rate_target!r}")
        if not rate_reg >= 0:
            raise ValueError(f"rate_reg must be >= 0, got {rate_reg!r}")
        self.save_hyperparameters()
        store_layer_hparams(self, settings)
        self.encoder: ThresholdCrossingEncoder | None = None
        features = input_size
        if encoder == "threshold_crossing":
            self.encoder = ThresholdCrossingEncoder(levels, encoder_low, encoder_high, cue_steps, cue_neurons)
            features = self.encoder.output_size(input_size)
        elif cue_steps or cue_neurons:
            raise ValueError("cue_steps / cue_neurons need encoder='threshold_crossing'")
        self.lsnn = settings.build(features, readout_size=num_classes)  # the readout's operations count in the SynOps
        self.readout = LeakyReadout(self.lsnn.hidden_size, num_classes, tau_out)
        self._init_metrics(num_classes)
        self._rates: Tensor | None = None

    @staticmethod
    def migrate_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint's hyper-parameters in this version's form (top-level LSNN settings of older
        checkpoints moved into ``layer``); the CLI applies it to ``--ckpt_path``'s hyper-parameters."""
        return LSNNSettings.migrate(hparams)

    def neuron_parameters(self) -> list[nn.Parameter]:
        """Trainable time constants, AHP strength and thresholds of the LSNN."""
        return self.lsnn.spiking_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, num_classes]`` (readout membranes at the last step) for inputs ``[B, N, input_size]``."""
        if self.encoder is not None:
            x = self.encoder(x)
        spikes = self.lsnn(x).output
        if self.training and self.hparams.rate_reg:
            self._rates = spikes.mean(dim=(0, 1))  # [K] firing rate per neuron, for the regulariser
        return self.readout(spikes)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Keep the trained time constants, AHP strengths and thresholds in their valid ranges."""
        self.lsnn.project_parameters()

    def extra_loss(self) -> Tensor | None:
        """Firing-rate regulariser ``rate_reg * sum_k (rate_k - rate_target)^2`` of the last forward."""
        if self._rates is None:
            return None
        rates, self._rates = self._rates, None
        return self.hparams.rate_reg * ((rates - self.hparams.rate_target) ** 2).sum()
