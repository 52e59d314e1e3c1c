"""``benchmarks/ponghiran.py`` end to end on a miniature MNIST in torchvision's layout (no real data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.ponghiran import main
from benchmarks.results import read_results
from snnlstm.nn.settings import LSTMSettings
from snnlstm.datamodules import SequentialMNIST
from snnlstm.models import SequenceClassifier
from tests.conftest import make_trainer
from tests.datamodules.test_mnist import N_TEST, _write_mnist


def _checkpoint(tmp_path: Path, data_dir: str, cell: str, variant: str = "row") -> str:
    size = 28 if variant == "row" else 1
    model = SequenceClassifier(input_size=size, num_classes=10, seq_len=784 // size, lr=0.01, layer=LSTMSettings(hidden_size=8, cell=cell, clamp_c=True))
    trainer = make_trainer(tmp_path / cell, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(model, SequentialMNIST(data_dir=data_dir, variant=variant, batch_size=8, val_size=10))
    path = str(tmp_path / f"{cell}-{variant}.ckpt")
    trainer.save_checkpoint(path)
    return path


@pytest.mark.slow
def test_row_report_compares_both_schools(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    modified, baseline = _checkpoint(tmp_path, data_dir, "modified"), _checkpoint(tmp_path, data_dir, "baseline")
    out_csv, out_json = tmp_path / "results.csv", tmp_path / "report.json"
    main(["--ckpt", modified, "--baseline-ckpt", baseline, "--data-dir", data_dir, "--timesteps", "4", "16",
          "--datta-timesteps", "2", "--figures-dir", str(tmp_path / "fig"), "--out-csv", str(out_csv), "--out-json", str(out_json)])
    rows = read_results(out_csv)
    acc = {(r["model"], r["method"], r["timesteps"]): float(r["value"]) for r in rows if r["metric"] == "test_acc"}
    assert set(acc) == {("lstm8-modified", "ann", "1"), ("lstm8-baseline", "ann", "1"), ("lstm8-modified", "hybrid", "4"),
                        ("lstm8-modified", "hybrid", "16"), ("lstm8-modified", "datta-convert", "2")}
    latency = {(r["method"], r["timesteps"]): float(r["value"]) for r in rows if r["metric"] == "latency_steps"}
    assert latency == {("hybrid", "4"): 4 * 28, ("hybrid", "16"): 16 * 28, ("datta-convert", "2"): 2 + 28 - 1}
    assert all(0 <= v <= 100 for v in acc.values())
    table = capsys.readouterr().out
    assert "| hybrid | 16 |" in table and "448 (T·N)" in table and "29 (T+N−1)" in table
    assert json.loads(out_json.read_text())["images"] == N_TEST
    assert (tmp_path / "fig" / "ponghiran_row_accuracy_vs_T.png").stat().st_size > 5000


def test_pixel_subset_is_seeded_and_named(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    ckpt = _checkpoint(tmp_path, data_dir, "modified", variant="pixel")
    out_csv, out_json = tmp_path / "results.csv", tmp_path / "report.json"
    main(["--ckpt", ckpt, "--variant", "pixel", "--data-dir", data_dir, "--timesteps", "2", "--datta-timesteps",
          "--subset", "5", "--figures-dir", str(tmp_path / "fig"), "--out-csv", str(out_csv), "--out-json", str(out_json),
          "--tag", "bestval"])
    rows = read_results(out_csv)
    assert {(r["task"], r["method"]) for r in rows} == {("mnist-pixel", "ann-subset5"), ("mnist-pixel", "hybrid-subset5")}
    assert {r["model"] for r in rows} == {"lstm8-modified-bestval"}  # the tag names another checkpoint of a run
    assert (tmp_path / "fig" / "ponghiran_pixel_bestval_accuracy_vs_T.png").is_file()
    assert json.loads(out_json.read_text())["images"] == 5


def test_no_timesteps_evaluates_only_the_non_spiking_models(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    modified, baseline = _checkpoint(tmp_path, data_dir, "modified"), _checkpoint(tmp_path, data_dir, "baseline")
    out_csv = tmp_path / "results.csv"
    main(["--ckpt", modified, "--baseline-ckpt", baseline, "--data-dir", data_dir, "--timesteps", "--datta-timesteps",
          "--figures-dir", str(tmp_path / "fig"), "--out-csv", str(out_csv), "--out-json", str(tmp_path / "r.json")])
    assert {(r["model"], r["method"]) for r in read_results(out_csv)} == {("lstm8-modified", "ann"), ("lstm8-baseline", "ann")}
    assert not (tmp_path / "fig").exists()  # no sweep, no figure


@pytest.mark.parametrize(
    ("which", "match"), [("missing", "not found: train it first"), ("baseline-as-modified", "expected a non-spiking cell='modified'")],
    ids=["missing", "wrong-cell"],
)
def test_bad_checkpoints(tmp_path: Path, which: str, match: str, capsys: pytest.CaptureFixture) -> None:
    if which == "missing":
        ckpt = str(tmp_path / "nope.ckpt")
    else:
        data_dir = str(tmp_path / "data")
        _write_mnist(Path(data_dir))
        ckpt = _checkpoint(tmp_path, data_dir, "baseline")
    with pytest.raises(SystemExit):
        main(["--ckpt", ckpt, "--out-csv", ""])
    assert match in capsys.readouterr().err
