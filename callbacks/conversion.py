"""ANN-to-SNN conversion as a Lightning callback (Datta et al. 2022, or Ponghiran & Roy 2021's hybrid
cell), usable in any LightningModule."""

from __future__ import annotations

import os
from typing import Any, Literal, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from snnlstm.conversion.calibration import PreactivationHistogram, fit_thresholds
from snnlstm.functional.encoding import check_encoding
from snnlstm.nn.lstm import LSTMCompat, SpikingLSTM, check_spiking_gates, check_timesteps

#: ``datta``: spiking LSTM with trainable thresholds/leaks (fine-tuned after the conversion);
#: ``hybrid``: Ponghiran & Roy's hybrid analog-spiking cell (integer weights, evaluation only)
METHODS: tuple[str, ...] = ("datta", "hybrid")


def replace_torch_lstms(module: nn.Module, **kwargs: Any) -> list[str]:
    """Replace every plain ``torch.nn.LSTM`` inside ``module`` by an :class:`LSTMCompat` in ANN mode.

    The new layer takes over the ``nn.LSTM``'s Parameter objects and computes the same outputs, so
    this can happen before the optimizer is built or after (the optimizer keeps its parameters).

    Returns:
        Names of the replaced submodules.
    """
    replaced = []
    for name, child in list(module.named_modules()):
        if type(child) is not nn.LSTM:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        new = LSTMCompat.from_torch(child, mode="ann", **kwargs)
        if isinstance(parent, (nn.ModuleList, nn.Sequential)) and attr.isdigit():
            parent[int(attr)] = new
        else:
            setattr(parent, attr, new)
        replaced.append(name)
    return replaced


