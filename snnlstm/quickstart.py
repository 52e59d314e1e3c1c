"""``python -m snnlstm.quickstart``: fit -> convert -> fine-tune -> test, then a short report.

Runs ``snnlstm fit`` with a config whose :class:`~snnlstm.callbacks.ANNToSNNConversion` saves the
pre-trained ANN (``save_ann_checkpoint: true``), tests the converted spiking model and that ANN on
the test set, and prints both accuracies with the spike sparsity and estimated energy ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from .cli import cli_main


def _find(callbacks: list[Any], type_name: str) -> Any:
    for cb in callbacks:
        if type(cb).__name__ == type_name:
            return cb
    raise ValueError(f"the config has no {type_name} callback; the quickstart needs one")


def run(config: str, root_dir: str) -> dict[str, float]:
    """Fit and test as described in the module docstring; returns the reported numbers."""
    start = time.perf_counter()
    cli = cli_main(["fit", "--config", config, "--trainer.default_root_dir", root_dir])
    fit_seconds = time.perf_counter() - start
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    conversion = _find(trainer.callbacks, "ANNToSNNConversion")
    monitor = _find(trainer.callbacks, "SpikeMonitor")
    if not conversion.converted or conversion.ann_checkpoint_path is None:
        raise RuntimeError("the model was not converted during fit: lower the conversion epoch or raise max_epochs")
    snn = trainer.test(model, datamodule=data, verbose=False)[0]
    snn_spikes = dict(monitor.latest.get("test", {}))
    ann = trainer.test(model, datamodule=data, ckpt_path=conversion.ann_checkpoint_path, verbose=False)[0]
    for logger in trainer.loggers:  # flush and close wandb runs so their offline files are complete
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
    report = {
        "ann_test_acc": 100 * ann["test/acc"],
        "snn_test_acc": 100 * snn["test/acc"],
        "timesteps": float(model.lstm.timesteps) if hasattr(model, "lstm") else float("nan"),
        "snn_sparsity": snn_spikes.get("sparsity", float("nan")),
        "snn_firing_rate": snn_spikes.get("firing_rate", float("nan")),
        "snn_energy_ratio": snn_spikes.get("energy_ratio", float("nan")),
        "fit_seconds": fit_seconds,
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--root-dir", default="runs/quickstart")
    args = parser.parse_args(argv)
    report = run(args.config, args.root_dir)
    os.makedirs(args.root_dir, exist_ok=True)
    with open(os.path.join(args.root_dir, "quickstart-report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print("\n== snnlstm quickstart ==")
    print(f"test accuracy, non-spiking LSTM (before conversion): {report['ann_test_acc']:.2f}%")
    print(f"test accuracy, spiking LSTM (T={report['timesteps']:.0f}, after fine-tuning): {report['snn_test_acc']:.2f}%")
    print(f"spike sparsity: {report['snn_sparsity']:.3f} (firing rate {report['snn_firing_rate']:.3f})")
    print(f"estimated compute energy, non-spiking / spiking: {report['snn_energy_ratio']:.2f}x")
    print(f"fit time: {report['fit_seconds']:.0f} s; report: {os.path.join(args.root_dir, 'quickstart-report.json')}")


if __name__ == "__main__":
    main()
