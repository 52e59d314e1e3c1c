"""Datta et al. 2022's protocol on Google Speech Commands or UCI HAR, from a real copy of the dataset.

For each seed: train the non-spiking hard LSTM with the task's config (``configs/gsc.yaml`` or
``configs/uci_har.yaml``, with ``configs/presets/ann_only.yaml``) for ``--ann-epochs``, test it, then for each ``--timesteps`` T convert it
(direct encoding, optimal bias shift, spiking f/i/o/tanh_c) and fine-tune the SNN with trainable
thresholds and leaks for ``--finetune-epochs`` (``configs/presets/finetune_from_ann.yaml``), and test
that. Every run goes through the real ``snnlstm fit`` LightningCLI (wandb offline unless configured).
The results are printed and written as a BENCHMARKS.md-style markdown table next to the paper's numbers
and upserted into ``benchmarks/results.csv``::

    python benchmarks/paper_protocol.py --task gsc --data-dir PATH/TO/speech_commands_v0.02
    python benchmarks/paper_protocol.py --task uci_har --data-dir "PATH/TO/UCI HAR Dataset" --seeds 0 1 2
    python benchmarks/paper_protocol.py --task gsc --data-dir ... -- --config configs/presets/two_layers.yaml

Arguments after ``--`` go to every ``snnlstm fit`` call unchanged (e.g. presets, ``--trainer.accelerator gpu``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results import REPO_ROOT, command_line, machine_description, record  # noqa: E402
from snnlstm.cli import cli_main  # noqa: E402


class Task(NamedTuple):
    """One dataset of the paper: its config, results.csv name and the paper's accuracies (%)."""

    config: str
    name: str
    paper: dict[str, float]


TASKS = {
    "gsc": Task("configs/gsc.yaml", "gsc", {"ann": 95.42, "2": 94.75, "4": 95.02}),
    "uci_har": Task("configs/uci_har.yaml", "uci-har", {"ann": 90.37, "2": 89.40, "4": 90.78}),
}
ANN_PRESET = "configs/presets/ann_only.yaml"
FINETUNE_PRESET = "configs/presets/finetune_from_ann.yaml"


def _last_checkpoint(cli: Any) -> str:
    """The ``last.ckpt`` written by the run's ``save_last`` ModelCheckpoint."""
    for cb in cli.trainer.checkpoint_callbacks:
        if getattr(cb, "save_last", False) and cb.last_model_path:
            return cb.last_model_path
    raise RuntimeError("the run wrote no last.ckpt: keep a ModelCheckpoint(save_last=true) in the config")


def fit_and_test(args: list[str]) -> tuple[dict[str, float], str, float, Any]:
    """Runs ``snnlstm fit`` with ``args`` then tests the final model.

    Returns:
        ``(test metrics, last checkpoint, fit seconds, model)``.
    """
    start = time.perf_counter()
    cli = cli_main(["fit", *args])
    fit_s = time.perf_counter() - start
    metrics = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    return {k: float(v) for k, v in metrics.items()}, _last_checkpoint(cli), fit_s, cli.model


def model_name(model: Any) -> str:
    """``lstm128-hard`` (1 layer), ``lstm128x2-hard`` (2 layers): the results.csv ``model`` column."""
    layers = model.lstm.num_layers
    return f"lstm{model.lstm.hidden_size}" + (f"x{layers}" if layers > 1 else "") + f"-{model.lstm.activation}"


