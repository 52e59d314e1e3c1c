"""Training-step (and inference) time on the CPU: our spiking LSTM against ``torch.nn.LSTM``,
snnTorch's ``SLSTM`` and SpikingJelly's ``SpikingLSTM``.

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
  backward), ``fused-compiled``, and the autograd pipelined schedule ``eager``, ``compiled``, ``full``;
* the other frameworks' spiking LSTMs at the same T (``--peers``, default both): ``snntorch-slstm{H}-T{T}``
  (the projection and ``SLSTM`` over the T*N sequence of every element repeated T times) and
  ``spikingjelly-lstm{H}-T{T}`` (SpikingJelly 2.0's ``activation_based.rnn.SpikingLSTM`` over the same
  T*N sequence; the ``bench`` extra installs it).

With ``--inference`` every model is also timed without gradients (``eval()``, ``torch.no_grad()``,
forward only), with ratios to nn.LSTM's forward.

After warm-up steps (where ``torch.compile`` compiles and the C++ kernels build; reported
separately) the models are timed
round-robin, one step each per round with a rotating start, so background load hits all of them
alike; the median over ``--repeats`` rounds is reported with ratios to nn.LSTM and to SLSTM.
The floors of issue 20 are checked and printed (:data:`TRAIN_FLOORS`, :data:`INFER_FLOORS`,
:data:`PEER_FLOORS`).

Run from the repository root::

    python benchmarks/step_time.py                      # fused and eager, T = 1 2 4 8
    python benchmarks/step_time.py --variants fused --timesteps 2 --repeats 10
    python benchmarks/step_time.py --variants fused --timesteps 1 2 4 --inference --threads 2
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
#: other frameworks' spiking LSTMs timed at each T (``--peers``)
PEERS: tuple[str, ...] = ("snntorch", "spikingjelly")
#: T -> our training step at most this many times nn.LSTM's (issue 20)
TRAIN_FLOORS: dict[int, float] = {1: 1.4, 2: 2.2, 4: 4.0}
#: T -> our no-grad forward at most this many times nn.LSTM's forward
INFER_FLOORS: dict[int, float] = {2: 2.0}
#: (peer, T) -> our training step at least this many times faster than the peer's
PEER_FLOORS: dict[tuple[str, int], float] = {("spikingjelly", 2): 1.8, ("snntorch", 2): 2.5}


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

    def __init__(self, input_size: int, hidden_size: int, timesteps: int = 1) -> None:
        super().__init__()
        import snntorch

        self.proj = nn.Linear(input_size, hidden_size)
        self.slstm = snntorch.SLSTM(hidden_size, hidden_size)
        self.timesteps = timesteps

    def forward(self, x: Tensor) -> Tensor:
        syn, mem = self.slstm.reset_mem()
        spk = None
        for x_t in self.proj(x).repeat_interleave(self.timesteps, dim=1).unbind(1):  # every element T times
            spk, syn, mem = self.slstm(x_t, syn, mem)
        assert spk is not None
        return spk


class SpikingJellyLSTM(nn.Module):
    """SpikingJelly 2.0's ``SpikingLSTM`` (spiking gates, erf surrogate) over the sequence of every element
    repeated ``timesteps`` times. Returns the last step's output spikes ``[B, H]``."""

    def __init__(self, input_size: int, hidden_size: int, timesteps: int = 1) -> None:
        super().__init__()
        try:
            from spikingjelly.activation_based import rnn
        except ImportError as err:
            raise SystemExit(
                "SpikingJelly is not installed: `pip install -e .[bench]` (or spikingjelly), or leave it out "
                "with --peers snntorch"
            ) from err
        self.lstm = rnn.SpikingLSTM(input_size, hidden_size, 1)
        self.timesteps = timesteps

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x.transpose(0, 1).repeat_interleave(self.timesteps, dim=0))  # [T*N, B, F], time-major
        return out[-1]


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
    infer: Callable[[], float] | None = field(default=None, repr=False)
    infer_times_s: list[float] = field(default_factory=list)

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


def make_infer(model: nn.Module, head: nn.Module, x: Tensor) -> Callable[[], float]:
    """A closure that runs one no-grad forward (model in eval mode) and returns its wall time in seconds."""

    def infer() -> float:
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            head(model(x))
        elapsed = time.perf_counter() - start
        model.train(was_training)
        return elapsed

    return infer


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
    for peer in args.peers:
        for t in args.timesteps:
            if peer == "snntorch":
                specs.append((f"snntorch-slstm{h}-T{t}", "peer-snntorch", t, "eager", lambda t=t: SnnTorchSLSTM(args.input, h, t)))
            else:
                specs.append((f"spikingjelly-lstm{h}-T{t}", "peer-spikingjelly", t, "eager", lambda t=t: SpikingJellyLSTM(args.input, h, t)))
    benches = []
    for name, kind, t, variant, factory in specs:
        torch.manual_seed(args.seed)
        model = factory()
        head = nn.Linear(h, args.classes)
        infer = make_infer(model, head, x) if args.inference else None
        benches.append(Bench(name, kind, t, variant, make_step(model, head, x, y), infer=infer))
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
    inferring = [b for b in benches if b.infer is not None]
    for bench in inferring:
        bench.infer()  # type: ignore[misc]  # warm-up
    for r in range(repeats):
        shift = r % max(1, len(inferring))
        for bench in inferring[shift:] + inferring[:shift]:
            bench.infer_times_s.append(bench.infer())  # type: ignore[misc]


