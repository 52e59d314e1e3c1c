"""Record benchmark results in one CSV (``benchmarks/results.csv``) that BENCHMARKS.md is built from.

Every row has the columns :data:`RESULT_COLUMNS`. :func:`record` upserts: a row whose
``(task, model, method, timesteps, metric)`` matches an existing one replaces it in place, new rows
are appended, all other rows are kept. The file is locked while it is rewritten so that several
benchmark scripts may record into it at the same time.
"""

from __future__ import annotations

import csv
import json
import fcntl
import io
import math
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

RESULT_COLUMNS: tuple[str, ...] = ("task", "model", "method", "timesteps", "metric", "value", "seeds", "command")
#: columns that identify a result; a recorded row with the same key replaces the old one
KEY_COLUMNS: tuple[str, ...] = ("task", "model", "method", "timesteps", "metric")
#: repository root (the parent of ``benchmarks/``)
REPO_ROOT: Path = Path(__file__).resolve().parents[1]
DEFAULT_PATH: Path = REPO_ROOT / "benchmarks" / "results.csv"


def format_value(value: Any) -> str:
    """Format one cell: floats to 4 significant digits (no exponent between 1e-4 and 1e15), ``None`` to "".

    Args:
        value: a number, string, ``None`` or anything with a sensible ``str``.

    Returns:
        The cell text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0.0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        if not -4 <= magnitude < 15:
            return f"{value:.4g}"
        decimals = max(0, 3 - magnitude)
        text = f"{value:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _validate(row: Mapping[str, Any]) -> None:
    keys = set(row)
    missing = [c for c in RESULT_COLUMNS if c not in keys]
    extra = sorted(keys - set(RESULT_COLUMNS))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unknown column(s) {extra}")
        raise ValueError(f"bad result row {dict(row)!r}: {'; '.join(parts)}; expected {list(RESULT_COLUMNS)}")


def _key(row: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)


def _parse(text: str, path: Path) -> list[dict[str, str]]:
    """Rows of an existing results file; a file without a header line is accepted."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if rows and tuple(rows[0]) == RESULT_COLUMNS:
        rows = rows[1:]
    out = []
    for lineno, r in enumerate(rows, start=1):
        if len(r) != len(RESULT_COLUMNS):
            raise ValueError(
                f"{path}: row {lineno} has {len(r)} fields, expected {len(RESULT_COLUMNS)} ({', '.join(RESULT_COLUMNS)}): {r}"
            )
        out.append(dict(zip(RESULT_COLUMNS, r)))
    return out


def record(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
    """Upsert result rows into a CSV file (created with a header if missing).

    Args:
        rows: dicts with exactly the keys :data:`RESULT_COLUMNS`; values are formatted with
            :func:`format_value`. Within ``rows`` a later row with the same key wins.
        path: the CSV file; relative paths are taken from the current directory.

    Returns:
        The path written.

    Raises:
        ValueError: a row has missing or unknown columns (nothing is written), or the existing file
            is not a results table.
    """
    rows = list(rows)
    for row in rows:
        _validate(row)
    new = [{c: format_value(row[c]) for c in RESULT_COLUMNS} for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", newline="", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.seek(0)
            existing = _parse(fh.read(), path)
            index = {_key(r): i for i, r in enumerate(existing)}
            for row in new:
                key = _key(row)
                if key in index:
                    existing[index[key]] = row
                else:
                    index[key] = len(existing)
                    existing.append(row)
            fh.seek(0)
            fh.truncate()
            writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(existing)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return path


def save_outputs(rows: Iterable[Mapping[str, Any]], out_csv: str | None, report: Mapping[str, Any], out_json: str) -> None:
    """Record ``rows`` in ``out_csv`` (skipped when ``out_csv`` is empty) and write ``report`` as JSON."""
    if out_csv:
        record(rows, out_csv)
    path = Path(out_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")


def read_results(path: str | os.PathLike[str] = DEFAULT_PATH) -> list[dict[str, str]]:
    """All rows of a results file (empty list when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return _parse(path.read_text(encoding="utf-8"), path)


def _script_argument(script: str | os.PathLike[str]) -> str:
    resolved = Path(script).resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(resolved)


def command_line(argv: Sequence[str] | None = None, script: str | os.PathLike[str] | None = None) -> str:
    """The command that reproduces the current run, run from the repository root.

    A script inside the repository is named by its path relative to the root
    (``python benchmarks/step_time.py --repeats 10``), also when it was started with ``python -m``.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        script: the script file (default: the ``__main__`` module's file, else its module name).

    Returns:
        A shell-quoted command line starting with ``python``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if script is None:
        main = sys.modules.get("__main__")
        script = getattr(main, "__file__", None)
        if script is None:
            spec = getattr(main, "__spec__", None)
            if spec is not None and spec.name:
                return shlex.join(["python", "-m", spec.name, *args])
            return shlex.join(["python", *args])
    return shlex.join(["python", _script_argument(script), *args])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(processes: int = 1) -> str:
    """One line describing where a benchmark ran, for BENCHMARKS.md.

    Example: ``"2-core x86_64 CPU (Intel(R) Xeon(R) Processor), torch 2.11.0, 2 threads, 1 process"``.

    Args:
        processes: processes the benchmark used.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    return (
        f"{cores}-core {platform.machine()} CPU ({_cpu_model()}), torch {torch.__version__}, "
        f"{threads} thread{'s' if threads != 1 else ''}, {processes} process{'es' if processes != 1 else ''}"
    )