def run_seed(task: Task, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The ANN and one fine-tuned SNN per T for one seed; one result dict per model."""
    work = Path(args.work_dir) / f"seed{seed}"
    common = ["--config", str(REPO_ROOT / task.config), "--data.init_args.data_dir", args.data_dir, "--seed_everything", str(seed)]

    def where(name: str) -> list[str]:
        folder = str(work / name)
        logger = ["--trainer.logger.init_args.save_dir", folder] if args.wandb else ["--trainer.logger", "false"]
        return ["--trainer.default_root_dir", folder, *logger]

    limit = ["--trainer.limit_train_batches", str(args.limit_train_batches)] if args.limit_train_batches else []
    ann = [*common, "--config", str(REPO_ROOT / ANN_PRESET), *where("ann"), "--trainer.max_epochs", str(args.ann_epochs)]
    metrics, ann_ckpt, fit_s, model = fit_and_test([*ann, *limit, *args.cli])
    results = [dict(seed=seed, timesteps=0, model=model_name(model), acc=100 * metrics["test/acc"], fit_s=fit_s, checkpoint=ann_ckpt)]
    print(f"seed {seed} ANN: {results[-1]['acc']:.2f}% ({fit_s:.0f} s)", flush=True)
    for t in args.timesteps:
        ft = [*common, "--config", str(REPO_ROOT / FINETUNE_PRESET), *where(f"snn_T{t}"), "--model.init_args.init_from", ann_ckpt]
        ft += ["--model.init_args.layer.timesteps", str(t), "--trainer.max_epochs", str(args.finetune_epochs), *limit, *args.cli]
        metrics, ckpt, fit_s, model = fit_and_test(ft)
        results.append(
            dict(
                seed=seed,
                timesteps=t,
                model=model_name(model),
                acc=100 * metrics["test/acc"],
                energy_ratio=metrics.get("test/energy_ratio"),
                firing_rate=metrics.get("test/firing_rate"),
                fit_s=fit_s,
                checkpoint=ckpt,
            )
        )
        print(f"seed {seed} T={t}: {results[-1]['acc']:.2f}% ({fit_s:.0f} s)", flush=True)
    return results


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarize(task: Task, runs: Sequence[dict[str, Any]], args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    """The markdown table and the results.csv rows (means over seeds)."""
    lines = [
        "| model | T | test accuracy % | paper % | energy ratio (ANN / SNN) | firing rate | training time |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: list[dict[str, Any]] = []
    seeds = len({r["seed"] for r in runs})
    for t in [0, *args.timesteps]:
        group = [r for r in runs if r["timesteps"] == t]
        accs = [r["acc"] for r in group]
        paper = task.paper.get("ann" if t == 0 else str(t))
        method = "ann" if t == 0 else "datta-finetune"
        epochs = args.ann_epochs if t == 0 else args.finetune_epochs
        minutes = statistics.mean(r["fit_s"] for r in group) / 60
        energy = [r["energy_ratio"] for r in group if r.get("energy_ratio") is not None]
        rates = [r["firing_rate"] for r in group if r.get("firing_rate") is not None]
        lines.append(
            f"| {group[0]['model']} {'non-spiking' if t == 0 else 'spiking'} | {t or '-'} | {_mean_std(accs)} | "
            f"{'-' if paper is None else f'{paper:.2f}'} | {f'{statistics.mean(energy):.2f}×' if energy else '-'} | "
            f"{f'{statistics.mean(rates):.3f}' if rates else '-'} | {epochs} epochs, {minutes:.1f} min |"
        )
        base = dict(task=task.name, model=group[0]["model"], method=method, timesteps=t or 1, seeds=seeds, command=args.command)
        rows.append({**base, "metric": "test_acc", "value": statistics.mean(accs)})
        if len(accs) > 1:
            rows.append({**base, "metric": "test_acc_std", "value": statistics.stdev(accs)})
        if energy:
            rows.append({**base, "metric": "energy_ratio", "value": statistics.mean(energy)})
        if rates:
            rows.append({**base, "metric": "firing_rate", "value": statistics.mean(rates)})
    return "\n".join(lines), rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    cli = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--data-dir", required=True, help="the real dataset (see the task's DataModule for the layouts)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--timesteps", type=int, nargs="+", default=[2, 4])
    p.add_argument("--ann-epochs", type=int, default=None, help="non-spiking epochs (default: the config's conversion epoch)")
    p.add_argument("--finetune-epochs", type=int, default=20)
    p.add_argument("--limit-train-batches", type=float, default=None, help="fraction (<=1) or number of training batches per epoch")
    p.add_argument("--no-wandb", dest="wandb", action="store_false", help="no wandb logger (runs still write checkpoints)")
    p.add_argument("--work-dir", default=None, help="default: runs/paper_protocol/<task>")
    p.add_argument("--out-md", default=None, help="markdown table (default: <work-dir>/table.md; '' = do not write)")
    p.add_argument("--out-csv", default=str(REPO_ROOT / "benchmarks" / "results.csv"), help="results CSV ('' = do not record)")
    args = p.parse_args(argv)
    args.cli = cli
    if not os.path.exists(args.data_dir):
        p.error(f"--data-dir {args.data_dir!r} does not exist; point it at the real {args.task} dataset")
    if any(t < 1 for t in args.timesteps) or args.finetune_epochs < 1 or (args.ann_epochs is not None and args.ann_epochs < 1):
        p.error("--timesteps, --ann-epochs and --finetune-epochs must be >= 1")
    if args.ann_epochs is None:
        args.ann_epochs = {"gsc": 30, "uci_har": 40}[args.task]  # the conversion epoch of configs/<task>.yaml
    if args.limit_train_batches is not None and args.limit_train_batches > 1:
        args.limit_train_batches = int(args.limit_train_batches)
    args.work_dir = args.work_dir or f"runs/paper_protocol/{args.task}"
    args.out_md = str(Path(args.work_dir) / "table.md") if args.out_md is None else args.out_md
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the protocol; returns the runs, the table and the results.csv rows."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.command = command_line(argv, script=__file__)
    task = TASKS[args.task]
    print(f"# {args.command}\n# {machine_description()}", flush=True)
    start = time.perf_counter()
    runs = [r for seed in args.seeds for r in run_seed(task, seed, args)]
    table, rows = summarize(task, runs, args)
    minutes = (time.perf_counter() - start) / 60
    print(table)
    print(f"# {len(runs)} models in {minutes:.1f} min")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "runs.json").write_text(json.dumps({"command": args.command, "minutes": minutes, "runs": runs}, indent=2))
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(f"{table}\n\n`{args.command}` ({minutes:.1f} min, {machine_description()})\n")
    if args.out_csv:
        record(rows, args.out_csv)
    return {"runs": runs, "table": table, "rows": rows, "minutes": minutes}


if __name__ == "__main__":
    main()
