"""Read what an offline wandb run wrote (used by the logger tests)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any


def read_wandb_offline(run_dir: Path, expect: tuple[str, ...] = (), timeout: float = 20.0) -> dict[str, Any]:
    """Last logged value of every history key of an offline wandb run.

    ``expect``: keys to wait for (up to ``timeout`` seconds): wandb's service process writes the
    transaction log asynchronously, and on a loaded machine the last records can land after
    ``finish()`` returns.

    wandb 0.31 writes no ``files/wandb-summary.json`` offline (only at sync), so the records are read
    from the run's transaction log ``run-*.wandb``: a 7-byte file header, then 32 KiB blocks of
    LevelDB-log chunks (``<crc:u32, length:u16, type:u8>`` + payload; type 1 = full, 2/3/4 =
    first/middle/last fragment) holding serialized ``wandb_internal_pb2.Record`` messages.
    """
    deadline = time.monotonic() + timeout
    while True:
        values = _read_once(run_dir)
        if all(key in values for key in expect) or time.monotonic() > deadline:
            return values
        time.sleep(0.2)


def _read_once(run_dir: Path) -> dict[str, Any]:
    summary_json = run_dir / "files" / "wandb-summary.json"
    if summary_json.exists():
        return json.loads(summary_json.read_text())
    from wandb.proto import wandb_internal_pb2

    (log,) = run_dir.glob("run-*.wandb")
    data, block, pos = log.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    payloads, buf = [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if kind == 0:  # block trailer / padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            payloads.append(buf)
    values: dict[str, Any] = {}
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return values
