"""ParallelText under 2-process CPU DDP: training batches are sharded, test BLEU covers the whole split."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_translation_script.py")


@pytest.mark.slow
def test_ddp_ranks_train_on_disjoint_batches_and_test_on_every_pair(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = ["ein", "hund", "mann", "läuft", "zwei", "hunde"]
    src = [" ".join(words[(i + k) % 6] for k in range(2 + i % 3)) for i in range(32)]
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
        (corpus / f"{split}.en").write_text("\n".join(s.upper() for s in src) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="offline")
    env.pop("LOCAL_RANK", None)
    result = subprocess.run([sys.executable, SCRIPT, str(corpus), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert len(r0["seen"]) == len(r1["seen"]) == 16  # 8 batches of 4 pairs, 4 per rank
    assert sorted(r0["seen"] + r1["seen"]) == list(range(32))  # disjoint, and together all of them
    assert r0["test_pairs"] == r1["test_pairs"] == 32 and r0["bleu"] == r1["bleu"]
