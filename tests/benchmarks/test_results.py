"""Tests of the results recorder and a tiny run of the step-time benchmark."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from benchmarks.results import RESULT_COLUMNS, command_line, format_value, machine_description, read_results, record


def row(model: str = "m", metric: str = "acc", value: float = 0.5, timesteps: int | None = 2, **kw) -> dict:
    base = dict(task="t", model=model, method="x", timesteps=timesteps, metric=metric, value=value, seeds=1, command="python a.py")
    base.update(kw)
    return base


def test_record_writes_header_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.csv"
    record([row(), row(model="n", timesteps=None, value=1.23456)], path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(RESULT_COLUMNS)
    rows = read_results(path)
    assert [(r["model"], r["timesteps"], r["value"]) for r in rows] == [("m", "2", "0.5"), ("n", "", "1.235")]


def test_record_upserts_and_keeps_other_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    record([row(model="a", value=1.0), row(model="b", value=2.0), row(model="a", metric="ms", value=3.0)], path)
    record([row(model="a", value=9.0, seeds=3), row(model="c", value=4.0)], path)
    rows = read_results(path)
    assert [(r["model"], r["metric"], r["value"], r["seeds"]) for r in rows] == [
        ("a", "acc", "9", "3"),
        ("b", "acc", "2", "1"),
        ("a", "ms", "3", "1"),
        ("c", "acc", "4", "1"),
    ]
    record([row(model="b", value=5.0, timesteps=4)], path)  # other T: a new row
    assert len(read_results(path)) == 5


def test_record_accepts_headerless_file_and_quotes_commands(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("t,m,x,2,acc,0.1,1,old\n")
    record([row(model="z", command='python b.py --x "a,b"')], path)
    with open(path, newline="") as fh:
        data = list(csv.reader(fh))
    assert tuple(data[0]) == RESULT_COLUMNS
    assert data[1][5] == "0.1" and data[2][7] == 'python b.py --x "a,b"'


@pytest.mark.parametrize(
    ("bad", "words"),
    [({k: v for k, v in row().items() if k != "seeds"}, ["missing", "seeds"]), ({**row(), "extra": 1}, ["unknown", "extra"])],
)
def test_record_rejects_bad_columns(tmp_path: Path, bad: dict, words: list[str]) -> None:
    path = tmp_path / "r.csv"
    with pytest.raises(ValueError) as err:
        record([row(), bad], path)
    assert all(w in str(err.value) for w in words)
    assert not path.exists()  # nothing written


def test_format_value() -> None:
    assert format_value(123.456) == "123.5"
    assert format_value(0.0123456) == "0.01235"
    assert format_value(12345.6) == "12346"
    assert format_value(2.0) == "2"
    assert format_value(3) == "3"
    assert format_value(None) == ""
    assert format_value(1e-7) == "1e-07"


def test_command_line_and_machine() -> None:
    repo = Path(__file__).resolve().parents[2]
    cmd = command_line(["--repeats", "10", "a b"], script=repo / "benchmarks" / "step_time.py")
    assert cmd == "python benchmarks/step_time.py --repeats 10 'a b'"
    desc = machine_description()
    assert "CPU" in desc and "torch" in desc and "1 process" in desc


def test_step_time_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.step_time import main

    out_csv, out_json = tmp_path / "results.csv", tmp_path / "out.json"
    argv = ["--batch", "4", "--hidden", "8", "--seq", "5", "--input", "3", "--timesteps", "1", "2"]
    argv += ["--repeats", "2", "--warmup", "1", "--variants", "fused,eager", "--out-csv", str(out_csv), "--out-json", str(out_json)]
    argv += ["--peers", "snntorch", "--inference"]
    result = main(argv)
    rows = read_results(out_csv)
    got = {(r["model"], r["timesteps"], r["metric"]) for r in rows}
    models = [("nn-lstm8", ""), ("snntorch-slstm8", ""), ("lstm8-hard", ""), ("lstm8-hard-eager", "")]
    for model, t in models + [("snnlstm-T1-eager", "1"), ("snnlstm-T2-fused", "2")]:
        assert {(model, t, "step_time_ms"), (model, t, "step_time_ratio")} <= got
    assert all(r["task"] == "mnist-row" and r["method"] == "step-time" and r["seeds"] == "1" for r in rows)
    assert rows[0]["command"].startswith("python benchmarks/step_time.py --batch 4")
    ratio = {r["model"]: float(r["value"]) for r in rows if r["metric"] == "step_time_ratio"}
    assert ratio["nn-lstm8"] == 1.0 and all(v > 0 for v in ratio.values())
    assert json.loads(out_json.read_text())["models"][0]["model"] == "nn-lstm8"
    floors = set(result["floor"])
    assert {"fused: training step T=1 <= 1.4x nn.LSTM", "eager: training step T=2 <= 2.2x nn.LSTM"} <= floors
    assert "fused: no-grad forward T=2 <= 2x nn.LSTM's" in floors
    assert any(name.startswith("fused: training step T=2 >= 2.5x faster than snntorch") for name in floors)
    # the peers at each T, and the no-grad forward of every model
    assert {("snntorch-slstm8-T1", "1", "step_time_ms"), ("snntorch-slstm8-T2", "2", "infer_time_ratio")} <= got
    assert {("snnlstm-T2-fused", "2", "infer_time_ms"), ("nn-lstm8", "", "infer_time_ratio")} <= got
    out = capsys.readouterr().out
    assert "snnlstm-T2-eager" in out and "infer ms" in out


def test_step_time_non_spiking_only_with_the_modified_cell(tmp_path: Path) -> None:
    from benchmarks.step_time import main

    argv = ["--batch", "4", "--hidden", "8", "--seq", "6", "--input", "1", "--timesteps", "--cell", "modified", "--clamp-c"]
    result = main(argv + ["--repeats", "1", "--warmup", "1", "--task", "mnist-pixel", "--out-csv", str(tmp_path / "r.csv")])
    assert [m["model"] for m in result["models"]] == ["nn-lstm8", "snntorch-slstm8", "modified8-clampc", "modified8-clampc-eager"]
    assert result["floor"] == {}
    assert {r["task"] for r in read_results(tmp_path / "r.csv")} == {"mnist-pixel"}


def test_step_time_lsnn_rows(tmp_path: Path) -> None:
    from benchmarks.step_time import main

    argv = ["--batch", "4", "--hidden", "12", "--seq", "6", "--input", "3", "--timesteps", "--lsnn"]
    result = main(argv + ["--repeats", "1", "--warmup", "1", "--out-csv", str(tmp_path / "r.csv")])
    models = [m["model"] for m in result["models"]]
    assert models[-3:] == ["snntorch-rleaky12", "lsnn12", "lsnn12-eager"]
    assert all(m["median_ms"] > 0 for m in result["models"])


def test_step_time_spikingjelly_peer_repeats_every_element_t_times(tmp_path: Path) -> None:
    pytest.importorskip("spikingjelly")
    from benchmarks.step_time import SpikingJellyLSTM, main

    torch.manual_seed(0)
    model, x = SpikingJellyLSTM(3, 5, timesteps=2), torch.rand(2, 4, 3)
    seq = x.transpose(0, 1).repeat_interleave(2, dim=0)
    torch.testing.assert_close(model(x), model.lstm(seq)[0][-1])
    assert torch.equal(seq[0], seq[1]) and torch.equal(seq[2], x[:, 1])
    argv = ["--batch", "4", "--hidden", "8", "--seq", "5", "--input", "3", "--timesteps", "2", "--variants", "fused"]
    result = main(argv + ["--peers", "spikingjelly", "--repeats", "1", "--warmup", "1", "--out-csv", str(tmp_path / "r.csv")])
    assert "spikingjelly-lstm8-T2" in [m["model"] for m in result["models"]]
    assert any("faster than spikingjelly" in name for name in result["floor"])


def test_step_time_flags() -> None:
    from benchmarks.step_time import parse_args

    assert parse_args([]).variants == ["fused", "eager"]
    assert parse_args(["--no-compile"]).variants == ["fused", "eager"]
    assert parse_args(["--compile"]).variants == ["fused-compiled", "compiled"]
    assert parse_args(["--variants", "compiled,eager"]).variants == ["compiled", "eager"]
    defaults = parse_args([])
    assert (defaults.batch, defaults.seq, defaults.input, defaults.hidden, defaults.timesteps) == (128, 28, 28, 128, [1, 2, 4, 8])
    with pytest.raises(SystemExit):
        parse_args(["--variants", "fast"])
    with pytest.raises(SystemExit):
        parse_args(["--compile", "--variants", "eager"])
    assert defaults.peers == ["snntorch", "spikingjelly"] and not defaults.inference
    assert parse_args(["--peers", "none"]).peers == []
    with pytest.raises(SystemExit):
        parse_args(["--peers", "norse"])
