"""The ``snnlstm`` command's errors (one short message, exit status 2) and its weights-only ``--ckpt_path``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnlstm.cli import cli_main, condense_error

ROOT = Path(__file__).parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
#: a config-only run of the quickstart config (nothing is trained)
BASE = ["--config", QUICKSTART, "--trainer.logger", "false"]


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of a CLI run that must stop with status 2, after checking that it is short and plain."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args, run=args[0] in ("fit", "validate", "test", "predict"))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Seed set")]
    assert exit_info.value.code == 2, err
    assert len(lines) <= 3 and "Traceback" not in err and "usage:" not in err, err
    return "\n".join(lines)


def _corrupt_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(100)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def _unsafe_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"hook": os.system}}, path)
    return path


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--model.init_args.layer.mode", "banana"], "--model.init_args.layer.mode banana: expected one of 'ann', 'snn', 'hybrid'"),
        (["--model.init_args.layer.timesteps", "abc"], "--model.init_args.layer.timesteps abc: expected int"),
        (["--trainer.max_epochs", "abc"], "--trainer.max_epochs abc: expected int or null"),
        (["--model.init_args.layer.compile", "x"], "--model.init_args.layer.compile x: expected one of 'none', 'step', 'full' or bool"),
        (["--model.init_args.bogus", "3"], "--model.init_args.bogus: no such option of snnlstm.models.SequenceClassifier"),
        (["--model.init_args.timesteps", "4"], "--model.init_args.timesteps: no such option of snnlstm.models.SequenceClassifier; it is a layer setting: --model.init_args.layer.timesteps"),
        (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["--model", "snnlstm.models.Nope"], "--model snnlstm.models.Nope: module 'snnlstm.models' has no attribute 'Nope'"),
    ],
    ids=["literal", "int", "optional-int", "union", "unknown-model-option", "moved-layer-option", "unknown-option", "unknown-class"],
)
def test_bad_option_value_is_one_short_message(option: list[str], expected: str, capsys) -> None:
    """Before: jsonargparse's usage (45 lines) and its nested report of the Union subtypes."""
    err = _cli_error(["fit", *BASE, *option], capsys)
    assert f"error: {expected}\n" in err + "\n"
    assert "--help" in err


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--model.init_args.layer.timesteps", "0"], "--model.init_args.layer.timesteps 0: timesteps (SNN time steps per input element) must be an integer >= 1, got 0"),
        (["--model.init_args.layer.spiking_gates=[i, o]"], "--model.init_args.layer.spiking_gates [i, o]: spiking_gates must include f, o and tanh_c"),
        (["--data.init_args.batch_size", "0"], "--data.init_args.batch_size 0: batch_size must be an integer"),
        (["--trainer.accelerator", "banana"], "--trainer.accelerator banana: You selected an invalid accelerator name"),
    ],
    ids=["model", "model-layer-list", "data", "trainer"],
)
def test_constructor_value_error_is_one_short_message(option: list[str], expected: str, capsys) -> None:
    """Before: a ValueError with two chained tracebacks (about 75 lines) and exit status 1."""
    err = _cli_error([*BASE, *option], capsys)
    assert f"error: {expected}" in err


def test_init_from_errors_name_the_option_and_the_file(tmp_path: Path, capsys) -> None:
    corrupt = _corrupt_checkpoint(tmp_path)
    err = _cli_error([*BASE, "--model.init_args.init_from", str(corrupt)], capsys)
    assert f"--model.init_args.init_from {corrupt}: init_from checkpoint '{corrupt}' cannot be read" in err
    err = _cli_error([*BASE, "--model.init_args.init_from", str(tmp_path / "missing.ckpt")], capsys)
    assert "missing.ckpt' does not exist; train the source model first" in err
    err = _cli_error([*BASE, "--model.init_args.init_from", str(_unsafe_checkpoint(tmp_path))], capsys)
    assert "unsafe.ckpt' is refused" in err and "would run code" in err


@pytest.mark.parametrize("kind", ["missing", "corrupt", "unsafe"])
def test_bad_ckpt_path_is_one_short_message(kind: str, tmp_path: Path, capsys) -> None:
    """Before: Lightning's FileNotFoundError, torch's RuntimeError or UnpicklingError, with tracebacks."""
    path = {"missing": lambda: tmp_path / "missing.ckpt", "corrupt": lambda: _corrupt_checkpoint(tmp_path),
            "unsafe": lambda: _unsafe_checkpoint(tmp_path)}[kind]()
    err = _cli_error(["test", *BASE, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(path)], capsys)
    expected = {"missing": "does not exist; check the path", "corrupt": "cannot be read: it is truncated or corrupt",
                "unsafe": "is refused: it holds objects that are not plain tensors or containers"}[kind]
    assert f"error: --ckpt_path checkpoint '{path}' {expected}" in err


def test_condense_keeps_a_plain_message() -> None:
    assert condense_error("unrecognized arguments: --x 1") == "unrecognized arguments: --x 1"
    assert condense_error('Parser key "config": File does not exist: \'a.yaml\'') == "--config: File does not exist: 'a.yaml'"


@pytest.mark.slow
def test_ckpt_path_is_loaded_weights_only(tmp_path: Path, monkeypatch) -> None:
    """``snnlstm test --ckpt_path``: Lightning's own load of the checkpoint passes ``weights_only=True`` too."""
    common = [*BASE, "--trainer.default_root_dir", str(tmp_path)]
    # without the config's callbacks: a 1-epoch fit never reaches its conversion epoch
    fit = cli_main(["fit", *common, "--trainer.callbacks", "null", "--trainer.max_epochs", "1",
                    "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"])
    ckpt = fit.trainer.checkpoint_callback.best_model_path
    calls: list[object] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    cli_main(["test", *common, "--ckpt_path", ckpt, "--trainer.limit_test_batches", "1"])
    assert len(calls) >= 2 and all(w is True for w in calls), calls  # the CLI's hparams read and the Trainer's restore


def _snnlstm_command() -> list[str]:
    script = shutil.which("snnlstm", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "snnlstm.cli"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--model.init_args.layer.mode", "banana"], "--model.init_args.layer.mode banana: expected one of 'ann', 'snn', 'hybrid'"),
     (["--model.init_args.layer.timesteps", "0"], "--model.init_args.layer.timesteps 0: timesteps")],
    ids=["parse", "constructor"],
)
def test_snnlstm_command_exits_2_with_one_message(option: list[str], expected: str, tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("JSONARGPARSE_DEBUG", None)
    done = subprocess.run([*_snnlstm_command(), "fit", *BASE, "--trainer.default_root_dir", str(tmp_path), *option],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Seed set")]
    assert done.returncode == 2, done.stderr
    assert len(lines) <= 3 and "Traceback" not in done.stderr, done.stderr
    assert f"snnlstm fit: error: {expected}" in done.stderr or f"cli.py fit: error: {expected}" in done.stderr
