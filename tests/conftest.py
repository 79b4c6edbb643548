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

@pytest.fixture(scope='module')
def tiny_model_dir(tmp_path_factory):
    "A tiny random Llama with the real SmolLM2 tokenizer (built here, never fetched): the pipeline's stages run for real, in seconds."
    from vikhr_nb.models import tiny_llama, load_tokenizer
    d = tmp_path_factory.mktemp('tiny')
    tok = load_tokenizer('smollm2-135m-instruct')
    m = tiny_llama(len(tok), hidden_size=32, n_layers=2, n_heads=4, max_len=1024)
    m.config.bos_token_id, m.config.eos_token_id, m.config.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    m.save_pretrained(d); tok.save_pretrained(d)
    return d

def run_vikhr(*args, env=None, timeout=600, cwd=None):
    "Run the `vikhr` command line in a subprocess; returns CompletedProcess."
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, '-c', 'import sys; from vikhr_nb.cli import main; sys.exit(main())', *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=cwd or ROOT)
