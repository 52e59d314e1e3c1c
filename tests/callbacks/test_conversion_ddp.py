import os
import subprocess
import sys

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_conversion_script.py")


@pytest.mark.slow
def test_ddp_ranks_calibrate_and_train_identical_thresholds(tmp_path) -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="offline")
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert r0["data_sum"] != r1["data_sum"]  # the ranks saw different batches ...
    assert r0["at_conversion"] == r1["at_conversion"]  # ... yet fitted the same thresholds
    assert r0["at_conversion"]["encoder"][0]["i.threshold"] != 4.0  # calibrated, not the default
    for key in r0["final"]:  # and fine-tuning kept them in step (gradients averaged)
        torch.testing.assert_close(r0["final"][key], r1["final"][key], msg=key)
