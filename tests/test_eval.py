"Evaluation agrees with lm-eval on the shipped task, and its figures behave as they must on real models."
import glob, json, os, subprocess, sys, shutil
from pathlib import Path
import pytest, torch
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama, load_tokenizer
from vikhr_nb.eval import shared_context_logprobs, mc_accuracy, bits_per_char, generation_speed
from conftest import ROOT

@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('tinylm')
    tok = load_tokenizer('smollm2-135m-instruct')
    tiny_llama(len(tok), hidden_size=32, max_len=1024, seed=1).save_pretrained(d); tok.save_pretrained(d)
    return d

@pytest.mark.skipif(shutil.which('lm_eval') is None, reason='lm-eval is not installed (pip install -e ".[dev]")')
def test_mc_accuracy_matches_lm_eval_on_the_shipped_task(tiny_dir, tmp_path):
    "`lm_eval --model hf` on a saved model and configs/lm_eval/ gives the same log-likelihoods and accuracy as mc_accuracy."
    n = 6
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    r = subprocess.run(['lm_eval', '--model', 'hf', '--model_args', f'pretrained={tiny_dir},dtype=float32', '--include_path', 'configs/lm_eval',
                        '--tasks', 'ru_mc_manpages', '--device', 'cpu', '--limit', str(n), '--output_path', str(tmp_path), '--log_samples'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    samples = [json.loads(l) for l in open(glob.glob(str(tmp_path/'**'/'samples_ru_mc_manpages_*.jsonl'), recursive=True)[0])]
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_dir).eval(), AutoTokenizer.from_pretrained(tiny_dir)
    items = [s['doc'] for s in sorted(samples, key=lambda s: s['doc_id'])]
    for s, it in zip(sorted(samples, key=lambda s: s['doc_id']), items):
        theirs = [float(x[0]) for x in s['filtered_resps']]
        ours = shared_context_logprobs(model, tok, it['query'], [' ' + c for c in it['choices']])
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-2), it['id']
    acc = sum(s['acc'] for s in samples) / n
    assert mc_accuracy(model, tok, items)['acc'] == pytest.approx(acc)

def test_bits_per_char_counts_characters_and_bytes(smol):
    "Bits are divided by the text's characters (bpc) and UTF-8 bytes (bpb), not by its tokens."
    model, tok = smol
    text = ['Москва — столица России. ' * 3]
    r = bits_per_char(model, tok, text)
    assert r['n_chars'] == len(text[0]) and r['n_tokens'] > len(text[0]) / 4
    assert 0 < r['bpc'] < 8 and r['bpb'] < r['bpc']  # Cyrillic letters are two UTF-8 bytes

def test_bits_by_repeat_on_real_text(smol):
    "The split by repeated words covers every character and bit once, and the original model copies: a repeated word costs it far fewer bits."
    model, tok = smol
    from vikhr_nb.data import load_corpus
    texts = [t[:1500] for t in load_corpus('manifest:lang=ru,split=heldout')['text'][:4]]
    r = bits_per_char(model, tok, texts, block_size=256, by_repeat=True)
    assert r['repeated']['n_chars'] + r['other']['n_chars'] == r['n_chars']  # byte-level pieces of one letter are counted once
    assert r['repeated']['n_tokens'] + r['other']['n_tokens'] == r['n_tokens']
    assert r['repeated']['nll_bits'] + r['other']['nll_bits'] == pytest.approx(r['nll_bits'], rel=1e-6)
    assert r['nll_bits'] == pytest.approx(bits_per_char(model, tok, texts, block_size=256)['nll_bits'], rel=1e-6)
    assert 0.1 < r['repeated_share'] < 0.6
    assert r['bpc_repeated'] < 0.7 * r['bpc_other']

def test_bad_input(smol):
    model, tok = smol
    with pytest.raises(VikhrError, match='empty'): bits_per_char(model, tok, ['', ''])
    with pytest.raises(VikhrError, match='no prompts'): generation_speed(model, tok, [])
    with pytest.raises(VikhrError, match='one reference'): generation_speed(model, tok, ['a', 'b'], references=['c'])
    with pytest.raises(VikhrError, match='no items'): mc_accuracy(model, tok, [])
