"""The GSC / UCI HAR protocol script, end to end through the real CLI on miniature datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks import paper_protocol
from tests.datamodules.test_speech_commands import make_release
from tests.datamodules.test_uci_har import write_har


def _run(task: str, data_dir: Path, tmp_path: Path, *extra: str) -> dict:
    argv = ["--task", task, "--data-dir", str(data_dir), "--ann-epochs", "2", "--finetune-epochs", "1", "--timesteps", "2"]
    argv += ["--no-wandb", "--work-dir", str(tmp_path / "work"), "--out-csv", str(tmp_path / "results.csv"), *extra]
    argv += ["--", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    if task == "gsc":
        argv += ["--data.init_args.num_workers", "0", "--data.init_args.cache_dir", str(tmp_path / "cache")]
    else:
        argv += ["--data.init_args.val_subjects", "2"]
    return paper_protocol.main(argv)


@pytest.mark.slow
def test_gsc_protocol_writes_table_and_results(tmp_path: Path) -> None:
    out = _run("gsc", make_release(tmp_path / "speech_commands_v0.02"), tmp_path)
    runs = out["runs"]
    assert [r["timesteps"] for r in runs] == [0, 2]
    assert Path(runs[1]["checkpoint"]).is_file() and runs[1]["energy_ratio"] > 0
    table = (tmp_path / "work" / "table.md").read_text()
    assert "| lstm128-hard non-spiking | - |" in table and "| 95.42 |" in table  # ANN row next to the paper's
    assert "| lstm128-hard spiking | 2 |" in table and "| 94.75 |" in table
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    accs = {(r["method"], r["timesteps"]): float(r["value"]) for r in rows if r["metric"] == "test_acc"}
    assert set(accs) == {("ann", "1"), ("datta-finetune", "2")}
    assert all(0 <= v <= 100 for v in accs.values()) and all(r["task"] == "gsc" for r in rows)
    assert all("paper_protocol.py --task gsc" in r["command"] for r in rows)


@pytest.mark.slow
def test_uci_har_protocol_two_seeds(tmp_path: Path) -> None:
    write_har(tmp_path / "har")
    out = _run("uci_har", tmp_path / "har", tmp_path, "--seeds", "0", "1")
    assert [(r["seed"], r["timesteps"]) for r in out["runs"]] == [(0, 0), (0, 2), (1, 0), (1, 2)]
    table = out["table"]
    assert "| 90.37 |" in table and "| 89.40 |" in table and " ± " in table  # mean ± std over the 2 seeds
    metrics = {(r["method"], r["metric"]) for r in out["rows"]}
    assert {("ann", "test_acc"), ("ann", "test_acc_std"), ("datta-finetune", "energy_ratio")} <= metrics
    assert all(r["task"] == "uci-har" and r["seeds"] == 2 for r in out["rows"])


def test_missing_data_dir_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        paper_protocol.parse_args(["--task", "gsc", "--data-dir", str(tmp_path / "nope")])
    assert "does not exist" in capsys.readouterr().err


def test_unknown_task_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        paper_protocol.parse_args(["--task", "timit", "--data-dir", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_arguments_after_double_dash(tmp_path: Path) -> None:
    args = paper_protocol.parse_args(["--task", "uci_har", "--data-dir", str(tmp_path), "--", "--config", "x.yaml"])
    assert args.cli == ["--config", "x.yaml"] and args.ann_epochs == 40 and args.timesteps == [2, 4]
