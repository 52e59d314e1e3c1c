#!/usr/bin/env bash
# Create the virtual environment $VENV with snnlstm's dependencies, or reuse it when it exists.
# The dependency install happens once per dependency hash (the directory name); the cheap
# editable install of this checkout is redone whenever the venv points at another checkout.
set -euo pipefail
: "${VENV:?VENV must be set}"
PYTHON="${PYTHON:-python3}"
here="$(pwd)"
if [ ! -f "$VENV/.deps-installed" ]; then
    echo "[snnlstm] creating virtual environment $VENV (first run for this dependency set: a few minutes)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    touch "$VENV/.deps-installed"
    echo "$here" > "$VENV/.source-dir"
else
    echo "[snnlstm] reusing virtual environment $VENV"
fi
if [ "$(cat "$VENV/.source-dir" 2>/dev/null)" != "$here" ]; then
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
    echo "$here" > "$VENV/.source-dir"
fi
