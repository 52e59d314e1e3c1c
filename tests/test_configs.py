"""Every config in configs/ instantiates through the real LightningCLI."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from snnlstm.cli import cli_main

ROOT = Path(__file__).parents[1] / "configs"
#: folders of presets (partial configs used after a base config), not runnable alone
PRESET_DIRS = ("presets", "ablation")
CONFIGS = sorted(str(p) for p in ROOT.rglob("*.yaml") if not set(PRESET_DIRS) & set(p.parts))
PRESETS = sorted(str(p) for p in (ROOT / "presets").glob("*.yaml"))
ABLATION_ROWS = sorted(str(p) for p in (ROOT / "ablation").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[Path(c).stem for c in CONFIGS])
def test_config_instantiates(config: str, tmp_path) -> None:
    args = ["--config", config, "--trainer.default_root_dir", str(tmp_path)]
    translation = "translation" in Path(config).stem
    if translation:  # the vocabulary sizes link from the data: a tiny corpus in the config's raw layout
        for split in ("train", "val", "test_2016_flickr"):
            for lang, text in (("de", "ein kleiner hund ."), ("en", "a small dog .")):
                (tmp_path / f"{split}.{lang}").write_text(text + "\n", encoding="utf-8")
        args += ["--data.init_args.data_dir", str(tmp_path), "--data.init_args.cache_dir", str(tmp_path / "cache"),
                 "--data.init_args.vocab_size", "40"]  # fmt: skip
    cli = cli_main(args, run=False)
    assert isinstance(cli.model, LightningModule)
    assert isinstance(cli.datamodule, LightningDataModule)
    assert isinstance(cli.trainer, Trainer)
    # data facts linked into the model
    facts = ("src_vocab_size", "tgt_vocab_size") if translation else ("input_size", "num_classes", "seq_len")
    for fact in facts:
        assert cli.model.hparams[fact] == getattr(cli.datamodule, fact)


#: preset -> (base config it composes with, T, LSTM layers, encoding)
PRESET_BASES = {
    "t4": ("smnist_row.yaml", 4, 1, "direct"),
    "t8": ("smnist_row.yaml", 8, 1, "direct"),
    "finetune_t4": ("smnist_row_finetune.yaml", 4, 1, "direct"),
    "finetune_t8": ("smnist_row_finetune.yaml", 8, 1, "direct"),
    "two_layers": ("smnist_row.yaml", 2, 2, "direct"),
    "poisson": ("smnist_row_finetune.yaml", 2, 1, "poisson"),
    "finetune_from_ann": ("gsc.yaml", 2, 1, "direct"),
    "ann_only": ("uci_har.yaml", None, 1, None),  # no conversion at all
    "baseline_cell": ("ponghiran_row.yaml", None, 1, None),  # trained non-spiking, hybrid at test time
    "no_ahp": ("lsnn_smnist.yaml", None, None, None),  # an LSNN: no LSTM, no conversion
}


def _conversion(cli):
    return next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ANNToSNNConversion")


def _converted_setting(cli, key: str):
    """What the conversion will set: the callback's own value, else the model's (the layers keep theirs)."""
    value = _conversion(cli).settings[key]
    return cli.model.hparams.layer[key] if value is None else value


def test_every_preset_is_covered() -> None:
    assert {Path(p).stem for p in PRESETS} == set(PRESET_BASES)


@pytest.mark.parametrize("preset", PRESETS, ids=[Path(p).stem for p in PRESETS])
def test_presets_compose_with_their_base(preset: str, tmp_path) -> None:
    base_name, timesteps, layers, encoding = PRESET_BASES[Path(preset).stem]
    cli = cli_main(["--config", str(ROOT / base_name), "--config", preset, "--trainer.default_root_dir", str(tmp_path)], run=False)
    if layers is None:  # no_ahp: the same LSNN, every neuron a plain LIF neuron
        lsnn = cli.model.lsnn
        assert (lsnn.n_lif, lsnn.n_ahp) == (140, 100) and float(lsnn.ahp.ahp_strength) == 0.0
        assert not lsnn.ahp.ahp_strength.requires_grad
        return
    if timesteps is None:
        assert not any(type(cb).__name__ == "ANNToSNNConversion" for cb in cli.trainer.callbacks)
        assert cli.model.lstm.mode == "ann" and cli.trainer.checkpoint_callbacks
        return
    assert _converted_setting(cli, "timesteps") == timesteps
    assert _converted_setting(cli, "encoding") == encoding
    assert cli.model.hparams.layer["timesteps"] == timesteps
    assert cli.model.lstm.num_layers == layers


@pytest.mark.parametrize(
    ("base", "epoch", "classes", "head"),
    [("gsc.yaml", 30, 11, [32]), ("uci_har.yaml", 40, 6, [])],
    ids=["gsc", "uci_har"],
)
def test_paper_configs_and_finetune_preset(base: str, epoch: int, classes: int, head: list[int], tmp_path) -> None:
    """GSC/UCI HAR: one run converts mid-training; with finetune_from_ann it converts at once, at any T."""
    cli = cli_main(["--config", str(ROOT / base), "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert _conversion(cli).epoch == epoch and cli.trainer.max_epochs == epoch + 20
    assert cli.model.hparams.num_classes == classes and list(cli.model.hparams.head_sizes) == head
    assert (_converted_setting(cli, "timesteps"), _converted_setting(cli, "encoding")) == (2, "direct")
    args = ["--config", str(ROOT / base), "--config", str(ROOT / "presets" / "finetune_from_ann.yaml")]
    cli = cli_main(args + ["--model.init_args.layer.timesteps", "4", "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert _conversion(cli).epoch == 0 and _converted_setting(cli, "timesteps") == 4
    assert cli.model.hparams.lr_schedule == "cosine" and cli.trainer.max_epochs == 20


def test_presets_stack(tmp_path) -> None:
    """T, encoding and depth presets combine on the fine-tuning config (T=8, Poisson, 2 layers)."""
    args = ["--config", str(ROOT / "smnist_row_finetune.yaml")]
    for preset in ("finetune_t8", "poisson", "two_layers"):
        args += ["--config", str(ROOT / "presets" / f"{preset}.yaml")]
    cli = cli_main(args + ["--trainer.default_root_dir", str(tmp_path)], run=False)
    assert (_converted_setting(cli, "timesteps"), _converted_setting(cli, "encoding")) == (8, "poisson")
    assert cli.model.lstm.num_layers == 2


@pytest.mark.parametrize("protocol", ["P", "NP"])
@pytest.mark.parametrize("row", ABLATION_ROWS, ids=[Path(p).stem for p in ABLATION_ROWS])
def test_ablation_rows_compose_with_both_protocols(row: str, protocol: str, tmp_path) -> None:
    from benchmarks.datta_ablation import load_row

    base = ROOT / ("smnist_row_finetune.yaml" if protocol == "P" else "smnist_row_np.yaml")
    cli = cli_main(["--config", str(base), "--config", row, "--trainer.default_root_dir", str(tmp_path)], run=False)
    expected = load_row(Path(row).stem)
    lstm = cli.model.lstm
    assert set(lstm.spiking_gates) == set(expected.spiking_gates)
    layer = cli.model.hparams.layer
    assert layer["bias_shift"] is expected.bias_shift
    assert (layer["learn_threshold"], layer["learn_leak"]) == (expected.learn_threshold, expected.learn_leak)
    assert layer["timesteps"] == 2 and layer["encoding"] == "direct"
    if protocol == "P":  # converted from a pre-trained ANN; the conversion keeps the row's settings
        assert lstm.mode == "ann" and all(v is None for v in _conversion(cli).settings.values())
    else:  # spiking from the first step, no conversion
        assert lstm.mode == "snn" and not any(type(cb).__name__ == "ANNToSNNConversion" for cb in cli.trainer.callbacks)


def test_unknown_option_value_is_reported(tmp_path, capsys) -> None:
    config = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    with pytest.raises(SystemExit):
        cli_main(["--config", config, "--model.init_args.layer.encoding", "latency"], run=False)
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


@pytest.mark.parametrize(
    ("config", "variant", "cell"),
    [("ponghiran_row.yaml", "row", "modified"), ("ponghiran_pixel.yaml", "pixel", "modified"), ("baseline_cell", "row", "baseline")],
    ids=["row", "pixel", "row-baseline"],
)
def test_ponghiran_reference_recipe(config: str, variant: str, cell: str, tmp_path) -> None:
    args = ["--config", str(ROOT / "ponghiran_row.yaml")] if config == "baseline_cell" else ["--config", str(ROOT / config)]
    if config == "baseline_cell":
        args += ["--config", str(ROOT / "presets" / "baseline_cell.yaml")]
    cli = cli_main(args + ["--trainer.default_root_dir", str(tmp_path)], run=False)
    hp, data = cli.model.hparams, cli.datamodule
    layer = hp.layer
    assert (layer["cell"], layer["clamp_c"], layer["hidden_size"], layer["dropout"], hp.optimizer, hp.lr) == (cell, True, 128, 0.5, "rmsprop", 1e-3)
    assert cli.trainer.gradient_clip_val == 1.0 and cli.trainer.max_epochs == 50
    assert (data.variant, data.mean, data.std, data.batch_size) == (variant, 0.1307, 0.8693, 128)
    clamp = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ParameterClamp")
    assert (clamp.min_value, clamp.max_value, clamp.include) == (-1.0, 1.0, None)
    assert cli.model.hparams.input_size == (28 if variant == "row" else 1)


def test_pixel_fast_recipe_keeps_the_forget_bias_free(tmp_path) -> None:
    """ponghiran_pixel_fast.yaml: the reference cell and data, forget bias 2, Adam + cosine, and the Loihi
    clamp on weights only, so the forget bias of 2 survives the clamp after every optimiser step."""
    cli = cli_main(["--config", str(ROOT / "ponghiran_pixel_fast.yaml"), "--trainer.default_root_dir", str(tmp_path)], run=False)
    hp, data = cli.model.hparams, cli.datamodule
    layer = hp.layer
    assert (layer["cell"], layer["clamp_c"], layer["hidden_size"], layer["forget_bias"], layer["input_bias"]) == ("modified", True, 128, 2.0, -1.0)
    assert (hp.optimizer, hp.lr_schedule) == ("adam", "cosine")
    assert (data.variant, data.mean, data.std, cli.trainer.gradient_clip_val) == ("pixel", 0.1307, 0.8693, 1.0)
    clamp = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ParameterClamp")
    with torch.no_grad():
        cli.model.lstm.weight_hh_l0[0, 0] = 3.0
    clamp.setup(cli.trainer, cli.model, "fit")
    assert cli.model.lstm.weight_hh_l0[0, 0] == 1.0
    assert torch.equal(cli.model.lstm.bias_ih_l0[:256], torch.tensor([-1.0] * 128 + [2.0] * 128))


def test_command_line_wins_over_checkpoint_and_checkpoint_over_config(tmp_path) -> None:
    """``snnlstm test --ckpt_path``: the checkpoint's arguments replace the config file's, and options
    on the command line replace both (Lightning 2.6 alone ignores them)."""
    config = str(ROOT / "quickstart.yaml")
    common = ["--config", config, "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    # a 1-epoch fit never reaches the config's conversion (epoch 12), which ANNToSNNConversion reports as an
    # error at fit end: the fit that only writes a checkpoint runs without the config's callbacks
    fit = cli_main(["fit", *common, "--trainer.callbacks", "null", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                    "--trainer.limit_val_batches", "1", "--model.init_args.layer.hidden_size", "12",
                    "--model.init_args.layer.cell", "modified"])
    ckpt = fit.trainer.checkpoint_callback.best_model_path if fit.trainer.checkpoint_callback else ""
    if not ckpt:
        ckpt = str(tmp_path / "model.ckpt")
        fit.trainer.save_checkpoint(ckpt)
    test = cli_main(["test", *common, "--ckpt_path", ckpt, "--trainer.limit_test_batches", "1",
                     "--model.init_args.eval_mode", "hybrid", "--model.init_args.eval_timesteps", "7"])
    hp = test.model.hparams
    assert (hp.layer["hidden_size"], hp.layer["cell"]) == (12, "modified")  # from the checkpoint, not the config file
    assert (hp.eval_mode, hp.eval_timesteps) == ("hybrid", 7)  # from the command line
    assert test.trainer.callback_metrics["test/energy_ratio"] != 1.0  # the hybrid cell ran
    # a checkpoint written before the layer block (settings at the top level) is read the same way
    checkpoint = torch.load(ckpt, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    hparams.update(hparams.pop("layer"))
    old = str(tmp_path / "old_form.ckpt")
    torch.save(checkpoint, old)
    test = cli_main(["test", *common, "--ckpt_path", old, "--trainer.limit_test_batches", "1",
                     "--model.init_args.layer.timesteps", "3"])
    assert (test.model.hparams.layer["hidden_size"], test.model.hparams.layer["cell"]) == (12, "modified")
    assert test.model.hparams.layer["timesteps"] == 3  # the command line still wins
