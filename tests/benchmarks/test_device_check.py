"""``benchmarks/device_check.py``: the comparison logic on the CPU, the message without CUDA, the real check on CUDA."""

from __future__ import annotations

import pytest
import torch

from benchmarks import device_check
from benchmarks.device_check import CASES, check_backends, collect, compare, main, make_module, time_training

SIZES = {"batch": 2, "steps": 3, "features": 2, "hidden": 4, "layers": 2}


def _pair(case: str) -> tuple[dict[str, torch.Tensor], torch.nn.Module, torch.Tensor, torch.Tensor]:
    kind, settings, _ = CASES[case]
    module = make_module(kind, settings, SIZES, seed=0).double()
    x = torch.rand(2, 3, 2, dtype=torch.float64)
    weights = torch.randn(2, 3, 4, dtype=torch.float64)
    return collect(module, x, torch.tensor([3, 2]), weights), module, x, weights


def test_collect_returns_outputs_states_counts_and_gradients() -> None:
    got, module, _, _ = _pair("snn-pipelined")
    assert {"output", "state.h", "state.c", "step_state.h", "stats0.ac", "stats1.mac", "stats0.spikes.f", "grad.x"} <= got.keys()
    assert {f"grad.{n}" for n, _ in module.named_parameters()} & got.keys()
    assert all(t.dtype == torch.float64 and t.device.type == "cpu" for t in got.values())


def test_compare_names_every_difference() -> None:
    got, module, x, weights = _pair("ann-eager")
    assert compare(got, collect(module, x, torch.tensor([3, 2]), weights), 1e-12, 0.0) == []
    changed = dict(got, output=got["output"] + 1e-3)
    del changed["state.c"]
    changed["extra"] = torch.zeros(1)
    changed["state.h"] = got["state.h"][:1]
    problems = compare(changed, got, 1e-6, 1e-6)
    assert len(problems) == 4
    assert any(p.startswith("output: max |diff| 0.001") for p in problems)
    assert "state.c: missing on the device" in problems and "extra: not in the reference" in problems
    assert any(p.startswith("state.h: shape") for p in problems)


def test_check_backends_on_the_cpu_agrees_and_reports_a_wrong_reference() -> None:
    cases = {name: CASES[name] for name in ("ann-native", "snn-fused", "hybrid-dense", "lsnn-eager")}
    lines: list[str] = []
    results = check_backends(torch.device("cpu"), torch.float64, cases, SIZES, log=lines.append)
    assert [(r.case, r.lengths) for r in results] == [
        ("ann-native", False), ("ann-native", True), ("snn-fused", False), ("snn-fused", True),
        ("hybrid-dense", False), ("hybrid-dense", True), ("lsnn-eager", False),
    ]  # fmt: skip
    assert all(r.ok for r in results), [r.mismatches for r in results]
    assert len(lines) == len(results) and results[2].kernel == "torch-fused"
    # a reference that computes another model (its analog g gate a tanh, not a hard tanh) is caught
    kind, settings, _ = CASES["snn-pipelined"]
    wrong = {"snn-wrong": (kind, settings, dict(activation="standard"))}
    bad = check_backends(torch.device("cpu"), torch.float64, wrong, SIZES, log=lambda _: None)
    assert not bad[0].ok and all(p.startswith("reference: ") for p in bad[0].mismatches)
    with pytest.raises(ValueError, match="float64 or float32"):
        check_backends(torch.device("cpu"), torch.float16, cases)


def test_time_training_reports_ratios_to_nn_lstm() -> None:
    timings = time_training(torch.device("cpu"), timesteps=(1,), batch=2, steps=2, features=2, hidden=3,
                            warmup=1, repeats=2, log=lambda _: None)  # fmt: skip
    assert [t.model for t in timings] == ["nn-lstm", "ann-standard", "ann-hard", "snn-T1"]
    assert timings[0].ratio_nn_lstm == 1.0 and all(t.median_ms > 0 and len(t.times_ms) == 2 for t in timings)


def test_without_cuda_it_says_so_and_exits(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    called: list[str] = []
    monkeypatch.setattr(device_check, "check_backends", lambda *a, **k: called.append("checks"))
    assert main([]) == 0
    assert main(["--require-cuda"]) == device_check.NO_CUDA_STATUS == 2
    assert capsys.readouterr().out.count("no CUDA device") == 2 and called == []


@pytest.mark.slow
def test_main_on_the_cpu_writes_a_report(tmp_path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.json"
    argv = ["--device", "cpu", "--skip-checks", "--timesteps", "1", "--batch", "2", "--seq", "2", "--input", "2",
            "--hidden", "3", "--warmup", "1", "--repeats", "1", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "x nn.LSTM" in capsys.readouterr().out and '"timings"' in out.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_check_on_cuda(capsys: pytest.CaptureFixture) -> None:
    assert main(["--timesteps", "1", "2", "4", "--warmup", "2", "--repeats", "3"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "FAIL" not in out and torch.cuda.get_device_name() in out
