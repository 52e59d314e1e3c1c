"""``SequenceClassifier``: LSTM layers (spiking or not) + a non-spiking FC head, as a LightningModule."""

from __future__ import annotations

import contextlib
import os
from typing import Literal, Sequence

from torch import Tensor, nn

from ..checkpoint import load_checkpoint
from ..conversion.data import eval_mode_switch
from ..nn.lstm import DEFAULT_SPIKING_GATES, MODES, SpikingLSTM, spiking_layers
from .base import LR_SCHEDULES, OPTIMIZERS, ClassifierBase, check_training_args

EVAL_MODES: tuple[str, ...] = ("auto", "ann", "snn", "hybrid")
#: training batches a sigmoid/tanh model is calibrated on when ``eval_mode: snn`` converts it at test time

__all__ = ["EVAL_MODES", "LR_SCHEDULES", "OPTIMIZERS", "SequenceClassifier", "spiking_layers"]


class SequenceClassifier(ClassifierBase):
    """Classify a sequence from the last element's LSTM output.

    ``logits = head(h_N)`` where ``h_N`` is the last layer's output for the last input element (the
    spike rate over T steps in SNN mode) and ``head`` is ``[Linear -> ReLU]* -> Linear`` (never spiking).

    Args:
        input_size: features per step (linked from the DataModule by the CLI).
        num_classes: classes (linked from the DataModule).
        seq_len: sequence length N (linked from the DataModule; informational, used for latency reports).
        hidden_size: LSTM hidden units per layer.
        num_layers: stacked LSTM layers.
        head_sizes: hidden widths of the FC head (``[]`` = one Linear; ``[32]`` = GSC's FC(32)->FC(C)).
        dropout: dropout between LSTM layers and (unless ``head_dropout`` says otherwise) before the head.
        head_dropout: dropout on the last LSTM output before the head (None: ``dropout``). Ponghiran &
            Roy's reference drops out only the outputs fed to a next layer, so their configs set 0.
        activation, mode, timesteps, spiking_gates, encoding, bias_shift, leak, learn_threshold,
            learn_leak, surrogate, gamma, v_sig, v_tanh_pos, v_tanh_neg, schedule, compile, cell,
            clamp_c, forget_bias, input_bias: see :class:`snnlstm.nn.lstm.SpikingLSTM` (``cell: modified`` / ``baseline`` are
            Ponghiran & Roy's ModifiedLSTMCell and BaselineLSTMCell).
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
    """

    def __init__(
        self,
        input_size: int = 28,
        num_classes: int = 10,
        seq_len: int | None = None,
        hidden_size: int = 128,
        num_layers: int = 1,
        head_sizes: Sequence[int] = (),
        dropout: float = 0.0,
        head_dropout: float | None = None,
        activation: Literal["hard", "standard"] = "hard",
        mode: Literal["ann", "snn", "hybrid"] = "ann",
        timesteps: int = 2,
        spiking_gates: Sequence[str] = DEFAULT_SPIKING_GATES,
        encoding: Literal["direct", "poisson"] = "direct",
        bias_shift: bool = True,
        leak: float = 1.0,
        learn_threshold: bool = True,
        learn_leak: bool = True,
        surrogate: str = "triangular",
        gamma: float = 1.0,
        v_sig: float = 4.0,
        v_tanh_pos: float = 1.0,
        v_tanh_neg: float = -1.0,
        schedule: Literal["fused", "pipelined", "sequential"] = "fused",
        compile: Literal["none", "step", "full"] | bool = "none",  # bool: checkpoints from before the modes
        cell: Literal["lstm", "modified", "baseline"] = "lstm",
        clamp_c: bool = False,
        forget_bias: float = 1.0,
        input_bias: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam",
        lr: float = 1e-3,
        spiking_lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        eval_timesteps: int | None = None,
        eval_mode: Literal["auto", "ann", "snn", "hybrid"] = "auto",
        init_from: str | None = None,
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
        self.save_hyperparameters()
        self.lstm = SpikingLSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            activation=activation,
            mode=mode,
            timesteps=timesteps,
            spiking_gates=spiking_gates,
            encoding=encoding,
            bias_shift=bias_shift,
            leak=leak,
            learn_threshold=learn_threshold,
            learn_leak=learn_leak,
            surrogate=surrogate,
            gamma=gamma,
            v_sig=v_sig,
            v_tanh_pos=v_tanh_pos,
            v_tanh_neg=v_tanh_neg,
            schedule=schedule,
            compile=compile,
            cell=cell,
            clamp_c=clamp_c,
            forget_bias=forget_bias,
            input_bias=input_bias,
        )
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
        # shift (its constructor arguments) stay, so `--model.init_args.timesteps 8` means T=8
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
