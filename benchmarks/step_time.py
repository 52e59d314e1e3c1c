"""Training-step time on the CPU: our spiking LSTM against ``torch.nn.LSTM`` and snnTorch's ``SLSTM``.

The required setting (all defaults): batch 128, sequences of 28 steps x 28 inputs (row-wise MNIST),
H=128. One training step = forward over the whole sequence, cross-entropy on the last output
through a ``Linear(H, 10)`` head, backward, Adam step; identical for every model. Models:

* ``nn-lstm128``: ``torch.nn.LSTM(28, 128, batch_first=True)``;
* ``snntorch-slstm128``: ``nn.Linear(28, 128)`` then ``snntorch.SLSTM(128, 128)`` looped over the
  28 elements with explicit state (snnTorch 1.0.0's SLSTM resets its state on every call when
  ``input_size != hidden_size``, hence the projection);
* ``lstm128-hard``: our :class:`~snnlstm.nn.lstm.SpikingLSTM` in ANN mode (hard activations) with its
  default ``schedule="fused"`` (C++ sequence kernels, hand-written backward), and ``lstm128-hard-eager``
  the same layer as an eager autograd loop (``schedule="pipelined"``); ``--cell modified --clamp-c``
  times Ponghiran & Roy's cell with the Loihi clamp instead (``modified128-clampc``);
* with ``--lsnn``: ``lsnn{H}`` our :class:`~snnlstm.nn.lsnn.LSNN` of H LIF and AHP neurons (C++ time loop,
  hand-written backward), ``lsnn{H}-eager`` its autograd loop, and ``snntorch-rleaky{H}`` snnTorch's
  recurrent LIF layer ``RLeaky`` of the same size;
* ``snnlstm-T{T}-{variant}``: our layer in SNN mode with ``timesteps=T``; variants (see
  :data:`VARIANT_SETTINGS`): ``fused`` (the default layer: C++ wavefront kernels and hand-written
  backward), ``fused-compiled``, and the autograd pipelined schedule ``eager``, ``compiled``, ``full``.

After warm-up steps (where ``torch.compile`` compiles and the C++ kernels build; reported
separately) the models are timed
round-robin, one step each per round with a rotating start, so background load hits all of them
alike; the median over ``--repeats`` rounds is reported with ratios to nn.LSTM and to SLSTM.
Floor: our T=2 step at most 4x nn.LSTM's.

Run from the repository root::

    python benchmarks/step_time.py                      # fused and eager, T = 1 2 4 8
    python benchmarks/step_time.py --variants fused --timesteps 2 --repeats 10
    python benchmarks/step_time.py --seq 784 --input 1 --cell modified --clamp-c --timesteps --task mnist-pixel
    python benchmarks/step_time.py --seq 840 --input 84 --hidden 240 --timesteps --lsnn --task smnist-lsnn
    python -m benchmarks.step_time --no-compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor, nn

from benchmarks.results import DEFAULT_PATH, command_line, machine_description, record

#: variant -> SpikingLSTM ``(schedule, compile)``: "fused" is the default layer (C++ wavefront kernels
#: with the hand-written backward), "fused-compiled" the same with ``compile="step"`` (which only
#: changes anything where the C++ kernels do not apply: then the Python wavefront functions are
#: compiled); "eager", "compiled" and "full" are the autograd pipelined schedule without
#: compilation, with each step compiled, and with the whole schedule compiled (minutes; not by default)
VARIANT_SETTINGS: dict[str, tuple[str, str]] = {
    "fused": ("fused", "none"),
    "fused-compiled": ("fused", "step"),
    "eager": ("pipelined", "none"),
    "compiled": ("pipelined", "step"),
    "full": ("pipelined", "full"),
}
VARIANTS: tuple[str, ...] = tuple(VARIANT_SETTINGS)
DEFAULT_VARIANTS: tuple[str, ...] = ("fused", "eager")
FLOOR_T, FLOOR_RATIO = 2, 4.0


class TorchLSTM(nn.Module):
    """``torch.nn.LSTM`` returning the last element's output ``[B, H]``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return out[:, -1]


