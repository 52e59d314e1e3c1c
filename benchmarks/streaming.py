"""Streaming latency (issue 20): one input element per call at batch 1, the state carried.

Per-element latency on the CPU with one thread of

* ``nn-lstmcell``: ``torch.nn.LSTMCell(F, H)`` under ``torch.no_grad()`` (the reference);
* ``streaming-ann``: ``SpikingLSTM(F, H).streamer()`` (ANN mode, hard activations);
* ``streaming-snn-T{T}``: ``SpikingLSTM(F, H, mode="snn", timesteps=T).streamer()`` (direct encoding,
  default gates, bias shift): all T steps of the element in one call;
* ``forward-snn-T2``: what issue 20 started from, ``layer(x[:, n:n+1], state=out.carry)`` per element;
* ``streaming-lsnn{K}``: ``LSNN(F_lsnn, K).streamer()`` (one LSNN step per call; binary inputs).

Every method is timed in blocks of ``--calls`` calls, round-robin with a rotating start so that
background load hits all of them alike; the table gives the median per-element time over ``--repeats``
rounds, its 10-90% range, and the ratio to ``nn.LSTMCell``'s median measured in the same process.
``--kernel torch`` times the device-agnostic torch streamers instead of the C++ kernel; ``--record``
upserts the medians into ``benchmarks/results.csv`` (task ``streaming-b1``).

Run from the repository root::

    python benchmarks/streaming.py
    python benchmarks/streaming.py --repeats 50 --calls 200 --timesteps 1 2 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.results import DEFAULT_PATH, command_line, machine_description, record
from snnlstm.nn.lsnn import LSNN
from snnlstm.nn.lstm import SpikingLSTM

Step = Callable[[int], object]


def _methods(args: argparse.Namespace) -> dict[str, Step]:
    """Name -> a function running element ``n`` of its stream."""
    torch.manual_seed(0)
    f, h = args.input, args.hidden
    xs = torch.rand(args.calls, 1, f)
    methods: dict[str, Step] = {}

    cell = torch.nn.LSTMCell(f, h).eval()
    state = [torch.zeros(1, h), torch.zeros(1, h)]

    def lstm_cell(n: int) -> object:
        with torch.no_grad():
            state[:] = cell(xs[n], (state[0], state[1]))
        return state[0]

    methods["nn-lstmcell"] = lstm_cell
    ann = SpikingLSTM(f, h, backend=args.kernel).eval().streamer()
    methods["streaming-ann"] = lambda n: ann(xs[n])
    for t in args.timesteps:
        snn = SpikingLSTM(f, h, mode="snn", timesteps=t, backend=args.kernel).eval().streamer()
        methods[f"streaming-snn-T{t}"] = lambda n, s=snn: s(xs[n])
    if args.forward_baseline:
        layer = SpikingLSTM(f, h, mode="snn", timesteps=2).eval()
        carry: list[object] = [None]

        def forward_per_element(n: int) -> object:
            with torch.no_grad():
                out = layer(xs[n].unsqueeze(1), state=carry[0])
            carry[0] = out.carry
            return out.output

        methods["forward-snn-T2"] = forward_per_element
    lsnn = LSNN(args.lsnn_input, n_lif=args.lsnn_size * 7 // 12, n_ahp=args.lsnn_size - args.lsnn_size * 7 // 12,
                backend=args.kernel).streamer()
    spikes = (torch.rand(args.calls, 1, args.lsnn_input) < 0.1).float()
    methods[f"streaming-lsnn{args.lsnn_size}"] = lambda n: lsnn(spikes[n])
    kernels = {"streaming-ann": ann.kernel, "lsnn": lsnn.kernel}
    print(f"kernels: {kernels}")
    return methods


def _time(methods: dict[str, Step], calls: int, repeats: int) -> dict[str, list[float]]:
    """Per-element microseconds of every method, one block of ``calls`` per round, round-robin."""
    names = list(methods)
    for name in names:  # warm-up (first calls build/load kernels, allocate, fill caches)
        for n in range(min(calls, 50)):
            methods[name](n)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            step = methods[name]
            start = time.perf_counter_ns()
            for n in range(calls):
                step(n)
            times[name].append((time.perf_counter_ns() - start) / calls / 1e3)
    return times


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    """Time every method, print the table (and with ``--record`` upsert it); returns the timings in us."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=int, default=28)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--lsnn-size", type=int, default=240)
    parser.add_argument("--lsnn-input", type=int, default=80)
    parser.add_argument("--calls", type=int, default=200, help="calls (elements) per timed block")
    parser.add_argument("--repeats", type=int, default=30, help="round-robin rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kernel", choices=["auto", "cpp", "torch"], default="auto")
    parser.add_argument("--no-forward-baseline", dest="forward_baseline", action="store_false")
    parser.add_argument("--record", action="store_true", help="upsert the medians into --results")
    parser.add_argument("--results", default=str(DEFAULT_PATH), help="the results CSV of --record")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = _methods(args)
    times = _time(methods, args.calls, args.repeats)
    reference = statistics.median(times["nn-lstmcell"])
    print(machine_description())
    print(f"batch 1, F={args.input}, H={args.hidden}; {args.repeats} rounds of {args.calls} calls; per element:")
    print(f"{'method':<22}{'median us':>11}{'p10-p90 us':>17}{'x LSTMCell':>12}")
    rows = []
    for name, values in times.items():
        med = statistics.median(values)
        deciles = statistics.quantiles(values, n=10) if len(values) > 1 else [med] * 9
        print(f"{name:<22}{med:>11.1f}{deciles[0]:>9.1f}-{deciles[-1]:<7.1f}{med / reference:>12.2f}")
        t = name.rsplit("-T", 1)[1] if "-T" in name else ""
        for metric, value in (("latency_us", med), ("latency_ratio", med / reference)):
            rows.append({"task": "streaming-b1", "model": f"lstm{args.hidden}" if "lsnn" not in name else f"lsnn{args.lsnn_size}",
                         "method": name, "timesteps": t, "metric": metric, "value": value, "seeds": 1,
                         "command": command_line(argv)})
    if args.record:
        print(f"recorded in {record(rows, args.results)}")
    return times


if __name__ == "__main__":
    main()
