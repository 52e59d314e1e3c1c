"""Shrink a Lightning checkpoint to what evaluation needs, for the trained models shipped in the repository.

Keeps the weights (with the layers' conversion state: mode, T, gates, encoding, shift, thresholds and
leaks), the hyper-parameters and the DataModule's hyper-parameters; drops the optimizer state, LR
schedulers, loop and callback state (a slim checkpoint evaluates, tests and starts new fine-tuning runs
through ``init_from``; it does not resume the run that wrote it). ``init_from`` is cleared so that
loading does not look for the run's own starting checkpoint.

    python benchmarks/slim_checkpoint.py runs/.../last.ckpt benchmarks/checkpoints/mnist_row/snn_T2.ckpt
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import torch

from snnlstm.checkpoint import load_checkpoint

#: checkpoint entries a slim checkpoint keeps
KEEP: tuple[str, ...] = (
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "hparams_name",
    "hyper_parameters",
    "datamodule_hparams_name",
    "datamodule_hyper_parameters",
)


def slim_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Write the evaluation-only part of checkpoint ``src`` to ``dst`` and return ``dst``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` is not a Lightning checkpoint (no ``state_dict``), is truncated or corrupt, or
            holds pickled code (:class:`~snnlstm.checkpoint.CheckpointError`).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"checkpoint {src} not found")
    ckpt = load_checkpoint(src)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{src} is not a Lightning checkpoint (no 'state_dict' entry)")
    slim = {key: ckpt[key] for key in KEEP if key in ckpt}
    if "init_from" in slim.get("hyper_parameters", {}):
        slim["hyper_parameters"] = {**slim["hyper_parameters"], "init_from": None}
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, dst)
    return dst


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="a Lightning checkpoint")
    parser.add_argument("dst", help="where to write the slim checkpoint")
    args = parser.parse_args(argv)
    try:
        out = slim_checkpoint(args.src, args.dst)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"{out}: {out.stat().st_size / 1024:.0f} KiB (from {os.path.getsize(args.src) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
