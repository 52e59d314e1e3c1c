"""The quickstart end to end (shortened): fit -> convert -> fine-tune -> test, wandb offline run files."""

from pathlib import Path

import pytest
import yaml

from snnlstm import quickstart
from tests.wandb_utils import read_wandb_offline

CONFIG = Path(__file__).parents[1] / "configs" / "quickstart.yaml"


@pytest.mark.slow
def test_quickstart_runs_and_reports(tmp_path, monkeypatch) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["max_epochs"] = 3
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path)
    config["trainer"]["callbacks"][0]["init_args"]["epoch"] = 2
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("WANDB_MODE", "offline")
    report = quickstart.run(str(path), str(tmp_path))
    assert 0 <= report["ann_test_acc"] <= 100 and 0 <= report["snn_test_acc"] <= 100
    assert report["ann_test_acc"] > 30  # learned something in 2 ANN epochs (chance is 10%)
    assert 0 < report["snn_sparsity"] < 1 and report["snn_energy_ratio"] > 1
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    keys = set(read_wandb_offline(run_dir))
    assert {"val/acc", "val/energy_ratio", "val/sparsity", "test/acc"} <= keys, sorted(keys)
    assert any(k.startswith("val/spikes/lstm/l0.f/rate") for k in keys)


def test_quickstart_requires_the_callbacks(tmp_path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"] = [c for c in config["trainer"]["callbacks"] if "SpikeMonitor" not in c["class_path"]]
    config["trainer"]["logger"] = False
    config["trainer"]["max_epochs"] = 0
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="SpikeMonitor"):
        quickstart.run(str(path), str(tmp_path))
