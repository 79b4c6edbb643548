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
# The site's browser test (tests/test_site.py) drives Debian's chromium through Playwright's Python
# package (never `playwright install`, which downloads a browser). Install it where we can; elsewhere
# say what is missing and go on: that test then fails with the same hint.
CHROMIUM=${VIKHR_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing Debian's chromium (for tests/test_site.py)"
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null; }; then
      echo "install.sh: apt-get could not install chromium: tests/test_site.py will fail until it is installed" >&2
    fi
  else
    echo "install.sh: no Chromium at $CHROMIUM and no root shell with apt-get to install it:" \
         "run 'sudo apt-get install chromium' (Debian) or set VIKHR_CHROMIUM to a Chromium or Chrome binary;" \
         "tests/test_site.py needs one" >&2
  fi
fi
"$PY" -c "import torch, vikhr_nb; print(f'install.sh: vikhr_nb {vikhr_nb.__version__} with torch {torch.__version__}')"
