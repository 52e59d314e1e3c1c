"""Translation results: BLEU of a trained Translator, non-spiking and converted by both schools.

Evaluates Translator checkpoints (``configs/multi30k_translation.yaml``) on the test split through
``Trainer.test`` with a :class:`~snnlstm.callbacks.SpikeMonitor`, exactly as ``snnlstm test`` does:

* ``ann``: the checkpoint as trained (``--ckpt``, and the other cell's ``--baseline-ckpt`` if given);
* ``hybrid``: ``--ckpt`` (a ModifiedLSTMCell model) with both LSTMs run as Ponghiran & Roy's hybrid
  cells at every ``--timesteps`` T (T SNN steps per token);
* ``datta-convert``: the same checkpoint converted to Datta et al.'s spiking LSTMs (IF gates with the
  optimal bias shift, ternary tanh neurons, direct input, no SNN training) at every
  ``--datta-timesteps`` T: the encoder runs its T+S-1 pipelined steps, the decoder T steps per token
  carrying its per-step state.

Every row gets BLEU (sacreBLEU on detokenised output) and the estimated compute energy of the two
LSTMs per test sentence (the whole search, beams included; attention and projections are analog in
every row and not counted); the spiking rows also get the ratio to the non-spiking model and the
firing rate. The method column names the search
(``-greedy`` or ``-beamK``). Rows go into ``benchmarks/results.csv``, the report (with ``--samples``
example translations: source, reference, non-spiking, each school at its largest T) into JSON. Spiking
decoding at large T is slow on a CPU: ``--subset K`` evaluates a fixed, seeded subset of K test
sentences (the method column then ends in ``-subsetK``), ``--beam`` overrides the beam size.

    python benchmarks/translation.py --ckpt MODIFIED_CKPT --baseline-ckpt BASELINE_CKPT \\
        --timesteps 16 32 64 128 --datta-timesteps 2 4 8 16 --subset 200
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
    parser.add_argument("--datta-timesteps", type=int, nargs="*", default=[2, 4, 8], help="Datta conversion T values (none: skip)")
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
    if any(t < 1 for t in args.timesteps + args.datta_timesteps) or args.subset < 0:
        parser.error("--timesteps and --datta-timesteps must be >= 1 and --subset >= 0")
    if args.beam is not None and args.beam < 1:
        parser.error("--beam must be >= 1")
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
    sentences = len(model.test_translations)
    energy = metrics.get("test/energy/snn_uj")
    return {
        "bleu": metrics["test/bleu"],
        "energy_ratio": metrics.get("test/energy_ratio"),
        "energy_uj_per_sentence": None if energy is None else energy / sentences,
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

    def record(model: Translator, method: str, timesteps: int, result: dict[str, Any]) -> None:
        model_id = f"seq2seq{model.hparams.hidden_size}-{model.hparams.cell}"
        beam = int(model.hparams.beam_size)
        method = f"{method}-{'greedy' if beam == 1 else f'beam{beam}'}"
        for metric in ("bleu", "energy_ratio", "energy_uj_per_sentence", "firing_rate"):
            if result[metric] is not None:
                rows.append(dict(task=task, model=model_id, method=method + suffix, timesteps=timesteps, metric=metric,
                                 value=result[metric], seeds=1, command=command))
        report["results"].append({"model": model_id, "method": method, "timesteps": timesteps,
                                  **{k: v for k, v in result.items() if k != "translations"}})
        ratio = "-" if result["energy_ratio"] is None else f"{result['energy_ratio']:.2f}"
        energy = "-" if result["energy_uj_per_sentence"] is None else f"{result['energy_uj_per_sentence']:.1f}"
        print(f"{model_id:<22} {method:<20} T={timesteps:<5} BLEU {result['bleu']:6.2f}  E_ANN/E_SNN {ratio}  "
              f"LSTM energy {energy} uJ/sentence  ({result['seconds']:.0f} s)", flush=True)

    outputs: dict[str, list[str]] = {}
    for path, role in ((args.ckpt, "main"), (args.baseline_ckpt, "baseline")):
        if path is None:
            continue
        model = Translator.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        if args.beam is not None:
            model.hparams.beam_size = args.beam
        if role == "main" and args.timesteps and model.hparams.cell != "modified":
            raise SystemExit(f"--ckpt is a cell={model.hparams.cell!r} model; the hybrid rows need cell='modified' "
                             "(give it as --baseline-ckpt, or pass --timesteps with no values)")  # fmt: skip
        data = _data(args, path)
        model.hparams.eval_mode = "ann"
        result = evaluate(model, data)
        record(model, "ann", 1, result)
        outputs[f"{role}-ann"] = result["translations"]
        if role == "main":
            samples: dict[str, list[str]] = {}
            for method, mode, values in (("hybrid", "hybrid", args.timesteps), ("datta-convert", "snn", args.datta_timesteps)):
                for t in values:
                    model.hparams.eval_mode, model.hparams.eval_timesteps = mode, t
                    result = evaluate(model, data)
                    record(model, method, t, result)
                    samples[f"{method}_T{t}"] = result["translations"]
                if values:  # each school's largest T goes into the samples
                    key = f"{method}_T{max(values)}"
                    samples = {k: v for k, v in samples.items() if not k.startswith(method) or k == key}
            keys = sorted(data.encoded("test").index)
            sources, refs = data.sources("test"), data.references("test")
            report["samples"] = [
                {"source": sources[k], "reference": refs[k], "non_spiking": outputs["main-ann"][i],
                 **{name: hyps[i] for name, hyps in samples.items()}}
                for i, k in enumerate(keys[: args.samples])
            ]  # fmt: skip
    save_outputs(rows, args.out_csv, report, args.out_json or f"benchmarks/out/translation_{args.dataset}{suffix}.json")
    return report


if __name__ == "__main__":
    main()
