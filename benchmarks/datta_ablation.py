"""Table 1 of Datta et al. 2022 on row-wise MNIST: the ablation of the conversion and SNN-training techniques.

Rows (all T=2, direct encoding, 1-layer LSTM(128); each adds one technique to the row above, the last
two replace "all gates spiking" by one analog gate). Each row is a LightningCLI preset in
``configs/ablation/<row>.yaml`` that this script reads, and that composes with
``configs/smnist_row_finetune.yaml`` (P) or ``configs/smnist_row_np.yaml`` (NP) to run one row alone:

======================  =====  ==========  ======  =============================
row                     shift  V_th train  λ train  spiking gates
======================  =====  ==========  ======  =============================
``no-shift``            no     no          no      i, f, g, o, tanh_c
``shift``               yes    no          no      i, f, g, o, tanh_c
``threshold``           yes    yes         no      i, f, g, o, tanh_c
``leak``                yes    yes         yes     i, f, g, o, tanh_c
``ns-sig-i``            yes    yes         yes     f, g, o, tanh_c (i analog)
``ns-tanh-g``           yes    yes         yes     i, f, o, tanh_c (g analog)
======================  =====  ==========  ======  =============================

Each row is trained with two protocols: **P** starts from a pre-trained non-spiking hard LSTM
(``--ann-ckpt``), converts it at epoch 0 (thresholds from the hard activations) and fine-tunes the
spiking model for ``--p-epochs``; **NP** trains the spiking model from random weights for
``--np-epochs``. Every (row, protocol) runs for every ``--seeds`` value; the full 10,000-image test
set is evaluated after the last epoch (no selection on test data) and the table reports mean ± std
over seeds. Epoch counts are far below the paper's: they are arguments, printed with the table and
recorded in the ``command`` column.

Run from the repository root (the ANN checkpoint comes from ``snnlstm fit --config configs/smnist_row.yaml``)::

    python benchmarks/datta_ablation.py --ann-ckpt ANN_CKPT --seeds 0 1 2 --p-epochs 1 --np-epochs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
import torch
import yaml

from benchmarks.results import DEFAULT_PATH, command_line, machine_description, record
from snnlstm.callbacks import ANNToSNNConversion
from snnlstm.datamodules import SequentialMNIST
from snnlstm.models import SequenceClassifier
from snnlstm.nn.settings import LSTMSettings



class Row(NamedTuple):
    """One ablation row: the techniques it switches on."""

    name: str
    bias_shift: bool
    learn_threshold: bool
    learn_leak: bool
    spiking_gates: tuple[str, ...]
    label: str


#: Table 1's rows in order, with their labels; each row's settings live in ``configs/ablation/<name>.yaml``.
ROW_LABELS: dict[str, str] = {
    "no-shift": "S, no shift",
    "shift": "+ V_th shift",
    "threshold": "+ V_th training",
    "leak": "+ leak training",
    "ns-sig-i": "+ NS sig_i",
    "ns-tanh-g": "+ NS tanh_g",
}
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "ablation"
ROW_KEYS = ("spiking_gates", "bias_shift", "learn_threshold", "learn_leak")


def load_row(name: str, config_dir: Path = CONFIG_DIR) -> Row:
    """Read one Table 1 row from its LightningCLI preset ``configs/ablation/<name>.yaml``.

    The same file runs the row on its own (``snnlstm fit --config configs/smnist_row_finetune.yaml
    --config configs/ablation/<name>.yaml``), so the script and the CLI cannot disagree.
    """
    path = Path(config_dir) / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"ablation row config {path} is missing; rows: {', '.join(ROW_LABELS)}")
    init_args = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("model", {}).get("init_args", {})
    args = init_args.get("layer") or {}
    missing = [key for key in ROW_KEYS if key not in args]
    if missing:
        raise ValueError(f"{path} must set model.init_args.layer.{{{', '.join(ROW_KEYS)}}}; missing: {', '.join(missing)}")
    return Row(name, bool(args["bias_shift"]), bool(args["learn_threshold"]), bool(args["learn_leak"]),
               tuple(args["spiking_gates"]), ROW_LABELS[name])


ROWS: tuple[Row, ...] = tuple(load_row(name) for name in ROW_LABELS)
ROW_NAMES = tuple(r.name for r in ROWS)
PROTOCOLS = ("P", "NP")
PAPER = {  # Table 1, T-MNIST column (P, NP)
    "no-shift": (97.84, 97.74),
    "shift": (97.98, 97.87),
    "threshold": (97.92, 97.84),
    "leak": (98.0, 97.95),
    "ns-sig-i": (98.1, 97.98),
    "ns-tanh-g": (98.15, 98.12),
}


def make_data(args: argparse.Namespace) -> L.LightningDataModule:
    """The DataModule of a run (real MNIST by default; tests pass a tiny one through ``args.data``)."""
    if getattr(args, "data", None) is not None:
        return args.data
    return SequentialMNIST(data_dir=args.data_dir, variant="row", batch_size=args.batch_size)


def run_one(row: Row, protocol: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one (row, protocol, seed) and return its test accuracy (%) and timing."""
    L.seed_everything(seed, workers=True)
    data = make_data(args)
    layer = LSTMSettings(
        hidden_size=args.hidden,
        activation="hard",
        timesteps=args.timesteps,
        spiking_gates=row.spiking_gates,
        bias_shift=row.bias_shift,
        learn_threshold=row.learn_threshold,
        learn_leak=row.learn_leak,
    )
    common = dict(
        lr_schedule="cosine",
        input_size=data.input_size,
        num_classes=data.num_classes,
        seq_len=data.seq_len,
    )
    callbacks: list[L.Callback] = []
    if protocol == "P":
        model = SequenceClassifier(layer=layer.replace(mode="ann"), lr=args.lr, init_from=args.ann_ckpt, **common)
        callbacks.append(
            ANNToSNNConversion(
                epoch=0,
                timesteps=args.timesteps,
                spiking_gates=row.spiking_gates,
                bias_shift=row.bias_shift,
                lr_factor=args.p_lr_factor,
            )
        )
        epochs = args.p_epochs
    else:
        model = SequenceClassifier(layer=layer.replace(mode="snn"), lr=args.lr, **common)
        epochs = args.np_epochs
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        limit_train_batches=args.limit_train_batches,
        callbacks=callbacks,
        default_root_dir=args.work_dir,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_s = time.perf_counter() - start
    result = trainer.test(model, datamodule=data, verbose=False)[0]
    f_neuron = model.lstm.neurons[0].f
    return {
        "row": row.name,
        "protocol": protocol,
        "seed": seed,
        "epochs": epochs,
        "test_acc": 100.0 * float(result["test/acc"]),
        "threshold_f": float(f_neuron.threshold),
        "leak_f": float(f_neuron.beta),
        "fit_s": fit_s,
        "total_s": time.perf_counter() - start,
    }


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std of test accuracy per (row, protocol), in table order."""
    out = []
    for row in ROWS:
        for protocol in PROTOCOLS:
            accs = [r["test_acc"] for r in runs if r["row"] == row.name and r["protocol"] == protocol]
            if not accs:
                continue
            out.append(
                {
                    "row": row.name,
                    "label": row.label,
                    "protocol": protocol,
                    "mean": statistics.fmean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "seeds": len(accs),
                    "paper": PAPER[row.name][PROTOCOLS.index(protocol)],
                }
            )
    return out


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """Markdown table like the paper's Table 1 (T-MNIST columns), ours next to the paper's."""
    lines = ["| row | shift | V_th train | λ train | spiking gates | P (ours) | P (paper) | NP (ours) | NP (paper) |"]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    by_key = {(s["row"], s["protocol"]): s for s in summary}
    mark = {True: "✓", False: "×"}
    for row in ROWS:
        cells = []
        for protocol in PROTOCOLS:
            s = by_key.get((row.name, protocol))
            ours = f"{s['mean']:.2f} ± {s['std']:.2f} (n={s['seeds']})" if s else "–"
            cells += [ours, f"{PAPER[row.name][PROTOCOLS.index(protocol)]:.2f}"]
        gates = ", ".join(row.spiking_gates)
        lines.append(
            f"| {row.label} | {mark[row.bias_shift]} | {mark[row.learn_threshold]} | {mark[row.learn_leak]} | {gates} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def result_rows(summary: Sequence[dict[str, Any]], timesteps: int, command: str) -> list[dict[str, Any]]:
    """Rows for ``benchmarks/results.csv``: mean and std per (row, protocol)."""
    rows = []
    for s in summary:
        method = f"datta-ablation-{s['row']}-{s['protocol']}"
        for metric, value in (("test_acc", s["mean"]), ("test_acc_std", s["std"])):
            rows.append(
                dict(task="mnist-row", model="lstm128-hard", method=method, timesteps=timesteps, metric=metric,
                     value=value, seeds=s["seeds"], command=command)
            )
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ann-ckpt", default=None, help="pre-trained non-spiking SequenceClassifier checkpoint (needed for P)")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--rows", nargs="+", default=list(ROW_NAMES), choices=ROW_NAMES)
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--timesteps", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--p-epochs", type=int, default=1, help="SNN fine-tuning epochs after conversion (P)")
    p.add_argument("--np-epochs", type=int, default=3, help="SNN training epochs from scratch (NP)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--p-lr-factor", type=float, default=0.3, help="learning-rate factor applied at conversion (P)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit-train-batches", type=float, default=1.0, help="fraction (<=1) or number of training batches per epoch")
    p.add_argument("--work-dir", default="runs/datta_ablation")
    p.add_argument("--out-csv", default=str(DEFAULT_PATH), help="results CSV to upsert into ('' = do not record)")
    p.add_argument("--out-md", default="runs/datta_ablation/table.md", help="markdown table ('' = do not write)")
    args = p.parse_args(argv)
    if "P" in args.protocols and (args.ann_ckpt is None or not os.path.isfile(args.ann_ckpt)):
        p.error(f"protocol P needs --ann-ckpt pointing at a pre-trained checkpoint, got {args.ann_ckpt!r}")
    for name in ("p_epochs", "np_epochs", "timesteps", "hidden", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.limit_train_batches > 1:
        args.limit_train_batches = int(args.limit_train_batches)
    return args


def main(argv: Sequence[str] | None = None, data: L.LightningDataModule | None = None) -> dict[str, Any]:
    """Run the ablation; returns the per-run results, the summary and the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.data = data
    command = command_line(argv, script=__file__)
    print(f"# {command}\n# {machine_description()}", flush=True)
    rows = [r for r in ROWS if r.name in args.rows]
    runs = []
    start = time.perf_counter()
    for row in rows:
        for protocol in args.protocols:
            for seed in args.seeds:
                res = run_one(row, protocol, seed, args)
                runs.append(res)
                print(f"{row.name:<10} {protocol:<2} seed {seed}: {res['test_acc']:.2f}% ({res['total_s']:.0f} s)", flush=True)
    summary = summarize(runs)
    table = format_table(summary)
    minutes = (time.perf_counter() - start) / 60.0
    print(table)
    print(f"# {len(runs)} runs in {minutes:.1f} min; P: {args.p_epochs} epoch(s) after conversion, NP: {args.np_epochs} epoch(s)")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "runs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    (work / "summary.json").write_text(json.dumps({"command": command, "minutes": minutes, "summary": summary}, indent=2))
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(table + "\n", encoding="utf-8")
    if args.out_csv:
        record(result_rows(summary, args.timesteps, command), args.out_csv)
    return {"runs": runs, "summary": summary, "table": table, "minutes": minutes}


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
