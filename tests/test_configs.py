"""Every config in configs/ instantiates through the real LightningCLI."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from snnlstm.cli import cli_main

CONFIGS = sorted(str(p) for p in (Path(__file__).parents[1] / "configs").rglob("*.yaml") if "presets" not in p.parts)
PRESETS = sorted(str(p) for p in (Path(__file__).parents[1] / "configs" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[Path(c).stem for c in CONFIGS])
def test_config_instantiates(config: str, tmp_path) -> None:
    cli = cli_main(["--config", config, "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert isinstance(cli.model, LightningModule)
    assert isinstance(cli.datamodule, LightningDataModule)
    assert isinstance(cli.trainer, Trainer)
    # data facts linked into the model
    assert cli.model.hparams.input_size == cli.datamodule.input_size
    assert cli.model.hparams.num_classes == cli.datamodule.num_classes
    assert cli.model.hparams.seq_len == cli.datamodule.seq_len


#: preset -> (base config it composes with, T of its conversion, LSTM layers)
PRESET_BASES = {
    "t4": ("smnist_row.yaml", 4, 1),
    "t8": ("smnist_row.yaml", 8, 1),
    "finetune_t4": ("smnist_row_finetune.yaml", 4, 1),
    "finetune_t8": ("smnist_row_finetune.yaml", 8, 1),
    "two_layers": ("smnist_row.yaml", 2, 2),
}


def test_every_preset_is_covered() -> None:
    assert {Path(p).stem for p in PRESETS} == set(PRESET_BASES)


@pytest.mark.parametrize("preset", PRESETS, ids=[Path(p).stem for p in PRESETS])
def test_presets_compose_with_their_base(preset: str, tmp_path) -> None:
    base_name, timesteps, layers = PRESET_BASES[Path(preset).stem]
    base = str(Path(__file__).parents[1] / "configs" / base_name)
    cli = cli_main(["--config", base, "--config", preset, "--trainer.default_root_dir", str(tmp_path)], run=False)
    conversion = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ANNToSNNConversion")
    assert conversion.settings["timesteps"] == timesteps
    assert cli.model.hparams.timesteps == timesteps
    assert cli.model.lstm.num_layers == layers


def test_unknown_option_value_is_reported(tmp_path, capsys) -> None:
    config = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    with pytest.raises(SystemExit):
        cli_main(["--config", config, "--model.init_args.encoding", "latency"], run=False)
    assert "latency" in capsys.readouterr().err


@pytest.mark.parametrize("subcommand", ["validate", "predict"])
def test_cli_subcommands_run(subcommand: str, tmp_path) -> None:
    config = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    args = [subcommand, "--config", config, "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    args += [f"--trainer.limit_{'val' if subcommand == 'validate' else 'predict'}_batches", "2"]
    cli = cli_main(args)
    if subcommand == "predict":
        preds = cli.trainer.predict_loop.predictions
        assert len(preds) == 2 and preds[0].dtype == torch.long and preds[0].shape == (64,)
    else:
        assert "val/acc" in cli.trainer.callback_metrics
