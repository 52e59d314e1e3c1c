"""ANN-to-SNN conversion as a Lightning callback (Datta et al. 2022, or Ponghiran & Roy 2021's hybrid
cell), usable in any LightningModule.

The callback decides *when* (an epoch, a step, or test time) and looks after the optimizer; a
:class:`~snnlstm.conversion.recipes.ConversionRecipe` decides *what* each layer becomes (as Lightning's
``BaseFinetuning`` machinery runs a policy such as ``BackboneFinetuning``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from snnlstm.conversion.api import apply_recipe
from snnlstm.conversion.calibration import Calibrator
from snnlstm.conversion.layers import named_spiking_layers, replace_torch_lstms, torch_lstm_names
from snnlstm.conversion.optim import add_param_group, scale_learning_rates
from snnlstm.conversion.recipes import METHODS, ConversionRecipe, make_recipe
from snnlstm.conversion.snapshot import threshold_table
from snnlstm.nn.compat import INNER, LSTMCompat
from snnlstm.nn.lstm import COMPILE_MODES, SpikingLSTM

__all__ = ["ANNToSNNConversion", "ConversionNotReachedError", "METHODS", "replace_torch_lstms"]

_RECIPE_DEFAULTS: dict[str, Any] = {
    "timesteps": None,
    "spiking_gates": None,
    "encoding": None,
    "bias_shift": None,
    "calibration_batches": 8,
    "calibration_bins": 1024,
    "calibration_range": 16.0,
}


class ConversionNotReachedError(RuntimeError):
    """``fit`` ended before the conversion it was configured for."""


class ANNToSNNConversion(Callback):
    """Convert every LSTM layer of the LightningModule to a spiking LSTM at a chosen epoch or step.

    What happens at the conversion point:

    1. ``torch.nn.LSTM`` layers (already swapped for weight-sharing
       :class:`~snnlstm.nn.compat.LSTMCompat` layers in ``setup``, so checkpoints and optimizers see one
       module tree) and :class:`SpikingLSTM` layers still in ANN mode are collected; layers that already
       spike are left alone (and if none is left to convert, nothing else happens either: learning rates
       stay as they are).
    2. Thresholds are set from the source activations: a hard-activation layer uses its
       ``V_sig``/``V_tanh±`` directly; a standard sigmoid/tanh layer is calibrated on the next
       ``calibration_batches`` training batches (pre-activation histograms summed across processes,
       then :func:`snnlstm.conversion.calibration.fit_thresholds`), during which it keeps training as an ANN.
    3. The recipe switches the layers to SNN mode with its T, gates, encoding and bias shift; every
       learning rate is multiplied by ``lr_factor`` (in the optimizer's groups and in its schedulers'
       ``base_lrs``/``initial_lr``, so the schedule continues times ``lr_factor``); thresholds and leaks
       become trainable and are added to the running optimizer as a scheduled group if it does not hold them.

    Its state (converted or not, when, the thresholds, the added groups) is saved in checkpoints under a
    key that does not depend on ``epoch``/``step``, so a resumed run stays converted, even after those
    were edited, and is never converted (or its learning rates scaled) twice.

    Never silent: at the start of training it warns when the conversion point lies beyond
    ``max_epochs``/``max_steps`` or too few training batches remain to calibrate; at the end of ``fit``
    it raises :class:`ConversionNotReachedError` if the model was meant to convert and did not.

    With ``method="hybrid"`` the layers (trained as ``cell="modified"``) switch to Ponghiran & Roy's
    hybrid cell with ``timesteps`` SNN steps per element: nothing is calibrated or trained (the hybrid
    cell has no gradients; a head after it keeps training if the conversion happens mid-fit). With
    ``epoch`` and ``step`` both None it converts at the start of ``test`` and ``predict``, as the
    reference does.

    Args:
        epoch: convert at the start of this (0-based) training epoch.
        step: convert at this global step instead (``epoch`` must then be None).
        timesteps: SNN time steps T (None keeps each layer's setting).
        spiking_gates: gates that spike (None keeps each layer's setting).
        encoding: ``direct`` or ``poisson`` (None keeps each layer's setting).
        bias_shift: apply the optimal bias shift (None keeps each layer's setting).
        calibration_batches: training batches observed to fit thresholds of standard-activation layers.
        calibration_bins: histogram bins for the calibration.
        calibration_range: histogram half-range for the calibration.
        spiking_lr: learning rate of the thresholds/leaks if they have to be added to the optimizer
            (default: the learning rate of the optimizer's first parameter group after ``lr_factor``).
        convert_torch_lstm: also convert plain ``torch.nn.LSTM`` layers (other people's models); False
            leaves them non-spiking (with a warning).
        compile: ``torch.compile`` mode of converted ``nn.LSTM`` layers (see :class:`SpikingLSTM`).
        lr_factor: multiply every optimizer learning rate by this at the conversion (SNN fine-tuning
            usually wants a smaller step than ANN training; ``datta`` only).
        save_ann_checkpoint: write ``ann-before-conversion.ckpt`` (next to the ModelCheckpoint's files,
            else in ``default_root_dir``) just before converting: the pre-trained non-spiking model.
        method: ``datta`` (default) or ``hybrid`` (see above).
        recipe: a :class:`~snnlstm.conversion.recipes.ConversionRecipe` instead of ``method`` and the
            settings above (``timesteps`` ... ``calibration_range``), which must then stay unset.
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
        recipe: ConversionRecipe | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown conversion method {method!r}; allowed: {', '.join(METHODS)}")
        flat = {
            "timesteps": timesteps,
            "spiking_gates": spiking_gates,
            "encoding": encoding,
            "bias_shift": bias_shift,
            "calibration_batches": calibration_batches,
            "calibration_bins": calibration_bins,
            "calibration_range": calibration_range,
        }
        if recipe is not None:
            given = sorted(k for k, v in flat.items() if v != _RECIPE_DEFAULTS[k])
            if given or method not in ("datta", recipe.method):
                raise ValueError(
                    f"give either recipe= or method and the recipe settings, not both: got recipe={recipe!r} "
                    f"and {', '.join(given) or f'method={method!r}'}"
                )
            if not isinstance(recipe, ConversionRecipe):
                raise ValueError(f"recipe must be a snnlstm.conversion.ConversionRecipe, got {type(recipe).__name__}")
        else:
            if method == "hybrid":
                flat = {k: flat[k] for k in ("timesteps", "spiking_gates", "encoding", "bias_shift")}
            recipe = make_recipe(method, **flat)
        if recipe.method == "hybrid":
            if epoch is not None and step is not None:
                raise ValueError(f"set at most one of epoch / step for a hybrid conversion, got epoch={epoch}, step={step}")
        elif (epoch is None) == (step is None):
            raise ValueError(f"set exactly one of epoch / step for the conversion point, got epoch={epoch}, step={step}")
        for name, value in (("epoch", epoch), ("step", step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {compile!r}; allowed: {', '.join(COMPILE_MODES)}")
        if not lr_factor > 0:
            raise ValueError(f"lr_factor must be > 0, got {lr_factor}")
        if spiking_lr is not None and not spiking_lr > 0:
            raise ValueError(f"spiking_lr must be None or > 0, got {spiking_lr}")
        self.epoch, self.step = epoch, step
        self.recipe = recipe
        self.spiking_lr = spiking_lr
        self.convert_torch_lstm = convert_torch_lstm
        self.compile_step = compile
        self.lr_factor = float(lr_factor)
        self.save_ann_checkpoint = save_ann_checkpoint
        self.ann_checkpoint_path: str | None = None
        self.converted = False
        self.converted_at: dict[str, int] | None = None
        #: names of the layers this callback converted
        self.converted_layers: list[str] = []
        self.thresholds: dict[str, list[dict[str, float]]] = {}
        self._added_param_names: list[list[str]] = []
        self._pending: dict[str, SpikingLSTM] = {}
        self._calibrator: Calibrator | None = None
        self._restored_groups = False

    # ------------------------------------------------------------------ configuration views
    @property
    def method(self) -> str:
        """``datta`` or ``hybrid`` (the recipe's)."""
        return self.recipe.method

    @property
    def settings(self) -> dict[str, Any]:
        """The recipe's ``timesteps``, ``spiking_gates``, ``encoding``, ``bias_shift`` (None: each layer's own)."""
        return self.recipe.settings

    @property
    def calibration_batches(self) -> int:
        return self.recipe.calibration_batches

    @property
    def state_key(self) -> str:
        # not keyed by epoch/step: editing them between runs must not lose the conversion state
        return self._generate_state_key(method=self.method)

    @property
    def _scheduled(self) -> bool:
        """A conversion during training (not the test-time hybrid switch)."""
        return self.epoch is not None or self.step is not None

    def _point(self) -> str:
        return f"epoch {self.epoch}" if self.epoch is not None else f"global step {self.step}"

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.convert_torch_lstm:
            replaced = replace_torch_lstms(pl_module, compile=self.compile_step)
            if replaced:
                rank_zero_info(f"ANNToSNNConversion: nn.LSTM layers {replaced} now run through snnlstm (ANN mode until conversion)")
        else:
            plain = torch_lstm_names(pl_module)
            if plain:
                rank_zero_warn(f"ANNToSNNConversion(convert_torch_lstm=False): the nn.LSTM layers {plain} stay non-spiking")
        if not named_spiking_layers(pl_module):
            raise ValueError(
                "ANNToSNNConversion found no convertible LSTM layer in the LightningModule: it needs "
                "snnlstm.nn.lstm.SpikingLSTM layers or unidirectional torch.nn.LSTM layers"
            )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run: the layers came back in SNN mode with their thresholds from the checkpoint;
        # param groups this callback added must exist again before the optimizer state is loaded.
        if self.converted and self._added_param_names and not self._restored_groups:
            for optimizer, names in zip(trainer.optimizers, self._added_param_names):
                if names:
                    params = self._resolve(pl_module, names)
                    # configure_optimizers may already have picked them up (they require grad again):
                    # move them to their own group so the saved optimizer state matches group by group
                    moved = {id(p) for p in params}
                    for group in optimizer.param_groups:
                        group["params"] = [p for p in group["params"] if id(p) not in moved]
                    self._add_group(trainer, optimizer, params)
            self._restored_groups = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.converted:
            rank_zero_info(f"ANNToSNNConversion: already converted at {self.converted_at} (restored); nothing to do")
        elif self._scheduled:
            self._warn_if_unreachable(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._scheduled and not self.converted:
            self._begin(trainer, pl_module)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_test_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.converted and self._calibrator is None and self.epoch is not None and trainer.current_epoch >= self.epoch:
            self._begin(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if not self.converted and self._calibrator is None and self.step is not None and trainer.global_step >= self.step:
            self._begin(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._calibrator is not None:
            self._calibrator.count()
            if self._calibrator.batches >= self.calibration_batches:
                fitted = self._calibrator.fit()  # summed over processes: every rank fits the same values
                self._calibrator = None
                self._finish(trainer, pl_module, fitted)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        # Thresholds/leaks only start to need gradients after the DDP wrapper was built, so DDP does not
        # average them: do it here, or every rank would learn different thresholds.
        if self.converted and trainer.world_size > 1:
            for layer in named_spiking_layers(pl_module).values():
                for p in layer.spiking_parameters():
                    if p.grad is not None:
                        p.grad = trainer.strategy.reduce(p.grad, reduce_op="mean")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.converted or not self._scheduled:
            return
        seen = self._calibrator.batches if self._calibrator is not None else None
        self._abort_calibration()
        reason = f"training ended at epoch {trainer.current_epoch}, global step {trainer.global_step}"
        if seen is not None:
            reason += f", still calibrating ({seen} of calibration_batches={self.calibration_batches} batches seen)"
        message = (
            f"ANNToSNNConversion was set to convert at {self._point()}, but {reason}: the model is still a "
            "non-spiking LSTM. Convert earlier (lower epoch/step or calibration_batches), train longer "
            "(max_epochs/max_steps), or check whether EarlyStopping ended the run"
        )
        if trainer.fast_dev_run:
            rank_zero_warn(message)
            return
        raise ConversionNotReachedError(message)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._abort_calibration()

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "converted": self.converted,
            "converted_at": self.converted_at,
            "converted_layers": self.converted_layers,
            "thresholds": self.thresholds,
            "added_param_names": self._added_param_names,
            "ann_checkpoint_path": self.ann_checkpoint_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.converted = state_dict["converted"]
        self.converted_at = state_dict.get("converted_at")
        self.converted_layers = list(state_dict.get("converted_layers", []))
        self.thresholds = state_dict.get("thresholds", {})
        self._added_param_names = state_dict.get("added_param_names", [])
        self.ann_checkpoint_path = state_dict.get("ann_checkpoint_path")

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the state key stopped depending on epoch/step:
        # "ANNToSNNConversion{'epoch': 1, 'step': None}"
        states = checkpoint.get("callbacks")
        if not states or self.state_key in states:
            return
        legacy = [k for k in states if isinstance(k, str) and k.startswith(f"{type(self).__qualname__}{{'epoch'")]
        if len(legacy) == 1:
            states[self.state_key] = states[legacy[0]]

    # ------------------------------------------------------------------ conversion
    def _begin(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        layers = named_spiking_layers(pl_module)
        self._pending = {name: layer for name, layer in layers.items() if layer.mode == "ann"}
        if not self._pending:
            self.converted = True
            self.converted_at = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
            rank_zero_info(
                f"ANNToSNNConversion: {sorted(layers)} already spike; nothing converted, learning rates untouched"
            )
            return
        if self.save_ann_checkpoint and trainer.training:
            folder = getattr(trainer.checkpoint_callback, "dirpath", None) or trainer.default_root_dir
            self.ann_checkpoint_path = os.path.join(folder, "ann-before-conversion.ckpt")
            trainer.save_checkpoint(self.ann_checkpoint_path, weights_only=False)
        needed = {name: layer for name, layer in self._pending.items() if self.recipe.needs_calibration(layer)}
        if needed and trainer.training:
            self._calibrator = Calibrator(needed, self.recipe.calibration_bins, self.recipe.calibration_range)
            self._calibrator.attach()
            rank_zero_info(f"ANNToSNNConversion: calibrating thresholds of {sorted(needed)} on {self.calibration_batches} training batches")
            return
        if needed:  # a recipe that calibrates, outside training: no training batches to observe
            raise ValueError(
                f"ANNToSNNConversion converts at test/predict time only with method='hybrid'; the layers {sorted(needed)} "
                "need calibrating on training batches"
            )
        self._finish(trainer, pl_module, {})

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, fitted: dict[str, list[dict[str, float]]]) -> None:
        apply_recipe(self.recipe, self._pending, fitted)
        names = sorted(self._pending)
        if self.recipe.trains_spiking_parameters:
            self.thresholds = {name: threshold_table(layer) for name, layer in self._pending.items()}
            self._scale_lrs(trainer)
            self._ensure_in_optimizers(trainer, pl_module, list(self._pending.values()))
        self.converted, self.converted_layers = True, names
        self.converted_at = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
        self._pending = {}
        what = "Ponghiran & Roy's hybrid cells" if self.method == "hybrid" else "spiking LSTMs"
        rank_zero_info(f"ANNToSNNConversion: converted {names} to {what} ({self.recipe!r}) at {self.converted_at}")

    def _abort_calibration(self) -> None:
        if self._calibrator is not None:
            self._calibrator.detach()
            self._calibrator = None

    # ------------------------------------------------------------------ optimizers
    def _scale_lrs(self, trainer: pl.Trainer) -> None:
        if self.lr_factor == 1.0:
            return
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        for optimizer in trainer.optimizers:
            scale_learning_rates(optimizer, schedulers, self.lr_factor)

    def _ensure_in_optimizers(self, trainer: pl.Trainer, pl_module: pl.LightningModule, layers: list[SpikingLSTM]) -> None:
        names = {id(p): n for n, p in pl_module.named_parameters()}
        wanted = [p for layer in layers for p in layer.spiking_parameters() if p.requires_grad]
        self._added_param_names = []
        for optimizer in trainer.optimizers:
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            missing = [p for p in wanted if id(p) not in held]
            if missing:
                self._add_group(trainer, optimizer, missing)
            self._added_param_names.append([names[id(p)] for p in missing])

    def _add_group(self, trainer: pl.Trainer, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        lr = self.spiking_lr if self.spiking_lr is not None else float(optimizer.param_groups[0]["lr"])
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        add_param_group(optimizer, schedulers, params, lr, weight_decay=0.0)

    @staticmethod
    def _resolve(pl_module: nn.Module, names: list[str]) -> list[nn.Parameter]:
        """Parameters by name; names of checkpoints from before LSTMCompat held its SpikingLSTM as
        ``spiking`` (``encoder.neurons.0...``) resolve to ``encoder.spiking.neurons.0...``."""
        params = dict(pl_module.named_parameters())
        out = []
        for name in names:
            param = params.get(name)
            if param is None:
                owner, _, rest = name.partition(".neurons.")
                try:
                    if rest and isinstance(pl_module.get_submodule(owner), LSTMCompat):
                        param = params.get(f"{owner}.{INNER}.neurons.{rest}")
                except AttributeError:
                    param = None
            if param is None:
                raise ValueError(
                    f"the checkpoint's ANNToSNNConversion state names the parameter {name!r}, which this model does "
                    "not have: resume with the model the checkpoint was written with"
                )
            out.append(param)
        return out

    # ------------------------------------------------------------------ never silent
    def _warn_if_unreachable(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = float(trainer.num_training_batches)
        if not batches or math.isinf(batches):
            return
        accumulate = max(1, int(trainer.accumulate_grad_batches))
        epochs = math.inf if trainer.max_epochs in (None, -1) else float(trainer.max_epochs)
        steps = math.inf if trainer.max_steps in (None, -1) else float(trainer.max_steps)
        per_epoch = math.ceil(batches / accumulate)
        total_steps = min(steps, epochs * per_epoch)
        total_batches = min(epochs * batches, steps * accumulate if steps < math.inf else math.inf)
        limits = f"max_epochs={trainer.max_epochs}, max_steps={trainer.max_steps}, {int(batches)} training batches per epoch"
        if self.epoch is not None:
            reached = self.epoch < epochs and self.epoch * per_epoch < steps
            before = self.epoch * batches
        else:
            reached = self.step < total_steps
            before = self.step * accumulate
        if not reached:
            rank_zero_warn(
                f"ANNToSNNConversion will never convert: it is set to convert at {self._point()}, but training stops "
                f"before that ({limits}). Lower epoch/step or train longer; fit will end with an error otherwise"
            )
            return
        if self.method != "datta":
            return
        needed = sorted(n for n, layer in named_spiking_layers(pl_module).items() if layer.mode == "ann" and self.recipe.needs_calibration(layer))
        remaining = total_batches - before
        if needed and remaining < self.calibration_batches:
            rank_zero_warn(
                f"ANNToSNNConversion cannot finish: calibrating the sigmoid/tanh layers {needed} needs "
                f"calibration_batches={self.calibration_batches} training batches after {self._point()}, but only "
                f"{int(remaining)} remain ({limits}). Lower calibration_batches, convert earlier or train longer"
            )
