"""Slim checkpoints load, evaluate and keep the spiking conversion state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.slim_checkpoint import main, slim_checkpoint
from snnlstm.nn.settings import LSTMSettings
from snnlstm.models import SequenceClassifier
from tests.conftest import TinySequences, make_trainer


@pytest.mark.parametrize("mode", ["ann", "snn"])
def test_slim_checkpoint_loads_and_tests(tmp_path: Path, mode: str) -> None:
    data = TinySequences()
    model = SequenceClassifier(input_size=4, num_classes=2, seq_len=6, lr=0.02, layer=LSTMSettings(hidden_size=8, mode=mode, timesteps=3, encoding="direct"))
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, data)
    full = tmp_path / "full.ckpt"
    trainer.save_checkpoint(full)
    ckpt = torch.load(full, weights_only=False)
    ckpt["hyper_parameters"]["init_from"] = str(tmp_path / "gone.ckpt")  # a run that started from another checkpoint
    torch.save(ckpt, full)
    slim = slim_checkpoint(full, tmp_path / "out" / "slim.ckpt")
    assert slim.stat().st_size < full.stat().st_size
    loaded = SequenceClassifier.load_from_checkpoint(slim, map_location="cpu")
    assert loaded.hparams.init_from is None
    assert (loaded.lstm.mode, loaded.lstm.timesteps) == (mode, 3)
    x = data.x[:5]
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        # the "P" protocol starts new runs from it
        started = SequenceClassifier(input_size=4, num_classes=2, seq_len=6, init_from=str(slim), layer=LSTMSettings(hidden_size=8, mode=mode, timesteps=3)).eval()
        assert torch.equal(model(x), started(x))
    result = make_trainer(tmp_path).test(loaded, data, ckpt_path=str(slim), verbose=False)[0]
    assert 0.0 <= result["test/acc"] <= 1.0


def test_slim_checkpoint_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        slim_checkpoint(tmp_path / "missing.ckpt", tmp_path / "x.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        slim_checkpoint(tmp_path / "plain.pt", tmp_path / "x.ckpt")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.ckpt"), str(tmp_path / "x.ckpt")])