def summarize(benches: list[Bench]) -> list[dict[str, Any]]:
    """Per model: median ms, ratios to nn.LSTM and to snnTorch SLSTM, compile estimate."""
    ref = {b.kind: b.median_ms for b in benches if b.kind in ("nn-lstm", "snntorch-slstm")}
    infer_ref = next((b for b in benches if b.kind == "nn-lstm" and b.infer_times_s), None)
    out = []
    for b in benches:
        row: dict[str, Any] = {
            "model": b.name,
            "kind": b.kind,
            "timesteps": b.timesteps,
            "variant": b.variant,
            "median_ms": b.median_ms,
            "ratio_nn_lstm": b.median_ms / ref["nn-lstm"],
            "ratio_snntorch_slstm": b.median_ms / ref["snntorch-slstm"],
            "compile_s": b.compile_s,
            "warmup_s": b.warmup_s,
            "times_ms": [1000.0 * s for s in b.times_s],
        }
        if b.infer_times_s and infer_ref is not None:
            row["infer_ms"] = 1000.0 * statistics.median(b.infer_times_s)
            row["infer_ratio_nn_lstm"] = row["infer_ms"] / (1000.0 * statistics.median(infer_ref.infer_times_s))
        out.append(row)
    return out


def format_table(summary: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`summarize`'s rows."""
    infer = any("infer_ms" in s for s in summary)
    header = f"{'model':<26} {'T':>3} {'median ms':>10} {'x nn.LSTM':>10} {'x SLSTM':>9} {'compile s':>10}"
    header += f" {'infer ms':>9} {'x fwd':>6}" if infer else ""
    lines = [header, "-" * len(header)]
    for s in summary:
        t = "-" if s["timesteps"] is None else str(s["timesteps"])
        comp = "-" if s["compile_s"] is None else f"{s['compile_s']:.1f}"
        line = (
            f"{s['model']:<26} {t:>3} {s['median_ms']:>10.1f} {s['ratio_nn_lstm']:>10.2f} "
            f"{s['ratio_snntorch_slstm']:>9.2f} {comp:>10}"
        )
        if "infer_ms" in s:
            line += f" {s['infer_ms']:>9.2f} {s['infer_ratio_nn_lstm']:>6.2f}"
        lines.append(line)
    return "\n".join(lines)


def floor_checks(summary: list[dict[str, Any]]) -> dict[str, bool]:
    """The issue's floors that this run measured, each named, -> whether it holds.

    Training step of each variant at each T of :data:`TRAIN_FLOORS` against nn.LSTM; no-grad forward
    (``--inference``) at each T of :data:`INFER_FLOORS`; how many times faster than each peer
    (:data:`PEER_FLOORS`) our variant's training step is.
    """
    ours = [s for s in summary if s["kind"] == "ours-snn"]
    peers = {(s["kind"].removeprefix("peer-"), s["timesteps"]): s for s in summary if s["kind"].startswith("peer-")}
    checks: dict[str, bool] = {}
    for s in ours:
        t, v = s["timesteps"], s["variant"]
        if t in TRAIN_FLOORS:
            checks[f"{v}: training step T={t} <= {TRAIN_FLOORS[t]:g}x nn.LSTM"] = s["ratio_nn_lstm"] <= TRAIN_FLOORS[t]
        if t in INFER_FLOORS and "infer_ratio_nn_lstm" in s:
            checks[f"{v}: no-grad forward T={t} <= {INFER_FLOORS[t]:g}x nn.LSTM's"] = s["infer_ratio_nn_lstm"] <= INFER_FLOORS[t]
        for (peer, peer_t), factor in PEER_FLOORS.items():
            if peer_t == t and (peer, t) in peers:
                speedup = peers[(peer, t)]["median_ms"] / s["median_ms"]
                checks[f"{v}: training step T={t} >= {factor:g}x faster than {peer} ({speedup:.2f}x)"] = speedup >= factor
    return checks


def result_rows(summary: list[dict[str, Any]], task: str, command: str) -> list[dict[str, Any]]:
    """Rows for :func:`benchmarks.results.record`."""
    rows = []
    for s in summary:
        metrics: list[tuple[str, float | None]] = [
            ("step_time_ms", s["median_ms"]),
            ("step_time_ratio", s["ratio_nn_lstm"]),
            ("step_time_ratio_snntorch", s["ratio_snntorch_slstm"]),
            ("compile_s", s["compile_s"]),
            ("infer_time_ms", s.get("infer_ms")),
            ("infer_time_ratio", s.get("infer_ratio_nn_lstm")),
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


def _peers(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip() and v.strip() != "none"]
    bad = [v for v in names if v not in PEERS]
    if bad:
        raise argparse.ArgumentTypeError(f"peers must be a comma list of {', '.join(PEERS)} or 'none'; got {text!r}")
    return list(dict.fromkeys(names))


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
    p.add_argument("--peers", type=_peers, default=list(PEERS), help=f"comma list of {','.join(PEERS)} timed at each T, or 'none'")
    p.add_argument("--inference", action="store_true", help="also time a no-grad forward of every model (ratios to nn.LSTM's forward)")
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
        ``floor`` (each measured floor of the issue, named -> whether it holds) and the recorded ``rows``.
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
        f"T={args.timesteps}, variants={args.variants}, peers={args.peers}, warm-up {args.warmup}, repeats {args.repeats}",
        flush=True,
    )
    benches = build(args)
    run(benches, args.warmup, args.repeats, log=lambda s: print(s, flush=True))
    summary = summarize(benches)
    print(format_table(summary))
    floor = floor_checks(summary)
    for name, ok in floor.items():
        print(f"floor {name}: {'PASS' if ok else 'FAIL'}")
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
