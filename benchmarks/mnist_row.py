"""Row-wise MNIST results of Datta et al.'s pipeline: non-spiking, conversion-only, fine-tuned SNN.

Evaluates checkpoints on the full MNIST test set (10,000 images, ``../shared/data``) and records the
numbers in ``benchmarks/results.csv``:

* ``ann``: the non-spiking hard LSTM(128) (the ``ann-before-conversion.ckpt`` of ``smnist_row.yaml``);
* ``datta-convert``: that checkpoint converted without any SNN training (direct inputs),
  with and without the optimal bias shift (paper Fig. 3b), at every ``--sweep-timesteps``;
* ``datta-convert-poisson[-noshift]``: the same with Poisson (rate-coded) inputs;
* ``datta-finetune`` / ``datta-finetune-poisson``: converted and fine-tuned spiking models, one per
  ``--snn-ckpt``, any T and either encoding (test accuracy, firing rates per gate and layer, synaptic
  operations, estimated energy against the non-spiking LSTM from the measured spike counts: CMOS per-op
  model and TrueNorth/SpiNNaker models; latency T+N-1 against the T*N of the hybrid scheme).

The ``model`` column is ``lstm128-hard`` for one layer and ``lstm128x2-hard`` for two: run the script
once per architecture (the fine-tuned checkpoints must match ``--ann-ckpt``'s). Plots go to
``--figures-dir`` under ``--name`` (default ``mnist_row`` / ``mnist_row_2l``): accuracy vs T with the
conversion-only curves (Fig. 3b) beside the fine-tuned models (Fig. 3a), the ANN as a reference line;
a spike raster of test image 0 and the per-gate firing rates of every fine-tuned model.

The checkpoints come from (each about 20-40 minutes on 2 CPU cores)::

    snnlstm fit --config configs/smnist_row.yaml           # ANN epochs 0-19, then convert + fine-tune
    snnlstm fit --config configs/smnist_row_finetune.yaml --model.init_args.init_from ANN_CKPT

then::

    python benchmarks/mnist_row.py --ann-ckpt ANN_CKPT --snn-ckpt SNN_T2_CKPT SNN_T8_CKPT SNN_T2_POISSON_CKPT
    python benchmarks/mnist_row.py --ann-ckpt ANN_2L_CKPT --snn-ckpt SNN_2L_T2_CKPT --sweep-timesteps 2 4 8
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results import command_line, save_outputs  # noqa: E402
from snnlstm.measure.energy import energy_report  # noqa: E402
from snnlstm.evaluation.raster import plot_firing_rates, plot_spike_raster, record_spike_trains  # noqa: E402
from snnlstm.evaluation.sweep import SweepRow, format_sweep_table, plot_sweep_panels, rows_as_dicts, timestep_sweep, write_sweep_csv  # noqa: E402
from snnlstm.callbacks import SpikeMonitor  # noqa: E402
from snnlstm.datamodules import SequentialMNIST  # noqa: E402
from snnlstm.models import SequenceClassifier  # noqa: E402

TASK = "mnist-row"


def model_name(model: SequenceClassifier) -> str:
    """The ``model`` column of results.csv: ``lstm128-hard`` (1 layer), ``lstm128x2-hard`` (2 layers)."""
    layers = model.lstm.num_layers
    return f"lstm{model.lstm.hidden_size}" + (f"x{layers}" if layers > 1 else "") + f"-{model.lstm.activation}"


def method_name(prefix: str, encoding: str, bias_shift: bool) -> str:
    """The ``method`` column: ``prefix`` + ``-poisson`` for Poisson inputs + ``-noshift`` without the bias shift."""
    return prefix + ("" if encoding == "direct" else f"-{encoding}") + ("" if bias_shift else "-noshift")


def evaluate(
    ckpt: str,
    data: SequentialMNIST,
    mode: str = "auto",
    timesteps: int | None = None,
    bias_shift: bool | None = None,
) -> tuple[dict[str, float], SequenceClassifier]:
    """Test accuracy (%) and spike statistics of a checkpoint on the test split, and the loaded model."""
    model = SequenceClassifier.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True, compile="none", init_from=None)
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
    return out, model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann-ckpt", required=True, help="pre-trained non-spiking checkpoint")
    parser.add_argument("--snn-ckpt", nargs="*", default=[], help="converted + fine-tuned checkpoints (any T)")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--sweep-timesteps", type=int, nargs="*", default=[1, 2, 4, 8, 16],
                        help="T values of the conversion-only sweep")
    parser.add_argument("--encodings", nargs="*", default=["direct", "poisson"], help="encodings of the sweep")
    parser.add_argument("--figures-dir", default="benchmarks/figures", help="where the PNG plots go")
    parser.add_argument("--name", default=None,
                        help="file-name prefix of the figures (default: mnist_row, or mnist_row_2l for a 2-layer model)")
    parser.add_argument("--model-tag", default="",
                        help="appended to the results' model column (e.g. 'cosine' -> lstm128-hard-cosine) to keep "
                             "another training recipe's rows apart from the default ones")
    parser.add_argument("--out-csv", default="benchmarks/results.csv", help="results CSV ('' = do not record)")
    parser.add_argument("--out-json", default=None, help="full report (default benchmarks/out/NAME.json)")
    args = parser.parse_args(argv)
    for path in [args.ann_ckpt, *args.snn_ckpt]:
        if not os.path.isfile(path):
            parser.error(f"checkpoint {path!r} not found: train it first (see the module docstring)")
    data = SequentialMNIST(data_dir=args.data_dir, variant="row", batch_size=500)
    data.setup("test")
    figures = Path(args.figures_dir)
    command = command_line()
    report: dict[str, Any] = {}
    rows = []

    # conversion only (paper Fig. 3b), with and without the bias shift, direct and Poisson inputs
    start = time.perf_counter()
    torch.manual_seed(0)  # Poisson spike trains
    ann_model = SequenceClassifier.load_from_checkpoint(args.ann_ckpt, map_location="cpu", weights_only=True, compile="none",
                                                     init_from=None)
    if ann_model.lstm.mode != "ann":
        parser.error(f"--ann-ckpt {args.ann_ckpt!r} holds a spiking model: give the non-spiking (pre-conversion) checkpoint")
    name = args.name or ("mnist_row" if ann_model.lstm.num_layers == 1 else f"mnist_row_{ann_model.lstm.num_layers}l")
    suffix = f"-{args.model_tag}" if args.model_tag else ""
    model_id = model_name(ann_model) + suffix

    def row(method: str, timesteps: int, metric: str, value: float, model: str = model_id) -> None:
        rows.append(dict(task=TASK, model=model, method=method, timesteps=timesteps, metric=metric, value=value, seeds=1, command=command))

    sweep_rows, ann_acc = timestep_sweep(
        ann_model, data.test_dataloader(), data.num_classes, args.sweep_timesteps, data.seq_len,
        encodings=args.encodings, bias_shifts=[False, True],
    )
    report["conversion_sweep_s"] = time.perf_counter() - start
    report["ann"] = {"test_acc": ann_acc}
    row("ann", 1, "test_acc", ann_acc)
    for r in sweep_rows:
        method = method_name("datta-convert", r.encoding, r.bias_shift)
        row(method, r.timesteps, "test_acc", r.accuracy)
        row(method, r.timesteps, "energy_ratio", r.energy_ratio)
    report["conversion"] = rows_as_dicts(sweep_rows)
    print(format_sweep_table(sweep_rows, ann_acc), flush=True)

    # converted + fine-tuned checkpoints (paper Fig. 3a / Table 2), energy and latency
    finetuned = []
    for ckpt in args.snn_ckpt:
        torch.manual_seed(0)  # Poisson spike trains
        snn, model = evaluate(ckpt, data)
        if model.lstm.num_layers != ann_model.lstm.num_layers or model.lstm.hidden_size != ann_model.lstm.hidden_size:
            parser.error(f"--snn-ckpt {ckpt!r} is not the architecture of --ann-ckpt (layers/hidden size differ): "
                         "run the script once per architecture")
        t, method, mid = int(snn["timesteps"]), method_name("datta-finetune", model.lstm.encoding, model.lstm.bias_shift), model_name(model) + suffix
        tag = f"T{t}" + ("" if model.lstm.encoding == "direct" else f"_{model.lstm.encoding}")
        counts = {k.removeprefix("spikes/lstm/"): v for k, v in snn.items()}  # SpikeMonitor's keys of the layer
        snn.update(energy_report(counts, t, data.seq_len))
        report[f"{method}-{mid}-T{t}"] = snn
        for metric, key in (("test_acc", "test_acc"), ("energy_ratio", "energy_ratio"), ("firing_rate", "firing_rate"),
                            ("ac_per_sample", "spikes/lstm/synops/ac_per_sample"),
                            ("mac_per_sample", "spikes/lstm/synops/mac_per_sample"),
                            ("truenorth_ratio", "truenorth_ratio"), ("spinnaker_ratio", "spinnaker_ratio"),
                            ("latency_steps", "latency_pipelined"), ("latency_steps_hybrid", "latency_hybrid")):
            if key in snn:
                row(method, t, metric, snn[key], model=mid)
        for k in range(model.lstm.num_layers):
            for gate in ("i", "f", "g", "o", "tanh_c", "h"):
                key = f"spikes/lstm/l{k}.{gate}/rate"
                if key in snn:
                    row(method, t, f"rate_{gate}" if k == 0 else f"rate_l{k}_{gate}", snn[key], model=mid)
        finetuned.append(SweepRow("trained", "snn", model.lstm.encoding, model.lstm.bias_shift, t, snn["test_acc"],
                                  snn.get("firing_rate", float("nan")), snn.get("spikes/lstm/synops/ac_per_sample", float("nan")),
                                  snn.get("spikes/lstm/synops/mac_per_sample", float("nan")), snn.get("energy_ratio", float("nan")),
                                  int(snn["latency_pipelined"]), int(snn["latency_hybrid"])))
        x = data.test_dataloader().dataset[0][0]
        for k, trains in enumerate(record_spike_trains(model.lstm, x)):
            plot_spike_raster(trains, figures / f"{name}_raster_{tag}_l{k}.png", t,
                              title=f"row-wise MNIST, test image 0, T={t}, {model.lstm.encoding}, layer {k}")
        rates = {key.split("/")[2]: float(v) for key, v in snn.items() if key.startswith("spikes/lstm/l") and key.endswith("/rate") and "." in key}
        plot_firing_rates(rates, figures / f"{name}_rates_{tag}.png", f"per-gate firing rate on the test set, T={t}, {model.lstm.encoding}")
        print(f"converted + fine-tuned ({mid}, {model.lstm.encoding}), T={t}: {snn['test_acc']:.2f}%, "
              f"energy ratio {snn.get('energy_ratio', float('nan')):.2f}x, "
              f"TrueNorth {snn['truenorth_ratio']:.2f}x, SpiNNaker {snn['spinnaker_ratio']:.2f}x, "
              f"latency {int(snn['latency_pipelined'])} steps (hybrid scheme {int(snn['latency_hybrid'])})", flush=True)
    panels = {"conversion only (Fig. 3b)": sweep_rows}
    if finetuned:
        panels["conversion + SNN fine-tuning (Fig. 3a)"] = finetuned
    layers = ann_model.lstm.num_layers
    plot_sweep_panels(panels, figures / f"{name}_accuracy_vs_T.png", ann_acc,
                      suptitle=f"Row-wise MNIST, {layers}-layer LSTM({ann_model.lstm.hidden_size})")
    write_sweep_csv(sweep_rows + finetuned, figures / f"{name}_accuracy_vs_T.csv", ann_acc)
    save_outputs(rows, args.out_csv, report, args.out_json or f"benchmarks/out/{name}.json")


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
