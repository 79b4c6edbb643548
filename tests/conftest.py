import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False, help='also run tests marked slow')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--runslow'): return
    skip = pytest.mark.skip(reason='slow: run with --runslow')
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)

@pytest.fixture(scope='session')
def smol():
    "The embedded default (model, tokenizer), loaded once per session."
    from vikhr_nb.models import load_model
    return load_model('smollm2-135m-instruct')

def run_vikhr(*args, env=None, timeout=600, cwd=None):
    "Run the `vikhr` command line in a subprocess; returns CompletedProcess."
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, '-c', 'import sys; from vikhr_nb.cli import main; sys.exit(main())', *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=cwd or ROOT)
