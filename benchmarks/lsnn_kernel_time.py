"""Time the fused LSNN layer's kernels at the sequential-MNIST shape (issue 20, "Event-driven LSNN").

Shape (the defaults): batch 128, 840 steps, 80 binary inputs of density 0.05 (the threshold-crossing
encoder's output), 240 neurons (140 LIF, 60 of them inhibitory, 100 AHP), Dale's law, as
``LSNN(80, n_lif=140, n_ahp=100, n_inhibitory=60, sign_constraints=True, beta=180.0,
recurrent_gain=0.3, backend="cpp")``. Paths timed, one after the other in each round (rotating start,
so background load hits them alike), ``--repeats`` rounds:

* ``time-major``: the previous layer path: ``linear(x^T, W_in, b)`` then ``fused_lsnn_layer`` (the
  time-major kernel, two parallel regions per step, dense dW_in through autograd);
* ``rows-events``: ``fused_lsnn_sequence`` with the event input path (the layer's path for binary x);
* ``rows-dense``: ``fused_lsnn_sequence`` with the dense input product (the layer's path for analog x).

Each is timed for the forward (under autograd, what training pays), the backward of a loss with a
dense gradient on every spike (``(z * g).sum()`` plus the final membranes), and the full step
(forward + backward). Layer statistics (``LSNN._stats``) are the same for every path and not timed.
Before timing, the paths' spikes and gradients are compared (the rows paths against the time-major
one). Prints min / median / max in ms and the median speed-ups.

Run from the repository root::

    python benchmarks/lsnn_kernel_time.py                   # 2 threads, 7 rounds
    python benchmarks/lsnn_kernel_time.py --threads 1 --repeats 11
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from snnlstm.backends.fused_lsnn import fused_lsnn_layer, fused_lsnn_sequence
from snnlstm.nn.lsnn import LSNN


def _paths(layer: LSNN) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    def inputs(x: torch.Tensor):
        z0 = x.new_zeros(x.shape[0], layer.hidden_size)
        theta, alpha, rho, w = layer._neuron_params(x)
        return z0, layer.recurrent_weight().t(), theta, alpha, rho, w

    def time_major(x: torch.Tensor):
        z0, w_rec_t, theta, alpha, rho, w = inputs(x)
        cur = torch.nn.functional.linear(x.transpose(0, 1).contiguous(), layer.weight_ih, layer.bias)
        z, v, a, _ = fused_lsnn_layer(cur, w_rec_t, z0, z0, z0, z0, theta, alpha, rho, w, layer.ahp.gamma, layer.ahp.refractory)
        return z.transpose(0, 1), v, a

    def rows(events: bool):
        def run(x: torch.Tensor):
            z0, w_rec_t, theta, alpha, rho, w = inputs(x)
            z, v, a, _ = fused_lsnn_sequence(
                x, layer.weight_ih, layer.bias, w_rec_t, z0, z0, z0, z0, theta, alpha, rho, w, layer.ahp.gamma,
                layer.ahp.refractory, events=events,
            )
            return z, v, a

        return run

    return {"time-major": time_major, "rows-events": rows(True), "rows-dense": rows(False)}


def _loss(out, g: torch.Tensor) -> torch.Tensor:
    z, v, a = out
    return (z * g).sum() + 0.1 * v.sum() + 0.1 * a.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=840)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--paths", nargs="+", default=["time-major", "rows-events", "rows-dense"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layer = LSNN(80, n_lif=140, n_ahp=100, n_inhibitory=60, sign_constraints=True, beta=180.0, recurrent_gain=0.3, backend="cpp")
    x = (torch.rand(args.batch, args.steps, 80) < args.density).float()
    g = torch.randn(args.batch, args.steps, layer.hidden_size) * 0.01
    paths = {name: fn for name, fn in _paths(layer).items() if name in args.paths}
    params = [p for p in layer.parameters() if p.requires_grad]

    # agreement (and warm-up: the kernels build on first use)
    reference = None
    for name, fn in paths.items():
        layer.zero_grad(set_to_none=True)
        out = fn(x)
        _loss(out, g).backward()
        grads = [p.grad.clone() if p.grad is not None else None for p in params]
        if reference is None:
            reference = (name, out[0].detach(), grads)
            print(f"{name}: rate {out[0].mean().item():.4f} spikes / neuron / step")
            continue
        flips = int((out[0] != reference[1]).sum())
        worst = max(
            float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) for a, b in zip(grads, reference[2]) if b is not None
        )
        print(f"{name} vs {reference[0]}: spike differences {flips}, max relative gradient difference {worst:.2e}")

    times: dict[str, dict[str, list[float]]] = {n: {"fwd": [], "bwd": [], "step": []} for n in paths}
    names = list(paths)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            layer.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            out = paths[name](x)
            t1 = time.perf_counter()
            _loss(out, g).backward()
            t2 = time.perf_counter()
            times[name]["fwd"].append(1e3 * (t1 - t0))
            times[name]["bwd"].append(1e3 * (t2 - t1))
            times[name]["step"].append(1e3 * (t2 - t0))
    print(f"\nbatch {args.batch}, {args.steps} steps, 80 inputs (density {args.density}), 240 neurons, "
          f"{args.threads} threads, {args.repeats} rounds: ms min / median / max")
    for name in names:
        row = "  ".join(
            f"{part} {min(v):7.1f} / {statistics.median(v):7.1f} / {max(v):7.1f}" for part, v in times[name].items()
        )
        print(f"{name:12s} {row}")
    if "time-major" in times:
        base = times["time-major"]
        for name in names:
            if name != "time-major":
                ratio = "  ".join(
                    f"{part} x{statistics.median(base[part]) / statistics.median(v):.2f}" for part, v in times[name].items()
                )
                print(f"speed-up {name} over time-major (medians): {ratio}")


if __name__ == "__main__":
    main()
