#!/usr/bin/env bash
# Run every check CI runs: the notebooks and the package agree, the README is generated from
# nbs/index.ipynb, the notebook tests (nbdev-test) and the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export TOKENIZERS_PARALLELISM=false
echo "== notebooks, package and README in sync"
nbdev-export
nbdev-clean
"$PY" tools/make_readme.py
if ! git diff --exit-code --stat -- nbs vikhr_nb README.md; then
  echo "test.sh: nbdev-export / nbdev-clean / tools/make_readme.py changed tracked files above: run them and commit." >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- vikhr_nb)
if [ -n "$untracked" ]; then echo "test.sh: nbdev-export wrote untracked modules: $untracked" >&2; exit 1; fi
echo "== notebook tests (nbdev-test; cells flagged slow/gpu/hub are skipped)"
nbdev-test --n-workers "${VIKHR_NB_WORKERS:-2}" --timing
echo "== pytest"
"$PY" -m pytest -q "$@"