class SnnTorchSLSTM(nn.Module):
    """Projection to the hidden size, then snnTorch's ``SLSTM`` stepped over the sequence.

    Returns the last element's output spikes ``[B, H]``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        import snntorch

        self.proj = nn.Linear(input_size, hidden_size)
        self.slstm = snntorch.SLSTM(hidden_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        syn, mem = self.slstm.reset_mem()
        spk = None
        for x_t in self.proj(x).unbind(1):
            spk, syn, mem = self.slstm(x_t, syn, mem)
        assert spk is not None
        return spk


class SnnTorchRLeaky(nn.Module):
    """Projection, then snnTorch's recurrent LIF layer ``RLeaky`` (all-to-all, reset to zero) stepped over
    the sequence: snnTorch's own counterpart of our LSNN layer. Returns the last step's spikes ``[B, K]``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        import snntorch

        self.proj = nn.Linear(input_size, hidden_size)
        self.rlif = snntorch.RLeaky(beta=0.95, linear_features=hidden_size, reset_mechanism="zero")

    def forward(self, x: Tensor) -> Tensor:
        spk, mem = self.rlif.init_rleaky()
        for x_t in self.proj(x).unbind(1):
            spk, mem = self.rlif(x_t, spk, mem)
        return spk


class OurLSNN(nn.Module):
    """:class:`snnlstm.nn.lsnn.LSNN` (LIF + AHP neurons, 100/240 of them AHP as in the sMNIST network)
    returning the last step's spikes ``[B, K]``."""

    def __init__(self, input_size: int, hidden_size: int, **kwargs: Any) -> None:
        super().__init__()
        from snnlstm.nn.lsnn import LSNN

        n_ahp = round(hidden_size * 100 / 240)
        self.lsnn = LSNN(input_size, n_lif=hidden_size - n_ahp, n_ahp=n_ahp, beta=180.0, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        return self.lsnn(x).output[:, -1]


class OurLSTM(nn.Module):
    """:class:`snnlstm.nn.lstm.SpikingLSTM` returning the last element's output ``[B, H]``."""

    def __init__(self, input_size: int, hidden_size: int, **kwargs: Any) -> None:
        super().__init__()
        from snnlstm.nn.lstm import SpikingLSTM

        self.lstm = SpikingLSTM(input_size, hidden_size, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        return self.lstm(x).output[:, -1]


@dataclass
class Bench:
    """One timed model: its training step and measurements."""

    name: str
    kind: str  # "nn-lstm", "snntorch-slstm", "ours-ann", "ours-snn"
    timesteps: int | None
    variant: str
    step: Callable[[], float] = field(repr=False)
    warmup_s: list[float] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        """Median timed step in milliseconds."""
        return 1000.0 * statistics.median(self.times_s)

    @property
    def compile_s(self) -> float | None:
        """Compile/build-time estimate: first step minus the timed median (for "fused" this is the C++
        kernel build, or about 0 when torch's extension cache already holds it)."""
        if self.variant == "eager" or self.kind != "ours-snn" or not self.warmup_s:
            return None
        return max(0.0, self.warmup_s[0] - self.median_ms / 1000.0)


def make_step(model: nn.Module, head: nn.Module, x: Tensor, y: Tensor, lr: float = 1e-3) -> Callable[[], float]:
    """A closure that runs one training step and returns its wall time in seconds."""
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)
    model.train()

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(head(model(x)), y)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def build(args: argparse.Namespace) -> list[Bench]:
    """All models of one run, each with its own head, optimizer and the same data."""
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, args.seq, args.input, generator=gen)  # pixel intensities in [0, 1]
    y = torch.randint(0, args.classes, (args.batch,), generator=gen)
    h = args.hidden
    ann = f"lstm{h}-hard" if args.cell == "lstm" else f"{args.cell}{h}"
    ann += "-clampc" if args.clamp_c else ""
    ann_kwargs = dict(mode="ann", cell=args.cell, clamp_c=args.clamp_c)
    specs: list[tuple[str, str, int | None, str, Callable[[], nn.Module]]] = [
        (f"nn-lstm{h}", "nn-lstm", None, "eager", lambda: TorchLSTM(args.input, h)),
        (f"snntorch-slstm{h}", "snntorch-slstm", None, "eager", lambda: SnnTorchSLSTM(args.input, h)),
        (ann, "ours-ann", None, "fused", lambda: OurLSTM(args.input, h, **ann_kwargs)),
        (f"{ann}-eager", "ours-ann", None, "eager", lambda: OurLSTM(args.input, h, schedule="pipelined", **ann_kwargs)),
    ]
    if args.lsnn:
        specs += [
            (f"snntorch-rleaky{h}", "snntorch-rleaky", None, "eager", lambda: SnnTorchRLeaky(args.input, h)),
            (f"lsnn{h}", "ours-lsnn", None, "fused", lambda: OurLSNN(args.input, h)),
            (f"lsnn{h}-eager", "ours-lsnn", None, "eager", lambda: OurLSNN(args.input, h, schedule="eager")),
        ]
    for variant in args.variants:
        for t in args.timesteps:
            specs.append(
                (
                    f"snnlstm-T{t}-{variant}",
                    "ours-snn",
                    t,
                    variant,
                    lambda t=t, variant=variant: OurLSTM(
                        args.input,
                        h,
                        mode="snn",
                        timesteps=t,
                        schedule=VARIANT_SETTINGS[variant][0],
                        compile=VARIANT_SETTINGS[variant][1],
                    ),
                )
            )
    benches = []
    for name, kind, t, variant, factory in specs:
        torch.manual_seed(args.seed)
        model = factory()
        head = nn.Linear(h, args.classes)
        benches.append(Bench(name, kind, t, variant, make_step(model, head, x, y)))
    return benches


