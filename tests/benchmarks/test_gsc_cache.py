"""The feature-cache benchmark on a tiny synthetic release."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from benchmarks import gsc_cache


@pytest.mark.slow
def test_synthetic_release_and_measurement(tmp_path: Path) -> None:
    out = gsc_cache.main(["--clips", "40", "--num-workers", "0", "--out-json", str(tmp_path / "c.json"), "--out-csv", str(tmp_path / "r.csv")])
    (res,) = out
    train = [k for k in range(40) if k % 10 not in (0, 1)]  # every 10th clip validation, every 10th+1 test
    known = sum(k % len(gsc_cache.WORDS) < 10 for k in train)  # the ten command words come first
    assert res["clips"] == known + 2 * math.ceil(0.1 * known)  # kws12: + 10% unknown + 10% silence
    assert res["clips_per_s"] > 0 and res["peak_rss_mib"] > 0
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["metric"] for r in rows} == {"clips_per_s", "peak_rss_mib"} and rows[0]["model"] == f"synthetic-{res['clips']}-clips"
