"""SpikeMonitor under 2-process CPU DDP: no Lightning ``sync_dist`` warnings, rank-identical numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_spike_monitor_script.py")
#: Lightning's warning for an epoch-level tensor logged without ``sync_dist=True`` under DDP
SYNC_WARNING = re.compile(r"self\.log\('([^']+)', \.\.\., sync_dist=True\)")


@pytest.mark.slow
def test_ddp_monitor_logs_without_sync_dist_warnings(tmp_path: Path) -> None:
    env = dict(os.environ, WANDB_MODE="offline")
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for r, rank in enumerate(ranks):
        keys = {m.group(1) for w in rank["warnings"] for m in [SYNC_WARNING.search(w)] if m}
        if r == 0:  # the module's own unsynced log warns (on rank 0 only): the warnings were captured
            assert "val_loss" in keys
        monitor_keys = sorted(k for k in keys if k.split("/", 1)[0] in ("train", "val", "test"))
        assert monitor_keys == []
    assert ranks[0]["latest"] == ranks[1]["latest"]  # the monitor's numbers are the all-process sums
    assert ranks[0]["latest"]["test"]["spikes/lstm/count/samples"] == 64  # both ranks' halves
    for rank in ranks:  # and Lightning logged them unchanged (the max of identical values)
        assert rank["callback_metrics"]["test/energy_ratio"] == pytest.approx(rank["latest"]["test"]["energy_ratio"])
