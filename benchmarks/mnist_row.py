"""Row-wise MNIST results of Datta et al.'s pipeline: non-spiking, conversion-only, fine-tuned SNN.

Evaluates checkpoints on the full MNIST test set (10,000 images, ``../shared/data``) and records the
numbers in ``benchmarks/results.csv``:

* ``ann``: the non-spiking hard LSTM(128) (the ``ann-before-conversion.ckpt`` of ``smnist_row.yaml``);
* ``datta-convert``: that checkpoint converted without any SNN training, at ``--convert-timesteps``,
  with and without the optimal bias shift (paper Fig. 3b);
* ``datta-finetune``: the converted and fine-tuned spiking model (test accuracy, firing rate, synaptic
  operations, estimated energy ratio against the non-spiking LSTM from the measured spike counts).

The checkpoints come from (each about 20-40 minutes on 2 CPU cores)::

    snnlstm fit --config configs/smnist_row.yaml           # ANN epochs 0-19, then convert + fine-tune
    snnlstm fit --config configs/smnist_row_finetune.yaml --model.init_args.init_from ANN_CKPT

then::

    python benchmarks/mnist_row.py --ann-ckpt ANN_CKPT --snn-ckpt SNN_CKPT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import lightning as L
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results import command_line, record  # noqa: E402
from snnlstm.callbacks import SpikeMonitor  # noqa: E402
from snnlstm.datamodules import SequentialMNIST  # noqa: E402
from snnlstm.models import SequenceClassifier  # noqa: E402

TASK, MODEL = "mnist-row", "lstm128-hard"


def evaluate(
    ckpt: str,
    data: SequentialMNIST,
    mode: str = "auto",
    timesteps: int | None = None,
    bias_shift: bool | None = None,
) -> dict[str, float]:
    """Test accuracy (%) and spike statistics of a checkpoint on the test split."""
    model = SequenceClassifier.load_from_checkpoint(ckpt, map_location="cpu", compile="none", init_from=None)
    model.hparams.eval_mode, model.hparams.eval_timesteps = mode, timesteps
    if bias_shift is not None:
        model.lstm.bias_shift = bias_shift
    monitor = SpikeMonitor(stages=["test"])
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor]
    )
    start = time.perf_counter()
    result = trainer.test(model, datamodule=data, verbose=False)[0]
    out = {"test_acc": 100 * result["test/acc"], "seconds": time.perf_counter() - start, "timesteps": float(model.lstm.timesteps)}
    out.update({k: float(v) for k, v in monitor.latest.get("test", {}).items()})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann-ckpt", required=True, help="pre-trained non-spiking checkpoint")
    parser.add_argument("--snn-ckpt", required=True, help="converted + fine-tuned checkpoint")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--convert-timesteps", type=int, nargs="*", default=[2, 4, 8])
    parser.add_argument("--out-csv", default="benchmarks/results.csv")
    parser.add_argument("--out-json", default="benchmarks/out/mnist_row.json")
    args = parser.parse_args(argv)
    for path in (args.ann_ckpt, args.snn_ckpt):
        if not os.path.isfile(path):
            parser.error(f"checkpoint {path!r} not found: train it first (see the module docstring)")
    data = SequentialMNIST(data_dir=args.data_dir, variant="row", batch_size=500)
    command = command_line()
    report: dict[str, Any] = {}
    rows = []

    def row(method: str, timesteps: int, metric: str, value: float) -> None:
        rows.append(dict(task=TASK, model=MODEL, method=method, timesteps=timesteps, metric=metric, value=value, seeds=1, command=command))

    ann = report["ann"] = evaluate(args.ann_ckpt, data, mode="ann")
    row("ann", 1, "test_acc", ann["test_acc"])
    print(f"non-spiking hard LSTM(128): {ann['test_acc']:.2f}%", flush=True)
    for t in args.convert_timesteps:
        for shift in (False, True):
            res = report[f"convert-T{t}-{'shift' if shift else 'noshift'}"] = evaluate(
                args.ann_ckpt, data, mode="snn", timesteps=t, bias_shift=shift
            )
            method = "datta-convert" + ("" if shift else "-noshift")
            row(method, t, "test_acc", res["test_acc"])
            print(f"conversion only, T={t}, shift={shift}: {res['test_acc']:.2f}%", flush=True)
    snn = report["finetune"] = evaluate(args.snn_ckpt, data)
    t = int(snn["timesteps"])
    for metric, key in (("test_acc", "test_acc"), ("energy_ratio", "energy_ratio"), ("firing_rate", "firing_rate"),
                        ("ac_per_sample", "spikes/lstm/synops/ac_per_sample"),
                        ("mac_per_sample", "spikes/lstm/synops/mac_per_sample")):
        if key in snn:
            row("datta-finetune", t, metric, snn[key])
    for gate in ("i", "f", "g", "o", "tanh_c", "h"):
        key = f"spikes/lstm/l0.{gate}/rate"
        if key in snn:
            row("datta-finetune", t, f"rate_{gate}", snn[key])
    print(f"converted + fine-tuned, T={t}: {snn['test_acc']:.2f}%, energy ratio {snn.get('energy_ratio', float('nan')):.2f}x", flush=True)
    if args.out_csv:
        record(rows, args.out_csv)
    os.makedirs(os.path.dirname(args.out_json) or ".", exist_ok=True)
    with open(args.out_json, "w") as fh:
        json.dump(report, fh, indent=2)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
