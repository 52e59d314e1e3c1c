"""The Table 1 ablation script end to end on tiny generated data (no MNIST needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.datta_ablation import PAPER, ROW_NAMES, ROWS, load_row, main, parse_args
from benchmarks.results import read_results
from snnlstm.nn.settings import LSTMSettings
from snnlstm.models import SequenceClassifier
from tests.conftest import TinySequences, make_trainer


@pytest.fixture
def ann_ckpt(tmp_path: Path) -> str:
    model = SequenceClassifier(input_size=4, num_classes=2, seq_len=6, lr=0.02, layer=LSTMSettings(hidden_size=8, mode="ann"))
    trainer = make_trainer(tmp_path, max_epochs=2)
    trainer.fit(model, TinySequences())
    path = str(tmp_path / "ann.ckpt")
    trainer.save_checkpoint(path)
    return path


@pytest.mark.slow
def test_ablation_runs_rows_protocols_and_seeds(tmp_path: Path, ann_ckpt: str) -> None:
    out_csv, out_md = tmp_path / "results.csv", tmp_path / "table.md"
    argv = ["--ann-ckpt", ann_ckpt, "--rows", "no-shift", "ns-tanh-g", "--seeds", "0", "1", "--hidden", "8"]
    argv += ["--p-epochs", "1", "--np-epochs", "1", "--work-dir", str(tmp_path / "w")]
    argv += ["--out-csv", str(out_csv), "--out-md", str(out_md)]
    result = main(argv, data=TinySequences())
    assert len(result["runs"]) == 2 * 2 * 2
    by = {(r["row"], r["protocol"], r["seed"]): r for r in result["runs"]}
    # "no-shift" trains neither thresholds nor leaks; the full method trains both
    assert by[("no-shift", "P", 0)]["threshold_f"] == pytest.approx(4.0) and by[("no-shift", "P", 0)]["leak_f"] == 1.0
    assert by[("ns-tanh-g", "P", 0)]["threshold_f"] != pytest.approx(4.0)
    assert by[("ns-tanh-g", "NP", 0)]["leak_f"] != 1.0
    summary = {(s["row"], s["protocol"]): s for s in result["summary"]}
    assert set(summary) == {(r, p) for r in ("no-shift", "ns-tanh-g") for p in ("P", "NP")}
    assert all(s["seeds"] == 2 and s["std"] >= 0 for s in summary.values())
    assert summary[("ns-tanh-g", "P")]["paper"] == PAPER["ns-tanh-g"][0]
    table = out_md.read_text()
    assert "| + NS tanh_g |" in table and " ± " in table and "98.15" in table
    rows = read_results(out_csv)
    methods = {r["method"] for r in rows}
    assert "datta-ablation-no-shift-P" in methods and "datta-ablation-ns-tanh-g-NP" in methods
    assert {r["metric"] for r in rows} == {"test_acc", "test_acc_std"} and all(r["seeds"] == "2" for r in rows)
    assert (tmp_path / "w" / "runs.csv").exists()


def test_ablation_arguments() -> None:
    assert parse_args(["--protocols", "NP"]).rows == list(ROW_NAMES)
    with pytest.raises(SystemExit):
        parse_args([])  # P needs a checkpoint
    with pytest.raises(SystemExit):
        parse_args(["--protocols", "NP", "--rows", "everything"])
    with pytest.raises(SystemExit):
        parse_args(["--protocols", "NP", "--np-epochs", "0"])


def test_rows_are_table_1() -> None:
    """The rows read from configs/ablation/*.yaml are the paper's Table 1 definitions."""
    every = ("i", "f", "g", "o", "tanh_c")
    table_1 = {  # name: (shift, V_th training, leak training, spiking gates)
        "no-shift": (False, False, False, every),
        "shift": (True, False, False, every),
        "threshold": (True, True, False, every),
        "leak": (True, True, True, every),
        "ns-sig-i": (True, True, True, ("f", "g", "o", "tanh_c")),
        "ns-tanh-g": (True, True, True, ("i", "f", "o", "tanh_c")),
    }
    assert ROW_NAMES == tuple(table_1)
    for row in ROWS:
        assert (row.bias_shift, row.learn_threshold, row.learn_leak, set(row.spiking_gates)) == (
            table_1[row.name][:3] + (set(table_1[row.name][3]),)
        ), row.name


def test_bad_row_config_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ns-tanh-g"):
        load_row("ns-tanh-g", tmp_path)
    (tmp_path / "shift.yaml").write_text("model:\n  init_args:\n    bias_shift: true\n")
    with pytest.raises(ValueError, match="learn_threshold"):
        load_row("shift", tmp_path)
