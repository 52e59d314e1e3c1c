"""``SequenceClassifier``: LSTM layers (spiking or not) + a non-spiking FC head, as a LightningModule."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Literal, Sequence

from torch import Tensor, nn

from ..checkpoint import load_checkpoint
from ..conversion.data import eval_mode_switch
from ..nn.lstm import MODES, spiking_layers
from ..nn.settings import LSTMSettings
from .base import LR_SCHEDULES, OPTIMIZERS, ClassifierBase, check_training_args, store_layer_hparams

EVAL_MODES: tuple[str, ...] = ("auto", "ann", "snn", "hybrid")

__all__ = ["EVAL_MODES", "LR_SCHEDULES", "LSTMSettings", "OPTIMIZERS", "SequenceClassifier", "spiking_layers"]


class SequenceClassifier(ClassifierBase):
    """Classify a sequence from the last element's LSTM output.

    ``logits = head(h_N)`` where ``h_N`` is the last layer's output for the last input element (the
    spike rate over T steps in SNN mode) and ``head`` is ``[Linear -> ReLU]* -> Linear`` (never spiking).

    Args:
        input_size: features per step (linked from the DataModule by the CLI).
        num_classes: classes (linked from the DataModule).
        seq_len: sequence length N (linked from the DataModule; informational, used for latency reports).
        layer: the LSTM's settings (:class:`snnlstm.nn.settings.LSTMSettings`: ``hidden_size``,
            ``num_layers``, ``mode``, ``timesteps``, ``spiking_gates``, ``cell``, ...; see
            :class:`snnlstm.nn.lstm.SpikingLSTM`), in YAML the block ``layer:`` (``cell: modified`` /
            ``baseline`` are Ponghiran & Roy's ModifiedLSTMCell and BaselineLSTMCell). Its ``dropout``
            also drops out the last LSTM output before the head unless ``head_dropout`` says otherwise.
        head_sizes: hidden widths of the FC head (``[]`` = one Linear; ``[32]`` = GSC's FC(32)->FC(C)).
        head_dropout: dropout on the last LSTM output before the head (None: the layer's ``dropout``).
            Ponghiran & Roy's reference drops out only the outputs fed to a next layer, so their configs
            set 0.
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.
        lr: learning rate of the weights.
        spiking_lr: learning rate of thresholds and leaks (default: ``lr``).
        weight_decay: weight decay of the weights (never of thresholds/leaks).
        lr_schedule: ``constant`` or ``cosine`` (annealed to 0 over ``trainer.max_epochs``, per epoch).
        eval_timesteps: T used by ``test`` (None keeps the training T): sweeps one checkpoint over T.
        eval_mode: mode used by ``test``: ``auto`` (as trained/converted), ``ann``, ``snn`` (Datta et
            al.'s conversion of a non-spiking model, no fine-tuning; a sigmoid/tanh model is first
            calibrated on 8 training batches of the trainer's DataModule) or ``hybrid`` (Ponghiran & Roy's
            test-time conversion, their ``--n-timestep`` is ``eval_timesteps``). Switched with
            :func:`snnlstm.conversion.spiking` and put back after the test.
        init_from: a Lightning checkpoint of this model to start from (weights, thresholds and the
            layers' conversion state; not the optimizer or epoch): e.g. a pre-trained ANN to convert
            and fine-tune, the "P" protocol of Datta et al.
        **flat_layer_settings: layer settings given at the top level, the form of checkpoints written
            before the ``layer`` block (they load unchanged); merged into ``layer``, and stored in it.
    """

    def __init__(
        self,
        input_size: int = 28,
        num_classes: int = 10,
        seq_len: int | None = None,
        layer: LSTMSettings = LSTMSettings(),
        head_sizes: Sequence[int] = (),
        head_dropout: float | None = None,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam",
        lr: float = 1e-3,
        spiking_lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        eval_timesteps: int | None = None,
        eval_mode: Literal["auto", "ann", "snn", "hybrid"] = "auto",
        init_from: str | None = None,
        **flat_layer_settings: Any,
    ) -> None:
        super().__init__()
        check_training_args(num_classes, optimizer, lr_schedule, lr)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"unknown eval_mode {eval_mode!r}; allowed: {', '.join(EVAL_MODES)}")
        if eval_timesteps is not None and (isinstance(eval_timesteps, bool) or eval_timesteps < 1):
            raise ValueError(f"eval_timesteps must be None or an integer >= 1, got {eval_timesteps!r}")
        if head_dropout is not None and not 0.0 <= head_dropout < 1.0:
            raise ValueError(f"head_dropout must be None or in [0, 1), got {head_dropout}")
        if any(int(w) < 1 for w in head_sizes):
            raise ValueError(f"head_sizes must be positive integers, got {list(head_sizes)}")
        settings = LSTMSettings.merge(layer, flat_layer_settings, type(self).__name__)
        self.save_hyperparameters()
        store_layer_hparams(self, settings)
        self.lstm = settings.build(input_size)
        dropout, hidden_size = settings.dropout, settings.hidden_size
        # the Dropout module exists whenever dropout > 0 (even at p = 0) so the head's parameter names
        # do not depend on head_dropout (checkpoints load either way)
        layers: list[nn.Module] = [nn.Dropout(dropout if head_dropout is None else head_dropout)] if dropout > 0 else []
        width = hidden_size
        for size in head_sizes:
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            width = int(size)
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)
        self._init_metrics(num_classes)
        self._eval_switch: contextlib.ExitStack | None = None
        if init_from is not None:
            self.load_weights(init_from)

    @staticmethod
    def migrate_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint's hyper-parameters in this version's form (top-level layer settings of older
        checkpoints moved into ``layer``); the CLI applies it to ``--ckpt_path``'s hyper-parameters."""
        return LSTMSettings.migrate(hparams)

    def load_weights(self, path: str) -> None:
        """Load the ``state_dict`` of a Lightning checkpoint of this model (strict).

        A converted (SNN-mode) source keeps its conversion settings; from a non-spiking source only the
        weights are taken and this model's own T, spiking gates, encoding and bias shift stay.

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: the file is truncated, corrupt or holds pickled code (a ``ValueError``).
            ValueError: the checkpoint has no ``state_dict`` or does not match this architecture.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f"init_from checkpoint {path!r} does not exist; train the source model first")
        checkpoint = load_checkpoint(path, what="init_from checkpoint")
        if "state_dict" not in checkpoint:
            raise ValueError(f"{path!r} is not a Lightning checkpoint (no 'state_dict' entry)")
        own = [layer.get_extra_state() for layer in spiking_layers(self)]
        try:
            self.load_state_dict(checkpoint["state_dict"], strict=True)
        except RuntimeError as err:
            raise ValueError(f"checkpoint {path!r} does not match this model's architecture: {err}") from err
        # a non-spiking source carries no conversion to keep: this model's own T, gates, encoding and
        # shift (its constructor arguments) stay, so `--model.init_args.layer.timesteps 8` means T=8
        for layer, settings in zip(spiking_layers(self), own):
            if layer.mode == "ann":
                layer.configure(**{k: v for k, v in settings.items() if k != "mode"})

    # ------------------------------------------------------------------ model
    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, num_classes]`` for inputs ``[B, N, input_size]``."""
        out = self.lstm(x)
        return self.head(out.output[:, -1])

    def set_timesteps(self, timesteps: int) -> None:
        """Use ``timesteps`` SNN steps per element in every spiking layer."""
        for layer in spiking_layers(self):
            layer.timesteps = timesteps

    def neuron_parameters(self) -> list[nn.Parameter]:
        """Thresholds and leaks of every spiking LSTM layer (frozen until a layer is in SNN mode)."""
        return [p for layer in spiking_layers(self) for p in layer.spiking_parameters()]

    def set_mode(self, mode: str) -> None:
        """Run every LSTM layer as ``"ann"``, ``"snn"`` or ``"hybrid"``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        for layer in spiking_layers(self):
            layer.mode = mode

    def on_test_start(self) -> None:
        hp = self.hparams
        self._eval_switch = eval_mode_switch(self, hp.eval_mode, hp.eval_timesteps)

    def on_test_end(self) -> None:
        if self._eval_switch is not None:
            self._eval_switch.close()
            self._eval_switch = None
