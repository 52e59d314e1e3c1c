"""Translation results: BLEU of a trained Translator, non-spiking and as Ponghiran & Roy's hybrid cells.

Evaluates Translator checkpoints (``configs/multi30k_translation.yaml``) on the test split through
``Trainer.test`` with a :class:`~snnlstm.callbacks.SpikeMonitor`, exactly as ``snnlstm test`` does:

* ``ann``: the checkpoint as trained (``--ckpt``, and the other cell's ``--baseline-ckpt`` if given);
* ``hybrid``: ``--ckpt`` (a ModifiedLSTMCell model) with both LSTMs run as hybrid cells at every
  ``--timesteps`` T (T SNN steps per token).

Every row gets BLEU (sacreBLEU on detokenised output), and the spiking rows get the estimated compute
energy against the non-spiking model and the firing rate. Rows go into ``benchmarks/results.csv``, the
report (with ``--samples`` example translations: source, reference, non-spiking, spiking at the largest T)
into JSON. Hybrid decoding at large T is slow on a CPU: ``--subset K`` evaluates a fixed, seeded subset of
K test sentences (the method column then ends in ``-subsetK``), ``--beam`` overrides the beam size.

    python benchmarks/translation.py --ckpt MODIFIED_CKPT --baseline-ckpt BASELINE_CKPT \\
        --timesteps 16 32 64 128 --subset 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402

from benchmarks.results import command_line, save_outputs  # noqa: E402
from snnlstm.callbacks import SpikeMonitor  # noqa: E402
from snnlstm.datamodules import IWSLT14, Multi30k  # noqa: E402
from snnlstm.datamodules.translation import ParallelText  # noqa: E402
from snnlstm.models import Translator  # noqa: E402

DATASETS = {"multi30k": Multi30k, "iwslt14": IWSLT14}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="Translator checkpoint (ModifiedLSTMCell for the hybrid rows)")
    parser.add_argument("--baseline-ckpt", default=None, help="another Translator checkpoint evaluated non-spiking only")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="multi30k")
    parser.add_argument("--data-dir", default=None, help="corpus folder (default: the DataModule's)")
    parser.add_argument("--timesteps", type=int, nargs="*", default=[16, 32, 64, 128], help="hybrid T values (none: skip)")
    parser.add_argument("--subset", type=int, default=0, help="seeded subset of this many test sentences (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=5, help="example translations kept in the report")
    parser.add_argument("--out-csv", default="benchmarks/results.csv", help="results CSV ('' = do not record)")
    parser.add_argument("--out-json", default=None, help="report (default benchmarks/out/translation_DATASET.json)")
    args = parser.parse_args(argv)
    for name in ("ckpt", "baseline_ckpt"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            parser.error(f"checkpoint {path!r} not found: train it with snnlstm fit --config configs/multi30k_translation.yaml")
    if any(t < 1 for t in args.timesteps) or args.subset < 0:
        parser.error("--timesteps must be >= 1 and --subset >= 0")
    return args


def _data(args: argparse.Namespace, ckpt: str) -> ParallelText:
    kwargs: dict[str, Any] = {"batch_size": args.batch_size, "vocab_from": ckpt, "subset_seed": args.seed}
    if args.data_dir is not None:
        kwargs["data_dir"] = args.data_dir
    if args.subset:
        kwargs["test_subset"] = args.subset
    return DATASETS[args.dataset](**kwargs)


def evaluate(model: Translator, data: ParallelText) -> dict[str, Any]:
    """``Trainer.test`` of ``model`` with a SpikeMonitor: BLEU, energy ratio, firing rate, translations."""
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[SpikeMonitor(stages=["test"])])
    start = time.perf_counter()
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    return {
        "bleu": metrics["test/bleu"],
        "energy_ratio": metrics.get("test/energy_ratio"),
        "firing_rate": metrics.get("test/firing_rate"),
        "seconds": time.perf_counter() - start,
        "translations": list(model.test_translations),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the evaluation, print the table, record the rows; returns the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = command_line(argv, script=__file__)
    suffix = f"-subset{args.subset}" if args.subset else ""
    task = f"{args.dataset}-de-en"
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"command": command, "results": []}

    def record(model_id: str, method: str, timesteps: int, result: dict[str, Any]) -> None:
        for metric in ("bleu", "energy_ratio", "firing_rate"):
            if result[metric] is not None:
                rows.append(dict(task=task, model=model_id, method=method + suffix, timesteps=timesteps, metric=metric,
                                 value=result[metric], seeds=1, command=command))
        report["results"].append({"model": model_id, "method": method, "timesteps": timesteps,
                                  **{k: v for k, v in result.items() if k != "translations"}})
        energy = "-" if result["energy_ratio"] is None else f"{result['energy_ratio']:.2f}"
        print(f"{model_id:<22} {method:<8} T={timesteps:<5} BLEU {result['bleu']:6.2f}  E_ANN/E_SNN {energy}  "
              f"({result['seconds']:.0f} s)", flush=True)

    outputs: dict[str, list[str]] = {}
    for path, role in ((args.ckpt, "main"), (args.baseline_ckpt, "baseline")):
        if path is None:
            continue
        model = Translator.load_from_checkpoint(path, map_location="cpu")
        if args.beam is not None:
            model.hparams.beam_size = args.beam
        model_id = f"seq2seq{model.hparams.hidden_size}-{model.hparams.cell}"
        if role == "main" and args.timesteps and model.hparams.cell != "modified":
            raise SystemExit(f"--ckpt is a cell={model.hparams.cell!r} model; the hybrid rows need cell='modified' "
                             "(give it as --baseline-ckpt, or pass --timesteps with no values)")  # fmt: skip
        data = _data(args, path)
        model.hparams.eval_mode = "ann"
        result = evaluate(model, data)
        record(model_id, "ann", 1, result)
        outputs[f"{role}-ann"] = result["translations"]
        if role == "main":
            for t in args.timesteps:
                model.hparams.eval_mode, model.hparams.eval_timesteps = "hybrid", t
                result = evaluate(model, data)
                record(model_id, "hybrid", t, result)
                outputs[f"hybrid-T{t}"] = result["translations"]
            keys = sorted(data.encoded("test").index)
            sources, refs = data.sources("test"), data.references("test")
            spiking = outputs.get(f"hybrid-T{max(args.timesteps)}") if args.timesteps else None
            report["samples"] = [
                {"source": sources[k], "reference": refs[k], "non_spiking": outputs["main-ann"][i],
                 **({"spiking": spiking[i]} if spiking else {})}
                for i, k in enumerate(keys[: args.samples])
            ]  # fmt: skip
    save_outputs(rows, args.out_csv, report, args.out_json or f"benchmarks/out/translation_{args.dataset}{suffix}.json")
    return report


if __name__ == "__main__":
    main()
