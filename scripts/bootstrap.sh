#!/usr/bin/env bash
# Set up ./.venv with rag-k8s and its test dependencies, offline-capable afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$(uname -s)" = "Linux" ]; then
  # The CPU build of torch first: a plain resolve pulls several GB of CUDA packages.
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[test,models]"
mkdir -p logs
echo "bootstrap: .venv ready ($(.venv/bin/python --version))" >&2
