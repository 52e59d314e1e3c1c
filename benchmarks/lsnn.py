"""Sequential MNIST results of the LSNN with AHP neurons (Rao, Plank, Wild & Maass), with AHP on and off.

Evaluates :class:`snnlstm.models.LSNNClassifier` checkpoints trained with ``configs/lsnn_smnist.yaml``
(pixel-wise, threshold-crossing inputs and a cue) or ``configs/lsnn_row.yaml`` on the MNIST test set
(``../shared/data``; the input settings come from the checkpoint's DataModule hyper-parameters) and
records in ``benchmarks/results.csv`` per checkpoint: test accuracy, firing rate (all neurons, LIF and
AHP populations), synaptic operations per sample (AC, MAC) and the estimated compute energy per
inference (CMOS per-op model, :mod:`snnlstm.measure.energy`), plus the Loihi-style time steps per inference.
``--subset K`` evaluates a fixed, seeded subset of K test images (method ``lsnn-subsetK``).

    snnlstm fit --config configs/lsnn_smnist.yaml
    snnlstm fit --config configs/lsnn_smnist.yaml --config configs/presets/no_ahp.yaml
    python benchmarks/lsnn.py --ckpt AHP_CKPT NO_AHP_CKPT --names lsnn240-ahp lsnn240-no-ahp
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ponghiran import test_loader  # noqa: E402
from benchmarks.results import command_line, machine_description, save_outputs  # noqa: E402
from snnlstm.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from snnlstm.datamodules import SequentialMNIST  # noqa: E402
from snnlstm.measure.energy import E_AC_PJ, E_MAC_PJ  # noqa: E402
from snnlstm.models import LSNNClassifier  # noqa: E402
from snnlstm.evaluation.sweep import evaluate  # noqa: E402

#: DataModule settings taken from the checkpoint (everything else is this script's)
DATA_KEYS: tuple[str, ...] = ("variant", "image_size", "normalize", "mean", "std")


def load(path: str, parser: argparse.ArgumentParser) -> tuple[LSNNClassifier, dict[str, Any]]:
    """The model and the DataModule hyper-parameters of a checkpoint (clear error if it is not an LSNN)."""
    if not Path(path).is_file():
        parser.error(f"checkpoint {path!r} does not exist; train it with configs/lsnn_smnist.yaml first")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        parser.error(str(err))
    if "lsnn.weight_hh" not in checkpoint.get("state_dict", {}):
        parser.error(f"{path!r} is not an LSNNClassifier checkpoint")
    model = LSNNClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    data = {k: v for k, v in checkpoint.get("datamodule_hyper_parameters", {}).items() if k in DATA_KEYS}
    return model, data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", required=True, help="LSNNClassifier checkpoints")
    parser.add_argument("--names", nargs="+", default=None, help="model ids in results.csv, one per checkpoint")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--subset", type=int, default=0, help="evaluate a seeded subset of this many test images (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--out-csv", default="benchmarks/results.csv", help="results CSV ('' = do not record)")
    parser.add_argument("--out-json", default=None, help="full report (default benchmarks/out/lsnn_VARIANT.json)")
    args = parser.parse_args(argv)
    names = args.names or [Path(p).stem for p in args.ckpt]
    if len(names) != len(args.ckpt):
        parser.error(f"--names needs one name per checkpoint ({len(args.ckpt)}), got {len(names)}")
    command = command_line()
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"machine": machine_description(), "command": command, "models": {}}
    suffix = f"-subset{args.subset}" if args.subset else ""
    lines = ["| model | test accuracy % | firing rate (LIF / AHP) | AC / MAC per sample | energy per inference (µJ) | steps |",
             "|---|---|---|---|---|---|"]
    variant = None
    for path, name in zip(args.ckpt, names):
        model, data_hp = load(path, parser)
        data = SequentialMNIST(data_dir=args.data_dir, batch_size=args.batch_size, **data_hp)
        loader = test_loader(data, args.subset, args.seed, args.batch_size)
        variant = data.variant
        task = f"mnist-{variant}"
        start = time.perf_counter()
        acc, stats = evaluate(model, loader, data.num_classes)
        seconds = time.perf_counter() - start
        steps = data.seq_len + (model.encoder.cue_steps if model.encoder is not None else 0)
        energy_uj = stats["energy/snn_pj_per_sample"] / 1e6
        values = {
            "test_acc": acc,
            "firing_rate": stats["rate"],
            "firing_rate_lif": stats.get("l0.lif/rate"),
            "firing_rate_ahp": stats.get("l0.ahp/rate"),
            "ac_per_sample": stats["synops/ac_per_sample"],
            "mac_per_sample": stats["synops/mac_per_sample"],
            "energy_uj_per_sample": energy_uj,
            "energy_ratio": stats["energy_ratio"],
            "latency_steps": steps,
        }
        for metric, value in values.items():
            if value is not None:
                rows.append(dict(task=task, model=name, method="lsnn" + suffix, timesteps=1, metric=metric, value=value, seeds=1, command=command))
        report["models"][name] = {"checkpoint": path, "images": len(loader.dataset), "seconds": seconds, **values}
        lif, ahp = values["firing_rate_lif"], values["firing_rate_ahp"]
        rates = f"{values['firing_rate']:.4f} ({lif if lif is None else f'{lif:.4f}'} / {ahp if ahp is None else f'{ahp:.4f}'})"
        lines.append(f"| {name} | {acc:.2f} | {rates} | {values['ac_per_sample']:.3g} / {values['mac_per_sample']:.3g} | "
                     f"{energy_uj:.3f} | {steps} |")
        print(f"{name}: {acc:.2f}% on {len(loader.dataset)} images in {seconds:.0f} s", flush=True)
    print(f"(energy: {E_MAC_PJ} pJ/MAC, {E_AC_PJ} pJ/AC)\n" + "\n".join(lines), flush=True)
    save_outputs(rows, args.out_csv, report, args.out_json or f"benchmarks/out/lsnn_{variant}{suffix}.json")


if __name__ == "__main__":
    main()