def run(benches: list[Bench], warmup: int, repeats: int, log: Callable[[str], None] = print) -> None:
    """Warm every model up, then time ``repeats`` rounds of one step per model, round-robin."""
    for bench in benches:
        for _ in range(warmup):
            bench.warmup_s.append(bench.step())
        log(f"warm-up {bench.name}: {', '.join(f'{s:.2f}' for s in bench.warmup_s)} s")
    for r in range(repeats):
        shift = r % len(benches)
        for bench in benches[shift:] + benches[:shift]:
            bench.times_s.append(bench.step())


def summarize(benches: list[Bench]) -> list[dict[str, Any]]:
    """Per model: median ms, ratios to nn.LSTM and to snnTorch SLSTM, compile estimate."""
    ref = {b.kind: b.median_ms for b in benches if b.kind in ("nn-lstm", "snntorch-slstm")}
    out = []
    for b in benches:
        out.append(
            {
                "model": b.name,
                "timesteps": b.timesteps,
                "variant": b.variant,
                "median_ms": b.median_ms,
                "ratio_nn_lstm": b.median_ms / ref["nn-lstm"],
                "ratio_snntorch_slstm": b.median_ms / ref["snntorch-slstm"],
                "compile_s": b.compile_s,
                "warmup_s": b.warmup_s,
                "times_ms": [1000.0 * s for s in b.times_s],
            }
        )
    return out


