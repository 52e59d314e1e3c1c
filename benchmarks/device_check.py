"""Every torch backend on a CUDA device against the CPU reference, and the training step against cuDNN
(issue 20, "GPU-ready").

1. **Agreement** (:func:`check_backends`): each device-agnostic torch kernel of
   :class:`~snnlstm.nn.lstm.SpikingLSTM` (``torch-native``, ``torch-eager``, ``torch-fused``,
   ``torch-pipelined``, ``torch-sequential``, ``torch-dense``) and of :class:`~snnlstm.nn.lsnn.LSNN`
   (``torch-eager``) runs on the device and is compared with the CPU, from the same weights: with the
   same settings on the CPU (tight tolerances: the device must not change the result) and with the
   model's CPU reference (the sequential T*N loop in SNN mode, the eager loop in ANN mode; looser, see
   :data:`TOLERANCES`): outputs, final states (and per-step states), spike and operation counts, and the
   gradients of the input and of every parameter, in float64 by default (spike decisions then agree; in
   float32 the different summation orders of the device's and the CPU's matrix products may flip a
   spike that sits on its threshold), with and without padding ``lengths``. On CUDA each forward is also run under
   ``torch.cuda.set_sync_debug_mode("error")``: a host synchronisation in it fails the check.
2. **Training step** (:func:`time_training`): forward, cross-entropy through a ``Linear(H, 10)`` head,
   backward and Adam step (:func:`benchmarks.step_time.make_step`), batch 128, 28 x 28 sequences, H=128:
   ``nn.LSTM`` (cuDNN) against our layer in ANN mode (standard activations: torch's own kernel, cuDNN
   too; hard activations: the eager loop) and in SNN mode at T = 1, 2, 4 (``backend="torch"``, fused
   schedule), timed round-robin with a device synchronisation around every step; the median and the ratio
   to ``nn.LSTM`` are printed with the device's name.

Without a CUDA device the script prints that it needs one and exits with status 0 (nothing was checked,
nothing failed: the same as the CUDA tests, which skip), or 2 with ``--require-cuda``. ``--device cpu``
runs both parts on the CPU (the agreement then compares the CPU kernels with the CPU reference). A
failed agreement check exits with status 1. Nothing is recorded in ``results.csv``: no GPU number is
claimed until one has been measured (``--json`` saves the report).

Run from the repository root::

    python benchmarks/device_check.py                          # agreement and timing on cuda
    python benchmarks/device_check.py --skip-timing --dtype float32
    python benchmarks/device_check.py --timesteps 1 2 4 --repeats 50 --json out/device_check.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor, nn

from benchmarks.results import command_line, machine_description
from benchmarks.step_time import OurLSTM, TorchLSTM, make_step
from snnlstm.nn.lsnn import LSNN, LSNNOutput
from snnlstm.nn.lstm import SpikingLSTM
from snnlstm.nn.outputs import LSTMOutput

#: exit status without a CUDA device when ``--require-cuda`` is given
NO_CUDA_STATUS = 2
NO_CUDA_MESSAGE = (
    "device_check: no CUDA device (torch.cuda.is_available() is False), nothing was checked or timed; "
    "run it on a machine with a CUDA GPU (or pass --device cpu for the CPU-only smoke run)"
)

#: name -> (module, settings on the device, settings of the CPU reference); backend="torch" everywhere
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "ann-native": ("lstm", dict(mode="ann", activation="standard"), dict(schedule="pipelined")),
    "ann-eager": ("lstm", dict(mode="ann", activation="hard"), dict(schedule="pipelined")),
    "ann-eager-modified-clampc": ("lstm", dict(mode="ann", cell="modified", clamp_c=True), dict(schedule="pipelined")),
    "snn-fused": ("lstm", dict(mode="snn", schedule="fused"), dict(schedule="sequential")),
    "snn-fused-all-gates-leaky": (
        "lstm",
        dict(mode="snn", schedule="fused", spiking_gates=("i", "f", "g", "o", "tanh_c"), leak=0.9),
        dict(schedule="sequential"),
    ),
    "snn-fused-standard": ("lstm", dict(mode="snn", schedule="fused", activation="standard"), dict(schedule="sequential")),
    "snn-pipelined": ("lstm", dict(mode="snn", schedule="pipelined"), dict(schedule="sequential")),
    "snn-pipelined-T1": ("lstm", dict(mode="snn", schedule="pipelined", timesteps=1), dict(schedule="sequential")),
    "snn-pipelined-clampc": ("lstm", dict(mode="snn", schedule="pipelined", clamp_c=True), dict(schedule="sequential")),
    "snn-sequential": ("lstm", dict(mode="snn", schedule="sequential"), dict()),
    "hybrid-dense": ("lstm", dict(mode="hybrid", cell="modified", timesteps=4), dict()),
    "lsnn-eager": ("lsnn", dict(schedule="eager"), dict()),
}
#: cases with ``compile="step"`` (``--compile``; compilation takes a while per case)
COMPILED_CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "snn-fused-step-compiled": ("lstm", dict(mode="snn", schedule="fused", compile="step"), dict(schedule="sequential")),
    "snn-pipelined-step-compiled": ("lstm", dict(mode="snn", schedule="pipelined", compile="step"), dict(schedule="sequential")),
}


class CheckResult(NamedTuple):
    """One agreement check: a case, with or without lengths, and what differed (empty: all agreed)."""

    case: str
    lengths: bool
    kernel: str
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def make_module(kind: str, settings: dict[str, Any], sizes: dict[str, int], seed: int) -> nn.Module:
    """A :class:`SpikingLSTM` (``kind="lstm"``) or :class:`LSNN` (``"lsnn"``) on the CPU, ``backend="torch"``."""
    torch.manual_seed(seed)
    if kind == "lsnn":
        half = sizes["hidden"] // 2
        return LSNN(sizes["features"], n_lif=sizes["hidden"] - half, n_ahp=half, backend="torch", **settings)
    return SpikingLSTM(sizes["features"], sizes["hidden"], num_layers=sizes["layers"], backend="torch",
                       **{"timesteps": 2, **settings})  # fmt: skip


def collect(module: nn.Module, x: Tensor, lengths: Tensor | None, weights: Tensor | None) -> dict[str, Tensor]:
    """Everything one forward (and, with ``weights``, backward) produces, as CPU float64 tensors.

    Args:
        module: a :class:`SpikingLSTM` or :class:`LSNN`.
        x: input ``[B, N, F]`` on the module's device.
        lengths: optional padding lengths (SpikingLSTM only).
        weights: the loss is ``sum(output * weights) + sum(final c)``; None: forward only, no gradients.

    Returns:
        name -> tensor: ``output``, the states, per-layer spike counts and operations, and with
        ``weights`` the gradients of ``x`` (``grad.x``) and of every parameter (``grad.NAME``).
    """
    module.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(weights is not None)
    with torch.set_grad_enabled(weights is not None):
        out = module(x) if isinstance(module, LSNN) else module(x, lengths=lengths)
    got: dict[str, Tensor] = {"output": out.output}
    if isinstance(out, LSTMOutput):
        got.update({"state.h": out.state.h, "state.c": out.state.c})
        if out.step_state is not None:
            got.update({"step_state.h": out.step_state.h, "step_state.c": out.step_state.c})
        last = out.state.c
    else:
        assert isinstance(out, LSNNOutput)
        got["state.spikes"] = out.state.spikes
        got.update({f"state.neurons.{i}": t for i, t in enumerate(out.state.neurons)})
        last = out.state.neurons[0]
    for k, layer in enumerate(out.stats):
        got.update({f"stats{k}.spikes.{g}": t for g, t in layer.spikes.items()})
        got.update({f"stats{k}.ac": layer.ac, f"stats{k}.mac": layer.mac})
    if weights is not None:
        (torch.sum(out.output * weights) + last.sum()).backward()
        got["grad.x"] = x.grad
        got.update({f"grad.{n}": p.grad for n, p in module.named_parameters() if p.grad is not None})
    return {name: t.detach().to("cpu", torch.float64) for name, t in got.items()}


def compare(got: dict[str, Tensor], ref: dict[str, Tensor], atol: float, rtol: float) -> list[str]:
    """What differs between two :func:`collect` results (empty when everything agrees).

    Returns:
        One line per missing or extra name, shape difference, or value outside ``atol + rtol * |ref|``
        (with the largest absolute difference).
    """
    problems = [f"{name}: missing on the device" for name in ref if name not in got]
    problems += [f"{name}: not in the reference" for name in got if name not in ref]
    for name in ref.keys() & got.keys():
        a, b = got[name], ref[name]
        if a.shape != b.shape:
            problems.append(f"{name}: shape {tuple(a.shape)} vs reference {tuple(b.shape)}")
        elif not torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=False):
            diff = (a - b).abs().nan_to_num(float("inf")).max().item()
            problems.append(f"{name}: max |diff| {diff:.3g} (atol {atol:g}, rtol {rtol:g})")
    return sorted(problems)


def _forward_without_sync(module: nn.Module, x: Tensor, lengths: Tensor | None) -> str | None:
    """Run one forward under ``torch.cuda.set_sync_debug_mode("error")``; the error text, or None."""
    with torch.no_grad():
        module(x) if isinstance(module, LSNN) else module(x, lengths=lengths)  # warm-up (lazy initialisation)
        torch.cuda.synchronize(x.device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            module(x) if isinstance(module, LSNN) else module(x, lengths=lengths)
        except RuntimeError as err:
            return f"host synchronisation in the forward: {str(err).splitlines()[0]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return None


#: dtype -> (atol, rtol) against the same kernel on the CPU, and against the model's reference schedule
#: (looser: the fused wavefront's hand-written backward agrees with autograd to a few 1e-6, relative, in
#: float64; the autograd schedules to 1e-14)
TOLERANCES: dict[torch.dtype, tuple[tuple[float, float], tuple[float, float]]] = {
    torch.float64: ((1e-8, 1e-6), (1e-6, 1e-4)),
    torch.float32: ((1e-4, 1e-3), (1e-3, 1e-2)),
}


def check_backends(
    device: torch.device,
    dtype: torch.dtype = torch.float64,
    cases: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] | None = None,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[CheckResult]:
    """Compare every case on ``device`` with the CPU (see the module docstring).

    Each case is compared with the same settings on the CPU (tolerances ``TOLERANCES[dtype][0]``: the
    device must not change the result) and, where the case names one, with the model's CPU reference
    schedule (``TOLERANCES[dtype][1]``; mismatches are prefixed ``"reference: "``).

    Args:
        device: where the checked kernels run (``cuda``; ``cpu`` checks the CPU kernels).
        dtype: float64 (default) or float32, on both sides.
        cases: :data:`CASES` by default.
        sizes: ``batch``, ``steps``, ``features``, ``hidden``, ``layers`` (small defaults).
        seed: weights, inputs and the loss weights.
        log: where one line per check goes.

    Returns:
        One :class:`CheckResult` per case and lengths setting.
    """
    if dtype not in TOLERANCES:
        raise ValueError(f"check_backends compares float64 or float32 runs, got {dtype}")
    sizes = {"batch": 3, "steps": 5, "features": 4, "hidden": 6, "layers": 2, **(sizes or {})}
    same_tol, model_tol = TOLERANCES[dtype]
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(sizes["batch"], sizes["steps"], sizes["features"], generator=gen, dtype=dtype) * 2 - 0.5
    lengths = torch.randint(1, sizes["steps"] + 1, (sizes["batch"],), generator=gen)
    lengths[0] = sizes["steps"]
    results = []
    for name, (kind, settings, ref_settings) in (CASES if cases is None else cases).items():
        module = make_module(kind, settings, sizes, seed).to(device, dtype)
        eager = {k: v for k, v in settings.items() if k != "compile"}  # the references run uncompiled
        references = [("", make_module(kind, eager, sizes, seed).to(dtype), same_tol)]
        if ref_settings:
            model_ref = make_module(kind, {**eager, **ref_settings}, sizes, seed).to(dtype)
            references.append(("reference: ", model_ref, model_tol))
        for _, ref, _ in references:
            ref.load_state_dict(module.state_dict())
        trains = not (kind == "lstm" and settings.get("mode") == "hybrid")  # the hybrid cell is evaluation only
        for with_lengths in ((False, True) if kind == "lstm" else (False,)):
            lens = lengths if with_lengths else None
            weights = torch.randn(sizes["batch"], sizes["steps"], sizes["hidden"], generator=gen, dtype=dtype) if trains else None
            got = collect(module, x.to(device), lens, None if weights is None else weights.to(device))
            problems = []
            for prefix, ref, (atol, rtol) in references:
                problems += [prefix + p for p in compare(got, collect(ref, x, lens, weights), atol, rtol)]
            if device.type == "cuda":
                sync = _forward_without_sync(module, x.to(device), lens)
                problems += [sync] if sync else []
            kernel = module.kernel  # type: ignore[attr-defined]
            results.append(CheckResult(name, with_lengths, kernel, problems))
            status = "ok" if not problems else "FAIL: " + "; ".join(problems[:4]) + (" ..." if len(problems) > 4 else "")
            log(f"{name:<30} {kernel:<17} lengths={'yes' if with_lengths else 'no ':<4} {len(got):>3} tensors  {status}")
    return results


class Timing(NamedTuple):
    """Median training step of one model and its ratio to ``nn.LSTM``'s."""

    model: str
    timesteps: int | None
    median_ms: float
    ratio_nn_lstm: float
    times_ms: list[float]


