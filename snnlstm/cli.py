"""The ``snnlstm`` command: a LightningCLI over every snnlstm model and DataModule.

``snnlstm fit|validate|test|predict --config configs/<experiment>.yaml`` takes models and DataModules by
``class_path`` (ours or any importable LightningModule/LightningDataModule); the DataModule's
``input_size``, ``num_classes`` and ``seq_len`` (classification) or ``src_vocab_size`` and
``tgt_vocab_size`` (translation) are linked into the model's arguments of the same name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

#: data facts linked from the DataModule into the model when both have them
LINKED_FACTS: tuple[str, ...] = ("input_size", "num_classes", "seq_len", "src_vocab_size", "tgt_vocab_size")


class SNNLSTMCLI(LightningCLI):
    """LightningCLI with the DataModule -> model links of snnlstm.

    With ``--ckpt_path`` the model arguments saved in the checkpoint replace those of the config files
    (so a checkpoint is evaluated as the model it was trained as), and options given on the command
    line itself win over both: ``snnlstm test --config C --ckpt_path K --model.init_args.eval_mode
    hybrid`` runs the hybrid test. Lightning 2.6 alone lets the checkpoint win over the command line
    too and silently ignores such options (cf. Lightning PR #21455).
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        for fact in LINKED_FACTS:
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")

    def parse_arguments(self, parser: Any, args: Any) -> None:
        self._raw_args = args
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        raw = getattr(self, "_raw_args", None)
        raw = sys.argv[1:] if raw is None else raw
        if not subcommand or not isinstance(raw, (list, tuple)):
            return super()._parse_ckpt_path()
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():
            return None
        hparams = dict(torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {}))
        class_path = hparams.pop("_class_path", None)
        if class_path is None:
            return super()._parse_ckpt_path()
        init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINKED_FACTS}
        from_ckpt = self.parser.parse_object(
            {subcommand: {"model": {"class_path": class_path, "init_args": init_args}}}, self.config
        )
        # the command line's own options (not its config files) again, on top of the checkpoint's arguments
        self.config = self.parser.parse_args(_without_config_files(list(raw)), namespace=from_ckpt)
        data = self.config[subcommand].get("data")
        init_args = data.get("init_args") if data is not None else None
        if init_args is not None and "vocab_from" in init_args and init_args["vocab_from"] is None:
            init_args["vocab_from"] = str(ckpt_path)  # translation: the checkpoint's vocabulary, so its sizes link
        return None


def _without_config_files(args: list[str]) -> list[str]:
    """``args`` without ``--config FILE`` / ``--config=FILE`` / ``-c FILE`` (the options stay)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--config", "-c"):
            skip = True
        elif not arg.startswith("--config="):
            kept.append(arg)
    return kept


def cli_main(args: list[str] | None = None, run: bool = True) -> SNNLSTMCLI:
    """Build (and by default run) the CLI; ``args`` replaces ``sys.argv[1:]``."""
    os.environ.setdefault("WANDB_SILENT", "true")
    return SNNLSTMCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


def main() -> None:
    """Console-script entry point."""
    cli_main()


if __name__ == "__main__":
    main()
