"""``benchmarks/mnist_row.py`` end to end on a miniature MNIST in torchvision's layout (no real data)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.mnist_row import main
from benchmarks.results import read_results
from snnlstm.models import SequenceClassifier
from tests.conftest import make_trainer
from tests.datamodules.test_mnist import _write_mnist
from snnlstm.datamodules import SequentialMNIST


def _checkpoint(tmp_path: Path, data_dir: str, name: str, **kwargs) -> str:
    model = SequenceClassifier(input_size=28, num_classes=10, seq_len=28, hidden_size=8, lr=0.01, **kwargs)
    trainer = make_trainer(tmp_path / name, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(model, SequentialMNIST(data_dir=data_dir, variant="row", batch_size=8, val_size=10))
    path = str(tmp_path / f"{name}.ckpt")
    trainer.save_checkpoint(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("layers", "tag"), [(1, ""), (2, "cosine")], ids=["1-layer", "2-layer-tagged"])
def test_mnist_row_report(tmp_path: Path, layers: int, tag: str) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    ann = _checkpoint(tmp_path, data_dir, "ann", num_layers=layers, mode="ann")
    direct = _checkpoint(tmp_path, data_dir, "direct", num_layers=layers, mode="snn", timesteps=2)
    poisson = _checkpoint(tmp_path, data_dir, "poisson", num_layers=layers, mode="snn", timesteps=4, encoding="poisson")
    out_csv, figures, out_json = tmp_path / "results.csv", tmp_path / "figures", tmp_path / "report.json"
    main(["--ann-ckpt", ann, "--snn-ckpt", direct, poisson, "--data-dir", data_dir, "--sweep-timesteps", "1", "2",
          "--figures-dir", str(figures), "--out-csv", str(out_csv), "--out-json", str(out_json), "--model-tag", tag])
    model = ("lstm8-hard" if layers == 1 else "lstm8x2-hard") + (f"-{tag}" if tag else "")
    rows = read_results(out_csv)
    assert {r["model"] for r in rows} == {model}
    methods = {(r["method"], r["timesteps"]) for r in rows if r["metric"] == "test_acc"}
    assert ("datta-finetune", "2") in methods and ("datta-finetune-poisson", "4") in methods
    assert {("datta-convert", "1"), ("datta-convert-noshift", "2"), ("datta-convert-poisson", "2")} <= methods
    metrics = {r["metric"] for r in rows if r["method"] == "datta-finetune-poisson"}
    assert {"energy_ratio", "truenorth_ratio", "spinnaker_ratio", "latency_steps", "latency_steps_hybrid", "rate_f"} <= metrics
    assert ("rate_l1_f" in metrics) == (layers == 2)
    latency = {r["metric"]: float(r["value"]) for r in rows if r["method"] == "datta-finetune-poisson"}
    assert latency["latency_steps"] == 4 + 28 - 1 and latency["latency_steps_hybrid"] == 4 * 28
    name = "mnist_row" if layers == 1 else "mnist_row_2l"
    for png in (f"{name}_accuracy_vs_T.png", f"{name}_raster_T2_l0.png", f"{name}_raster_T4_poisson_l{layers - 1}.png",
                f"{name}_rates_T4_poisson.png"):
        assert (figures / png).stat().st_size > 1000, png
    with open(figures / f"{name}_accuracy_vs_T.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    stages = {(r["stage"], r["encoding"], r["timesteps"]) for r in table}
    assert ("trained", "poisson", "4") in stages and ("converted", "direct", "1") in stages
    assert set(json.loads(out_json.read_text())) >= {"ann", "conversion", f"datta-finetune-poisson-{model}-T4"}


def test_mnist_row_rejects_bad_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--ann-ckpt", str(tmp_path / "missing.ckpt"), "--out-csv", ""])
