"""A stage killed for real (SIGKILL, no cleanup of any kind) at a random moment, then run again, gives byte for byte what an
uninterrupted run gives, and leaves no temporary directory behind: `vikhr tokenizer adapt` and `vikhr embed --fit-head`.
(The training stage's kill-and-resume test is `test_train_resume.py`.)"""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import ROOT
from vikhr_nb.core import OUTPUT_RECORD, RECORD_FILES
from vikhr_nb.tokenizer import MAPPING_FILE
from vikhr_nb.models import tiny_llama, load_tokenizer

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
CMD = [sys.executable, '-c', 'import sys; from vikhr_nb.cli import main; sys.exit(main())']

def _untimed(x):
    "A record without what differs between two runs by nature: timings, dates, and the output path it was given."
    if isinstance(x, dict): return {k: _untimed(v) for k, v in x.items() if k != 'out' and not any(w in k for w in ('second', 'time', 'date', 'written'))}
    return [_untimed(v) for v in x] if isinstance(x, list) else x

def files(d):
    "Every file of an output directory: its bytes, or for a record file its content without the timings and dates it holds."
    return {str(p.relative_to(d)): _untimed(json.loads(p.read_text())) if p.name in RECORD_FILES and p.name != MAPPING_FILE else p.read_bytes()
            for p in sorted(Path(d).rglob('*')) if p.is_file()}

def hidden(d): return sorted(p.name for p in Path(d).iterdir() if p.name.startswith('.'))

def run(args, timeout=600):
    r = subprocess.run(CMD + [str(a) for a in args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]

def kill_then_rerun(args, out:Path, ref:Path, seconds:float, seed:int):
    "Start `vikhr ARGS --out out`, SIGKILL it at a seeded random moment of its `seconds`, or as its temporary output appears; rerun; compare."
    moments = [('random', random.Random(seed).uniform(0.4, 0.95) * seconds), ('while writing', None)]
    reruns = 0
    for how, at in moments:
        p = subprocess.Popen(CMD + [str(a) for a in args] + ['--out', str(out)], cwd=ROOT, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        try:
            while p.poll() is None:
                if at is not None and time.time() - t0 >= at: break
                if at is None and any(n.startswith(f'.{out.name}.tmp-') for n in hidden(out.parent)): break  # the atomic write has begun
                time.sleep(0.002)
        finally: p.kill(); p.wait()
        if not out.exists(): run(list(args) + ['--out', out]); reruns += 1  # killed before its output was in place: run it again
        # else it was killed after the rename: then the output must be whole (nothing half-written ever has the final name)
        assert files(out) == files(ref), how
        assert hidden(out.parent) == [], f'{how}: leftovers {hidden(out.parent)}'
        assert (out/OUTPUT_RECORD).is_file()
        import shutil; shutil.rmtree(out)
    assert reruns >= 1, 'no kill came before the output was in place: nothing was resumed'

@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny')
    tok = load_tokenizer('smollm2-135m-instruct')
    m = tiny_llama(len(tok), hidden_size=32, n_layers=2, n_heads=4, max_len=1024)
    m.save_pretrained(d); tok.save_pretrained(d)
    return d

def test_killed_tokenizer_and_embeddings_give_the_uninterrupted_result(tmp_path, tiny_model):
    tok_args = ['tokenizer', 'adapt', '--base', 'smollm2-135m-instruct', '--corpus', 'manifest:lang=ru,split=train',
                '--mode', 'extend', '--vocab-size', '2000']
    (tmp_path/'ref').mkdir(); (tmp_path/'runs').mkdir()
    t0 = time.time(); run(tok_args + ['--out', tmp_path/'ref'/'tok']); secs = time.time() - t0
    kill_then_rerun(tok_args, tmp_path/'runs'/'tok', tmp_path/'ref'/'tok', secs, seed=1)
    emb_args = ['embed', '--model', tiny_model, '--tokenizer', tmp_path/'ref'/'tok', '--method', 'mean', '--fit-head',
                '--corpus', 'manifest:lang=ru,split=train', '--fit-tokens', '3000']
    t0 = time.time(); run(emb_args + ['--out', tmp_path/'ref'/'emb']); secs = time.time() - t0
    kill_then_rerun(emb_args, tmp_path/'runs'/'emb', tmp_path/'ref'/'emb', secs, seed=2)