def _synced(step: Callable[[], float], device: torch.device) -> Callable[[], float]:
    """``step`` timed from an idle device until the device has finished it (seconds)."""

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return run


def time_training(
    device: torch.device,
    timesteps: Sequence[int] = (1, 2, 4),
    batch: int = 128,
    steps: int = 28,
    features: int = 28,
    hidden: int = 128,
    classes: int = 10,
    warmup: int = 3,
    repeats: int = 20,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[Timing]:
    """Training steps of ``nn.LSTM`` (cuDNN on CUDA), our ANN layer and our SNN layer at each T on ``device``.

    Models (each with its own ``Linear(H, classes)`` head and Adam): ``nn-lstm``; ``ann-standard``
    (torch's LSTM kernel); ``ann-hard`` (the eager loop); ``snn-T{T}`` (fused schedule). All
    ``backend="torch"``. After ``warmup`` steps each, ``repeats`` rounds of one step per model,
    round-robin with a rotating start.

    Returns:
        One :class:`Timing` per model, ``nn-lstm`` first.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, steps, features, generator=gen).to(device)
    y = torch.randint(0, classes, (batch,), generator=gen).to(device)
    specs: list[tuple[str, int | None, Callable[[], nn.Module]]] = [
        ("nn-lstm", None, lambda: TorchLSTM(features, hidden)),
        ("ann-standard", None, lambda: OurLSTM(features, hidden, mode="ann", activation="standard", backend="torch")),
        ("ann-hard", None, lambda: OurLSTM(features, hidden, mode="ann", activation="hard", backend="torch")),
    ]
    for t in timesteps:
        specs.append((f"snn-T{t}", t, lambda t=t: OurLSTM(features, hidden, mode="snn", timesteps=t, backend="torch")))
    models: list[tuple[str, int | None, Callable[[], float]]] = []
    for name, t, factory in specs:
        torch.manual_seed(seed)
        model, head = factory().to(device), nn.Linear(hidden, classes).to(device)
        models.append((name, t, _synced(make_step(model, head, x, y), device)))
    for name, _, step in models:
        first = [step() for _ in range(warmup)]
        log(f"warm-up {name}: {', '.join(f'{s:.3f}' for s in first)} s")
    times: dict[str, list[float]] = {name: [] for name, _, _ in models}
    for r in range(repeats):
        shift = r % len(models)
        for name, _, step in models[shift:] + models[:shift]:
            times[name].append(1000.0 * step())
    reference = statistics.median(times["nn-lstm"])
    return [Timing(name, t, statistics.median(times[name]), statistics.median(times[name]) / reference, times[name])
            for name, t, _ in models]  # fmt: skip


def device_name(device: torch.device) -> str:
    """The GPU's name (CUDA) or the CPU's description."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return machine_description()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; returns the exit status (0 all agreed or no CUDA device, 1 a check failed, 2 no
    CUDA device with ``--require-cuda``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="where to run the checked kernels (default cuda)")
    parser.add_argument("--require-cuda", action="store_true", help=f"exit with status {NO_CUDA_STATUS} without a CUDA device")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype of the agreement checks")
    parser.add_argument("--compile", action="store_true", help="also check compile='step' (slow: compiles per case)")
    parser.add_argument("--skip-checks", action="store_true", help="only time the training step")
    parser.add_argument("--skip-timing", action="store_true", help="only run the agreement checks")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seq", type=int, default=28)
    parser.add_argument("--input", type=int, default=28)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the report here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA_MESSAGE)
        return NO_CUDA_STATUS if args.require_cuda else 0
    print(f"device: {device_name(device)}")
    report: dict[str, Any] = {"device": device_name(device), "command": command_line()}
    failed = False
    if not args.skip_checks:
        cases = {**CASES, **(COMPILED_CASES if args.compile else {})}
        results = check_backends(device, getattr(torch, args.dtype), cases, seed=args.seed)
        failed = not all(r.ok for r in results)
        print(f"agreement with the CPU reference: {sum(r.ok for r in results)}/{len(results)} checks passed")
        report["checks"] = [r._asdict() for r in results]
    if not args.skip_timing:
        timings = time_training(device, args.timesteps, args.batch, args.seq, args.input, args.hidden,
                                warmup=args.warmup, repeats=args.repeats, seed=args.seed)  # fmt: skip
        print(f"training step, batch {args.batch}, {args.seq} x {args.input}, H={args.hidden}, on {device_name(device)}:")
        print(f"{'model':<14} {'median ms':>10} {'x nn.LSTM':>10}")
        for t in timings:
            print(f"{t.model:<14} {t.median_ms:>10.2f} {t.ratio_nn_lstm:>10.2f}")
        report["timings"] = [t._asdict() for t in timings]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
