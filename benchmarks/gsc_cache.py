"""Speed and peak memory of the Speech Commands feature cache on a synthetic release of N clips.

The real corpus (~105k clips in v0.02) cannot be downloaded here, so this writes N one-second 16 kHz
16-bit WAV clips in the published layout (10 command words + 5 other words, list files, background
noise) and times :meth:`SpeechCommands.build_cache` on the training split, in a fresh process per N so
that the peak resident memory (``ru_maxrss``) is the cache build's own. Memory that stays flat as N grows
is the bounded-memory claim; clips/s extrapolates to the full corpus::

    python benchmarks/gsc_cache.py --clips 2000 8000 --num-workers 0 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results import DEFAULT_PATH, command_line, record  # noqa: E402

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed", "cat", "dog", "wow", "tree")


def write_release(root: Path, clips: int, seed: int = 0) -> None:
    """``clips`` tone-plus-noise clips spread over :data:`WORDS`; every 10th clip validation, every 10th+1 test."""
    rng = np.random.default_rng(seed)
    t = np.arange(16_000) / 16_000
    val, test = [], []
    for k in range(clips):
        word = WORDS[k % len(WORDS)]
        name = f"{word}/{k:08x}_nohash_0.wav"
        x = 0.4 * np.sin(2 * np.pi * (200 + 100 * (k % len(WORDS))) * t) + 0.05 * rng.standard_normal(t.size)
        (root / word).mkdir(parents=True, exist_ok=True)
        with wave.open(str(root / name), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16_000)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        (val if k % 10 == 0 else test if k % 10 == 1 else []).append(name)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir(exist_ok=True)
    with wave.open(str(root / "_background_noise_" / "white_noise.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16_000)
        w.writeframes((0.3 * rng.standard_normal(60 * 16_000) * 32767).clip(-32768, 32767).astype("<i2").tobytes())


def measure(release: str, num_workers: int) -> dict[str, Any]:
    """Builds the training cache in this process; returns clips, seconds and peak RSS (MiB)."""
    from snnlstm.datamodules import SpeechCommands

    dm = SpeechCommands(data_dir=release, class_set="kws12", num_workers=num_workers, cache_dir=tempfile.mkdtemp())
    start = time.perf_counter()
    path = dm.build_cache("train")
    seconds = time.perf_counter() - start
    clips = len(dm.clips()["train"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return dict(clips=clips, seconds=seconds, clips_per_s=clips / seconds, peak_rss_mib=peak, worker_peak_rss_mib=children,
                cache_mib=path.stat().st_size / 2**20, num_workers=num_workers)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, nargs="+", default=[2000, 8000])
    p.add_argument("--num-workers", type=int, nargs="+", default=[0])
    p.add_argument("--out-json", default="benchmarks/out/gsc_cache.json")
    p.add_argument("--out-csv", default=str(DEFAULT_PATH), help="results CSV to upsert into ('' = do not record)")
    p.add_argument("--measure", nargs=2, metavar=("RELEASE", "WORKERS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:  # child process
        print(json.dumps(measure(args.measure[0], int(args.measure[1]))))
        return []
    results = []
    for n in args.clips:
        with tempfile.TemporaryDirectory() as tmp:
            write_release(Path(tmp), n)
            for workers in args.num_workers:
                out = subprocess.run([sys.executable, __file__, "--measure", tmp, str(workers)], check=True, capture_output=True, text=True)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(res)
                print(
                    f"{res['clips']:>6} training clips, {workers} workers: {res['seconds']:.1f} s ({res['clips_per_s']:.0f} clips/s), "
                    f"peak RSS {res['peak_rss_mib']:.0f} MiB (workers {res['worker_peak_rss_mib']:.0f} MiB), cache {res['cache_mib']:.0f} MiB",
                    flush=True,
                )
    if args.out_json:
        Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_json).write_text(json.dumps(results, indent=2))
    if args.out_csv:
        command = command_line(list(sys.argv[1:] if argv is None else argv), script=__file__)
        rows = []
        for res in results:
            base = dict(task="gsc", model=f"synthetic-{res['clips']}-clips", method=f"feature-cache-{res['num_workers']}-workers")
            for metric in ("clips_per_s", "peak_rss_mib"):
                rows.append({**base, "timesteps": "", "metric": metric, "value": res[metric], "seeds": 1, "command": command})
        record(rows, args.out_csv)
    return results


if __name__ == "__main__":
    main()
