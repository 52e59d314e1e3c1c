"""The ``snnlstm`` command: a LightningCLI over every snnlstm model and DataModule.

``snnlstm fit|validate|test|predict --config configs/<experiment>.yaml`` takes models and DataModules by
``class_path`` (ours or any importable LightningModule/LightningDataModule); the DataModule's
``input_size``, ``num_classes`` and ``seq_len`` are linked into the model's arguments of the same name.
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

#: data facts linked from the DataModule into the model when both have them
LINKED_FACTS: tuple[str, ...] = ("input_size", "num_classes", "seq_len")


class SNNLSTMCLI(LightningCLI):
    """LightningCLI with the DataModule -> model links of snnlstm."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        for fact in LINKED_FACTS:
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")


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