class ANNToSNNConversion(Callback):
    """Convert every LSTM layer of the LightningModule to a spiking LSTM at a chosen epoch or step.

    What happens at the conversion point:

    1. ``torch.nn.LSTM`` layers (already swapped for weight-sharing :class:`LSTMCompat` layers in
       ``setup``, so checkpoints and optimizers see one module tree) and :class:`SpikingLSTM` layers
       are collected by type.
    2. Thresholds are set from the source activations: a hard-activation layer uses its
       ``V_sig``/``V_tanh±`` directly; a standard sigmoid/tanh layer is calibrated on the next
       ``calibration_batches`` training batches (pre-activation histograms summed across processes,
       then :func:`snnlstm.conversion.calibration.fit_thresholds`), during which it keeps training as an ANN.
    3. Layers switch to SNN mode with the configured T, gates, encoding and bias shift; thresholds
       and leaks become trainable and are added to the running optimizer if it does not hold them.

    The conversion state is saved in checkpoints (the layers themselves save their mode and settings),
    so a resumed run stays converted and keeps its learned thresholds.

    With ``method="hybrid"`` the layers (trained as ``cell="modified"``) switch to Ponghiran & Roy's
    hybrid cell with ``timesteps`` SNN steps per element: nothing is calibrated or trained (the hybrid
    cell has no gradients; a head after it keeps training if the conversion happens mid-fit). With
    ``epoch`` and ``step`` both None it converts at the start of ``test`` and ``predict``, as the
    reference does.

    Args:
        epoch: convert at the start of this (0-based) training epoch.
        step: convert at this global step instead (``epoch`` must then be None).
        method: ``datta`` (default) or ``hybrid`` (see above).
        timesteps: SNN time steps T (None keeps each layer's setting).
        spiking_gates: gates that spike (None keeps each layer's setting).
        encoding: ``direct`` or ``poisson`` (None keeps each layer's setting).
        bias_shift: apply the optimal bias shift (None keeps each layer's setting).
        calibration_batches: training batches observed to fit thresholds of standard-activation layers.
        calibration_bins: histogram bins for the calibration.
        calibration_range: histogram half-range for the calibration.
        spiking_lr: learning rate of the thresholds/leaks if they have to be added to the optimizer
            (default: the learning rate of the optimizer's first parameter group).
        convert_torch_lstm: also convert plain ``torch.nn.LSTM`` layers (other people's models).
        compile: ``torch.compile`` mode of converted ``nn.LSTM`` layers (see :class:`SpikingLSTM`).
        lr_factor: multiply every optimizer learning rate by this at the conversion (SNN fine-tuning
            usually wants a smaller step than ANN training).
        save_ann_checkpoint: write ``ann-before-conversion.ckpt`` (next to the ModelCheckpoint's files,
            else in ``default_root_dir``) just before converting: the pre-trained non-spiking model.
    """

    def __init__(
        self,
        epoch: int | None = 1,
        step: int | None = None,
        timesteps: int | None = None,
        spiking_gates: Sequence[str] | None = None,
        encoding: str | None = None,
        bias_shift: bool | None = None,
        calibration_batches: int = 8,
        calibration_bins: int = 1024,
        calibration_range: float = 16.0,
        spiking_lr: float | None = None,
        convert_torch_lstm: bool = True,
        compile: Literal["none", "step", "full"] = "none",
        lr_factor: float = 1.0,
        save_ann_checkpoint: bool = False,
        method: Literal["datta", "hybrid"] = "datta",
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown conversion method {method!r}; allowed: {', '.join(METHODS)}")
        if method == "hybrid":
            ignored = {"spiking_gates": spiking_gates, "encoding": encoding, "bias_shift": bias_shift}
            given = sorted(k for k, v in ignored.items() if v is not None)
            if given:
                raise ValueError(f"method='hybrid' has no {', '.join(given)} setting (Datta et al.'s conversion only); remove it")
            if epoch is not None and step is not None:
                raise ValueError(f"set at most one of epoch / step for a hybrid conversion, got epoch={epoch}, step={step}")
        elif (epoch is None) == (step is None):
            raise ValueError(f"set exactly one of epoch / step for the conversion point, got epoch={epoch}, step={step}")
        for name, value in (("epoch", epoch), ("step", step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if timesteps is not None:
            check_timesteps(timesteps)
        if spiking_gates is not None:
            check_spiking_gates(spiking_gates)
        if encoding is not None:
            check_encoding(encoding)
        if calibration_batches < 1:
            raise ValueError(f"calibration_batches must be >= 1, got {calibration_batches}")
        self.epoch, self.step = epoch, step
        self.method = method
        self.settings = {
            "timesteps": timesteps,
            "spiking_gates": list(spiking_gates) if spiking_gates is not None else None,
            "encoding": encoding,
            "bias_shift": bias_shift,
        }
        self.calibration_batches = calibration_batches
        self.calibration_bins, self.calibration_range = calibration_bins, calibration_range
        self.spiking_lr = spiking_lr
        self.convert_torch_lstm = convert_torch_lstm
        self.compile_step = compile
        if not lr_factor > 0:
            raise ValueError(f"lr_factor must be > 0, got {lr_factor}")
        self.lr_factor = lr_factor
        self.save_ann_checkpoint = save_ann_checkpoint
        self.ann_checkpoint_path: str | None = None
        self.converted = False
        self.converted_at: dict[str, int] | None = None
        self.thresholds: dict[str, list[dict[str, float]]] = {}
        self._added_param_names: list[list[str]] = []
        self._observers: dict[str, PreactivationHistogram] = {}
        self._calibration_seen = 0
        self._restored_groups = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(epoch=self.epoch, step=self.step)

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.convert_torch_lstm:
            replaced = replace_torch_lstms(pl_module, compile=self.compile_step)
            if replaced:
                rank_zero_info(f"ANNToSNNConversion: nn.LSTM layers {replaced} now run through snnlstm (ANN mode until conversion)")
        if not self._layers(pl_module):
            raise ValueError(
                "ANNToSNNConversion found no convertible LSTM layer in the LightningModule: it needs "
                "snnlstm.nn.lstm.SpikingLSTM layers or unidirectional torch.nn.LSTM layers"
            )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run: the layers came back in SNN mode with their thresholds from the checkpoint;
        # param groups this callback added must exist again before the optimizer state is loaded.
        if self.converted and self._added_param_names and not self._restored_groups:
            params = dict(pl_module.named_parameters())
            for optimizer, names in zip(trainer.optimizers, self._added_param_names):
                if names:
                    # configure_optimizers may already have picked them up (they require grad again):
                    # move them to their own group so the saved optimizer state matches group by group
                    moved = {id(params[n]) for n in names}
                    for group in optimizer.param_groups:
                        group["params"] = [p for p in group["params"] if id(p) not in moved]
                    self._add_group(optimizer, [params[n] for n in names])
            self._restored_groups = True

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.method == "hybrid" and self.epoch is None and self.step is None:
            self._finish(trainer, pl_module)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_test_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.converted and not self._observers and self.epoch is not None and trainer.current_epoch >= self.epoch:
            self._begin(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if not self.converted and not self._observers and self.step is not None and trainer.global_step >= self.step:
            self._begin(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._observers:
            self._calibration_seen += 1
            if self._calibration_seen >= self.calibration_batches:
                self._finish(trainer, pl_module)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        # Thresholds/leaks only start to need gradients after the DDP wrapper was built, so DDP does not
        # average them: do it here, or every rank would learn different thresholds.
        if self.converted and trainer.world_size > 1:
            for layer in self._layers(pl_module).values():
                for p in layer.spiking_parameters():
                    if p.grad is not None:
                        p.grad = trainer.strategy.reduce(p.grad, reduce_op="mean")

    def state_dict(self) -> dict[str, Any]:
        return {
            "converted": self.converted,
            "converted_at": self.converted_at,
            "thresholds": self.thresholds,
            "added_param_names": self._added_param_names,
            "ann_checkpoint_path": self.ann_checkpoint_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.converted = state_dict["converted"]
        self.converted_at = state_dict.get("converted_at")
        self.thresholds = state_dict.get("thresholds", {})
        self._added_param_names = state_dict.get("added_param_names", [])
        self.ann_checkpoint_path = state_dict.get("ann_checkpoint_path")

    # ------------------------------------------------------------------ conversion
    @staticmethod
    def _layers(pl_module: nn.Module) -> dict[str, SpikingLSTM]:
        return {name: m for name, m in pl_module.named_modules() if isinstance(m, SpikingLSTM)}

    def _begin(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_ann_checkpoint:
            folder = getattr(trainer.checkpoint_callback, "dirpath", None) or trainer.default_root_dir
            self.ann_checkpoint_path = os.path.join(folder, "ann-before-conversion.ckpt")
            trainer.save_checkpoint(self.ann_checkpoint_path)
        layers = self._layers(pl_module)
        for name, layer in layers.items():
            if layer.mode != "ann" or self.method == "hybrid":
                continue
            if layer.activation == "standard":
                observer = PreactivationHistogram(layer.num_layers, self.calibration_bins, self.calibration_range)
                self._observers[name] = observer.to(pl_module.device)
                layer.calibration_observer = self._observers[name]
        if self._observers:
            rank_zero_info(
                f"ANNToSNNConversion: calibrating thresholds of {sorted(self._observers)} on {self.calibration_batches} training batches"
            )
        else:
            self._finish(trainer, pl_module)

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        layers = self._layers(pl_module)
        settings = {k: v for k, v in self.settings.items() if v is not None}
        if self.method == "hybrid":
            for layer in layers.values():
                if layer.mode == "ann":
                    layer.configure(mode="hybrid", **settings)
            self.converted = True
            self.converted_at = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
            rank_zero_info(f"ANNToSNNConversion: {sorted(layers)} now run Ponghiran & Roy's hybrid cell at {self.converted_at}")
            return
        for name, layer in layers.items():
            if layer.mode != "ann":
                continue
            observer = self._observers.pop(name, None)
            if observer is not None:
                hist = observer.compute()  # summed over processes: every rank fits the same values
                fitted = [fit_thresholds(hist[k], observer.centers()) for k in range(layer.num_layers)]
                layer.calibration_observer = None
                layer.set_thresholds(fitted)
            else:
                layer.set_thresholds()
            self.thresholds[name] = [
                {key: round(float(value), 6) for key, value in gate_neurons.state_dict().items()}
                for gate_neurons in layer.neurons
            ]
            layer.configure(mode="snn", **settings)
        self._observers.clear()
        self._calibration_seen = 0
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= self.lr_factor
        self._ensure_in_optimizers(trainer, pl_module, layers)
        self.converted = True
        self.converted_at = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
        rank_zero_info(f"ANNToSNNConversion: converted {sorted(layers)} to spiking LSTMs at {self.converted_at}")

    def _ensure_in_optimizers(self, trainer: pl.Trainer, pl_module: pl.LightningModule, layers: dict[str, SpikingLSTM]) -> None:
        names = {id(p): n for n, p in pl_module.named_parameters()}
        wanted = [p for layer in layers.values() for p in layer.spiking_parameters() if p.requires_grad]
        self._added_param_names = []
        for optimizer in trainer.optimizers:
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            missing = [p for p in wanted if id(p) not in held]
            if missing:
                self._add_group(optimizer, missing)
            self._added_param_names.append([names[id(p)] for p in missing])

    def _add_group(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        lr = self.spiking_lr if self.spiking_lr is not None else optimizer.param_groups[0]["lr"]
        optimizer.add_param_group({"params": params, "lr": lr, "weight_decay": 0.0})
