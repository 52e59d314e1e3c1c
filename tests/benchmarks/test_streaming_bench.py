"""A tiny run of the streaming-latency benchmark (benchmarks/streaming.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import streaming
from benchmarks.results import read_results


def test_streaming_benchmark_times_every_method_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    out = tmp_path / "results.csv"
    try:
        times = streaming.main(["--hidden", "8", "--input", "3", "--timesteps", "2", "--lsnn-size", "12", "--lsnn-input", "4",
                                "--calls", "3", "--repeats", "2", "--record", "--results", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert set(times) == {"nn-lstmcell", "streaming-ann", "streaming-snn-T2", "forward-snn-T2", "streaming-lsnn12"}
    assert all(len(v) == 2 and min(v) > 0 for v in times.values())
    printed = capsys.readouterr().out
    assert "x LSTMCell" in printed and "1 thread" in printed
    rows = read_results(out)
    ratio = [r for r in rows if r["method"] == "nn-lstmcell" and r["metric"] == "latency_ratio"]
    assert ratio[0]["value"] == "1" and {r["timesteps"] for r in rows if r["method"] == "streaming-snn-T2"} == {"2"}
