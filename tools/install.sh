#!/usr/bin/env bash
# Install vikhr_nb (editable, with the dev extras) into the current Python.
# Where no torch is installed, first put a pinned torch release in place: a bare `torch` requirement
# would pull the newest multi-GB CUDA build. Where torch is already installed (Colab), keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_PIN=${VIKHR_TORCH:-torch==2.13.0}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "install.sh: no torch found, installing $TORCH_PIN first"
  "$PY" -m pip install --disable-pip-version-check -q "$TORCH_PIN"
fi
"$PY" -m pip install --disable-pip-version-check -q -e ".[dev]"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
"$PY" -c "import torch, vikhr_nb; print(f'install.sh: vikhr_nb {vikhr_nb.__version__} with torch {torch.__version__}')"
