"""``benchmarks/lsnn.py`` end to end on a miniature MNIST in torchvision's layout (no real data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.lsnn import main
from benchmarks.results import read_results
from snnlstm.nn.settings import LSTMSettings
from snnlstm.datamodules import SequentialMNIST
from snnlstm.models import LSNNClassifier, SequenceClassifier
from tests.conftest import make_trainer
from tests.datamodules.test_mnist import _write_mnist


def _checkpoint(tmp_path: Path, data_dir: str, beta: float) -> str:
    model = LSNNClassifier(input_size=1, num_classes=10, encoder="threshold_crossing", levels=3, cue_steps=2, cue_neurons=1,
                           n_lif=6, n_ahp=4, beta=beta, lr=0.01)  # fmt: skip
    trainer = make_trainer(tmp_path / str(beta), max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, SequentialMNIST(data_dir=data_dir, variant="pixel", normalize=False, batch_size=8, val_size=10))
    path = str(tmp_path / f"lsnn-{beta}.ckpt")
    trainer.save_checkpoint(path)
    return path


def test_report_records_accuracy_rates_and_energy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    ahp, plain = _checkpoint(tmp_path, data_dir, 50.0), _checkpoint(tmp_path, data_dir, 0.0)
    out_csv, out_json = tmp_path / "results.csv", tmp_path / "report.json"
    main(["--ckpt", ahp, plain, "--names", "ahp", "plain", "--data-dir", data_dir, "--subset", "6",
          "--out-csv", str(out_csv), "--out-json", str(out_json)])  # fmt: skip
    rows = read_results(out_csv)
    metrics = {(r["task"], r["model"], r["method"], r["metric"]) for r in rows}
    for name in ("ahp", "plain"):
        for metric in ("test_acc", "firing_rate", "ac_per_sample", "mac_per_sample", "energy_uj_per_sample", "latency_steps"):
            assert ("mnist-pixel", name, "lsnn-subset6", metric) in metrics
    report = json.loads(out_json.read_text())
    assert report["models"]["ahp"]["images"] == 6 and report["models"]["ahp"]["latency_steps"] == 784 + 2
    assert "| ahp |" in capsys.readouterr().out


def test_rejects_a_checkpoint_that_is_not_an_lsnn(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    _write_mnist(Path(data_dir))
    model = SequenceClassifier(input_size=28, layer=LSTMSettings(hidden_size=4))
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, SequentialMNIST(data_dir=data_dir, batch_size=8, val_size=10))
    path = str(tmp_path / "lstm.ckpt")
    trainer.save_checkpoint(path)
    with pytest.raises(SystemExit):
        main(["--ckpt", path, "--data-dir", data_dir, "--out-csv", ""])
    with pytest.raises(SystemExit):
        main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out-csv", ""])
