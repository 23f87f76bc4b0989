#!/usr/bin/env bash
# Create .venv and install the project with everything the quickstart and the tests need.
# Safe to re-run. The CPU build of torch is installed first, pinned, so no dependency range
# pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip wheel setuptools
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[service,train,dev]"