def format_table(summary: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`summarize`'s rows."""
    header = f"{'model':<24} {'T':>3} {'median ms':>10} {'x nn.LSTM':>10} {'x SLSTM':>9} {'compile s':>10}"
    lines = [header, "-" * len(header)]
    for s in summary:
        t = "-" if s["timesteps"] is None else str(s["timesteps"])
        comp = "-" if s["compile_s"] is None else f"{s['compile_s']:.1f}"
        lines.append(
            f"{s['model']:<24} {t:>3} {s['median_ms']:>10.1f} {s['ratio_nn_lstm']:>10.2f} "
            f"{s['ratio_snntorch_slstm']:>9.2f} {comp:>10}"
        )
    return "\n".join(lines)


def floor_checks(summary: list[dict[str, Any]]) -> dict[str, bool]:
    """Variant -> whether our T=2 step is at most 4x nn.LSTM's (only variants that ran T=2)."""
    return {
        s["variant"]: s["ratio_nn_lstm"] <= FLOOR_RATIO
        for s in summary
        if s["model"].startswith("snnlstm-") and s["timesteps"] == FLOOR_T
    }


def result_rows(summary: list[dict[str, Any]], task: str, command: str) -> list[dict[str, Any]]:
    """Rows for :func:`benchmarks.results.record`."""
    rows = []
    for s in summary:
        metrics: list[tuple[str, float | None]] = [
            ("step_time_ms", s["median_ms"]),
            ("step_time_ratio", s["ratio_nn_lstm"]),
            ("step_time_ratio_snntorch", s["ratio_snntorch_slstm"]),
            ("compile_s", s["compile_s"]),
        ]
        for metric, value in metrics:
            if value is None:
                continue
            rows.append(
                {
                    "task": task,
                    "model": s["model"],
                    "method": "step-time",
                    "timesteps": s["timesteps"],
                    "metric": metric,
                    "value": value,
                    "seeds": 1,
                    "command": command,
                }
            )
    return rows


def _variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"variants must be a comma list of {', '.join(VARIANTS)}; got {text!r}")
    return list(dict.fromkeys(names))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults = the required setting)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch", type=int, default=128, help="batch size")
    p.add_argument("--seq", type=int, default=28, help="sequence length N")
    p.add_argument("--input", type=int, default=28, help="features per element")
    p.add_argument("--hidden", type=int, default=128, help="hidden size H")
    p.add_argument("--classes", type=int, default=10, help="outputs of the Linear head")
    p.add_argument("--timesteps", type=int, nargs="*", default=[1, 2, 4, 8], help="SNN time steps T to time (none: only the non-spiking models)")
    p.add_argument("--cell", choices=("lstm", "modified", "baseline"), default="lstm", help="cell of our non-spiking rows")
    p.add_argument("--clamp-c", action="store_true", help="clamp c to [-1, 1] in our non-spiking rows (Ponghiran & Roy's seq-MNIST setting)")
    p.add_argument("--lsnn", action="store_true", help="also time our LSNN layer (fused and eager) and snnTorch's RLeaky, H neurons")
    p.add_argument("--variants", type=_variants, default=None, help=f"comma list of {','.join(VARIANTS)} (default {','.join(DEFAULT_VARIANTS)})")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only the compiled variants (--compile: fused-compiled, compiled) or only the uncompiled ones "
        "(--no-compile: fused, eager); default fused, eager",
    )
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model (compilation happens here)")
    p.add_argument("--repeats", type=int, default=20, help="timed round-robin rounds")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads, also for the compiled kernels (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", default="mnist-row", help="task column of the recorded rows")
    p.add_argument("--out-csv", default=str(DEFAULT_PATH), help="results CSV to upsert into ('' = do not record)")
    p.add_argument("--out-json", default=None, help="also write everything (all step times) as JSON here")
    args = p.parse_args(argv)
    if args.compile is not None and args.variants is not None:
        p.error("give either --compile/--no-compile or --variants, not both")
    if args.variants is None:
        if args.compile is None:
            args.variants = list(DEFAULT_VARIANTS)
        else:
            args.variants = ["fused-compiled", "compiled"] if args.compile else ["fused", "eager"]
    for name in ("batch", "seq", "input", "hidden", "classes", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be >= 1, got {value}")
    if args.warmup < 1:
        p.error("--warmup must be >= 1 (the first step compiles and allocates)")
    if any(t < 1 for t in args.timesteps):
        p.error(f"--timesteps must all be >= 1, got {args.timesteps}")
    args.timesteps = list(dict.fromkeys(args.timesteps))
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, record the rows.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        Everything measured: ``config``, ``machine``, ``command``, ``models`` (see :func:`summarize`),
        ``floor`` (variant -> T=2 within 4x nn.LSTM) and the recorded ``rows``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        if {"fused-compiled", "compiled", "full"} & set(args.variants):
            import torch._inductor.config as inductor_config

            # inductor bakes its OpenMP thread count into the generated kernels; keep it equal
            inductor_config.cpp.threads = args.threads
    command = command_line(argv, script=__file__)
    machine = machine_description()
    print(f"# {command}\n# {machine}")
    print(
        f"# batch {args.batch}, {args.seq} steps x {args.input} inputs, H={args.hidden}, "
        f"T={args.timesteps}, variants={args.variants}, warm-up {args.warmup}, repeats {args.repeats}",
        flush=True,
    )
    benches = build(args)
    run(benches, args.warmup, args.repeats, log=lambda s: print(s, flush=True))
    summary = summarize(benches)
    print(format_table(summary))
    floor = floor_checks(summary)
    for variant, ok in floor.items():
        print(f"floor (T={FLOOR_T} step <= {FLOOR_RATIO:g}x nn.LSTM), {variant}: {'PASS' if ok else 'FAIL'}")
    rows = result_rows(summary, args.task, command)
    if args.out_csv:
        path = record(rows, args.out_csv)
        print(f"recorded {len(rows)} rows in {path}")
    result = {
        "config": {k: v for k, v in vars(args).items()},
        "machine": machine,
        "command": command,
        "models": summary,
        "floor": floor,
        "rows": rows,
    }
    if args.out_json:
        out = Path(args.out_json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
