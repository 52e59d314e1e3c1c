"""Sequential MNIST results of Ponghiran & Roy's hybrid analog-spiking LSTM, next to Datta et al.'s conversion.

Evaluates checkpoints trained with ``configs/ponghiran_row.yaml`` (or ``ponghiran_pixel.yaml``) on the
MNIST test set (``../shared/data``) and records the numbers in ``benchmarks/results.csv``:

* ``ann``: the non-spiking ModifiedLSTMCell (``--ckpt``) and BaselineLSTMCell (``--baseline-ckpt``);
* ``hybrid``: the modified checkpoint run as the hybrid cell at every ``--timesteps`` T (Ponghiran & Roy's
  test-time ``--n-timestep``; T*N time steps per sequence);
* ``datta-convert``: the same checkpoint converted with Datta et al.'s method, no SNN training (direct
  inputs, bias shift; T+N-1 time steps), at every ``--datta-timesteps``: the two schools side by side.

Every row carries accuracy, firing rate, synaptic operations, the estimated compute energy against the
non-spiking LSTM (CMOS per-op model, :mod:`snnlstm.measure.energy`) and the latency in time steps. With
``--subset K`` a fixed, seeded subset of K test images is evaluated (pixel-wise MNIST at T=1024 is
784 x 1024 cell steps per image); the method column then ends in ``-subsetK``. ``--timesteps`` and
``--datta-timesteps`` with no values evaluate only the non-spiking models.

Checkpoints (see BENCHMARKS.md for the epochs and times used)::

    snnlstm fit --config configs/ponghiran_row.yaml
    snnlstm fit --config configs/ponghiran_row.yaml --config configs/presets/baseline_cell.yaml

then::

    python benchmarks/ponghiran.py --ckpt MODIFIED_CKPT --baseline-ckpt BASELINE_CKPT
    python benchmarks/ponghiran.py --variant pixel --ckpt PIXEL_CKPT --timesteps 32 128 256 512 1024 --subset 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import command_line, save_outputs  # noqa: E402
from snnlstm.datamodules import SequentialMNIST  # noqa: E402
from snnlstm.models import SequenceClassifier  # noqa: E402
from snnlstm.evaluation.sweep import SweepRow, evaluate, format_sweep_table, plot_sweep_panels, timestep_sweep, write_sweep_csv  # noqa: E402


def load(path: str, cell: str, parser: argparse.ArgumentParser) -> SequenceClassifier:
    """A non-spiking checkpoint of ``cell`` ("modified" / "baseline"), ready for evaluation."""
    if not os.path.isfile(path):
        parser.error(f"checkpoint {path!r} not found: train it first (see the module docstring)")
    model = SequenceClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True, compile="none", init_from=None)
    if model.lstm.cell != cell or model.lstm.mode != "ann":
        parser.error(f"{path!r} holds a {model.lstm.mode}-mode cell={model.lstm.cell!r} model; expected a non-spiking cell={cell!r} one")
    return model.eval()


def test_loader(data: SequentialMNIST, subset: int, seed: int, batch_size: int) -> DataLoader:
    """The test split, or a seeded subset of ``subset`` images of it."""
    data.setup("test")
    dataset = data.test_dataloader().dataset
    if subset:
        if not 0 < subset <= len(dataset):
            raise ValueError(f"--subset must be in [1, {len(dataset)}], got {subset}")
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:subset]
        dataset = Subset(dataset, index.tolist())
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="non-spiking ModifiedLSTMCell checkpoint")
    parser.add_argument("--baseline-ckpt", default=None, help="non-spiking BaselineLSTMCell checkpoint (optional)")
    parser.add_argument("--variant", choices=["row", "pixel"], default="row")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--mean", type=float, default=0.1307, help="input normalisation used in training (reference recipe)")
    parser.add_argument("--std", type=float, default=0.8693, help="input normalisation used in training (reference recipe)")
    parser.add_argument("--timesteps", type=int, nargs="*", default=[16, 32, 64, 128], help="hybrid T values (none: skip)")
    parser.add_argument("--datta-timesteps", type=int, nargs="*", default=[2, 4, 8], help="Datta conversion T values (none: skip)")
    parser.add_argument("--subset", type=int, default=0, help="evaluate a seeded subset of this many test images (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--figures-dir", default="benchmarks/figures")
    parser.add_argument("--out-csv", default="benchmarks/results.csv", help="results CSV ('' = do not record)")
    parser.add_argument("--tag", default="", help="suffix of the model ids and figure names, e.g. 'bestval' for another checkpoint of the same run")
    parser.add_argument("--out-json", default=None, help="full report (default benchmarks/out/ponghiran_VARIANT.json)")
    args = parser.parse_args(argv)
    model = load(args.ckpt, "modified", parser)
    baseline = load(args.baseline_ckpt, "baseline", parser) if args.baseline_ckpt else None
    data = SequentialMNIST(data_dir=args.data_dir, variant=args.variant, mean=args.mean, std=args.std, batch_size=args.batch_size)
    loader = test_loader(data, args.subset, args.seed, args.batch_size)
    task, seq_len = f"mnist-{args.variant}", data.seq_len
    suffix = f"-subset{args.subset}" if args.subset else ""
    command = command_line()
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"images": len(loader.dataset), "seconds": {}}

    def row(model_id: str, method: str, timesteps: int, metric: str, value: float) -> None:
        rows.append(dict(task=task, model=model_id, method=method + suffix, timesteps=timesteps, metric=metric,
                         value=value, seeds=1, command=command))

    hidden = model.lstm.hidden_size
    tag = f"-{args.tag}" if args.tag else ""
    for name, net in (("modified", model), ("baseline", baseline)):
        if net is None:
            continue
        start = time.perf_counter()
        acc, _ = evaluate(net, loader, data.num_classes)
        report["seconds"][f"ann-{name}"] = time.perf_counter() - start
        report[f"ann-{name}"] = acc
        row(f"lstm{hidden}-{name}{tag}", "ann", 1, "test_acc", acc)
        print(f"non-spiking {name} LSTM({hidden}): {acc:.2f}%", flush=True)

    model_id = f"lstm{hidden}-modified{tag}"
    schools: dict[str, list[SweepRow]] = {}
    for method, mode, timesteps in (("hybrid", "hybrid", args.timesteps), ("datta-convert", "snn", args.datta_timesteps)):
        if not timesteps:
            continue
        start = time.perf_counter()
        kwargs = {"encodings": ["direct"], "bias_shifts": [True]} if mode == "snn" else {}
        sweep, _ = timestep_sweep(model, loader, data.num_classes, timesteps, seq_len, reference=False, mode=mode, **kwargs)
        report["seconds"][method] = time.perf_counter() - start
        schools[method] = sweep
        for r in sweep:
            latency = r.latency_sequential if mode == "hybrid" else r.latency_pipelined
            for metric, value in (("test_acc", r.accuracy), ("energy_ratio", r.energy_ratio), ("firing_rate", r.firing_rate),
                                  ("ac_per_sample", r.ac_per_sample), ("mac_per_sample", r.mac_per_sample),
                                  ("latency_steps", latency)):
                row(model_id, method, r.timesteps, metric, value)
        print(f"{method}:\n{format_sweep_table(sweep, report['ann-modified'])}", flush=True)

    print(format_school_table(schools, report["ann-modified"], seq_len), flush=True)
    name = f"ponghiran_{args.variant}{tag.replace('-', '_')}"
    if schools:  # with no T at all only the non-spiking models are evaluated (and the figure is left as it is)
        figures = Path(args.figures_dir)
        titles = {"hybrid": "hybrid cell (Ponghiran & Roy), T*N steps", "datta-convert": "Datta conversion only, T+N-1 steps"}
        plot_sweep_panels({titles[k]: v for k, v in schools.items()}, figures / f"{name}_accuracy_vs_T.png", report["ann-modified"],
                          suptitle=f"{args.variant}-wise MNIST, ModifiedLSTMCell({hidden}), {len(loader.dataset)} test images")
        write_sweep_csv([r for v in schools.values() for r in v], figures / f"{name}_accuracy_vs_T.csv", report["ann-modified"])
    report["rows"] = {k: [r._asdict() for r in v] for k, v in schools.items()}
    save_outputs(rows, args.out_csv, report, args.out_json or f"benchmarks/out/{name}{suffix}.json")


def format_school_table(schools: dict[str, list[SweepRow]], ann_accuracy: float, seq_len: int) -> str:
    """Markdown table of both conversion schools: accuracy, time steps per sequence, energy ratio."""
    lines = ["| method | T | accuracy % | time steps per sequence | E_ANN / E_SNN | firing rate |", "|---|---|---|---|---|---|",
             f"| non-spiking | - | {ann_accuracy:.2f} | {seq_len} (N) | 1.00 | - |"]
    for method, sweep in schools.items():
        for r in sweep:
            steps = f"{r.latency_sequential} (T·N)" if method == "hybrid" else f"{r.latency_pipelined} (T+N−1)"
            lines.append(f"| {method} | {r.timesteps} | {r.accuracy:.2f} | {steps} | {r.energy_ratio:.2f} | {r.firing_rate:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
