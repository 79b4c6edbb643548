"""Another language, another script: `vikhr adapt` end to end on a tiny model for Japanese (written without spaces,
kana + kanji), from the real Japanese corpus in data/ (data/ja/manifest.json, built by `data/build_corpus.py --lang ja`)."""
import json
from pathlib import Path
import pytest, yaml
from vikhr_nb.data import data_dir, load_corpus, lang_script, text_script, script_share, filter_script, verify_manifest
from vikhr_nb.metrics import NO_WORDS
from vikhr_nb.models import tiny_llama, load_tokenizer
from conftest import run_vikhr

JA = data_dir()/'ja'/'manifest.json'

def test_japanese_corpus_is_real_and_pinned():
    "The shipped Japanese files match their manifest, are Japanese by script, and the held-out file is no training text."
    assert verify_manifest(JA) == []
    m = json.loads(JA.read_text(encoding='utf-8'))
    assert {(e['path'], e['lang'], e['split'], e['kind']) for e in m['files']} == {
        ('ja_tech.jsonl', 'ja', 'train', 'text'), ('ja_faq_heldout.jsonl', 'ja', 'heldout', 'text')}
    for s in m['sources']:  # each package's copyright file, in the shared data/licences/
        c = (JA.parent/s['copyright']).resolve()
        assert c.is_file() and c.parent == (data_dir()/'licences').resolve() and len(s['sha256']) == 64, s['package']
    for e in m['files']: assert all((JA.parent/lf).is_file() for lf in e['licence_files']), e['path']
    train = load_corpus(f'{JA}:lang=ja,split=train')['text']
    held = load_corpus(f'{JA}:lang=ja,split=heldout')['text']
    assert not set(held) & set(train)
    assert text_script(held) == 'Japanese' == lang_script('ja')
    # Han alone is a minority of Japanese letters: a single-script filter would throw the corpus away, the group keeps it
    assert script_share(''.join(held), 'Han') < 0.5 < script_share(''.join(held), lang_script('ja'))
    from datasets import Dataset
    kept = lambda script: len(filter_script(Dataset.from_dict({'text': held}), script))
    assert kept(lang_script('ja')) >= 0.9 * len(held) > 2 * kept('Han')  # a few sections are mostly command names (Latin)

def ja_config(model_dir, out):
    # no script given: 'auto' takes it from the language, 'Japanese' (Han + Hiragana + Katakana), which checks and filters
    # the corpus and decides which new tokens extend may add (those holding a Japanese letter)
    return {'name': 'tiny-ja', 'model': str(model_dir), 'out_dir': str(out), 'language': 'ja',
            'data': {'target': [f'{JA}:lang=ja,split=train'], 'replay': ['manifest:lang=en,split=train'],
                     'heldout': {'ja': [f'{JA}:lang=ja,split=heldout'], 'en': ['manifest:lang=en,split=heldout']},
                     'tasks': {}, 'instructions': [], 'calibration_prompts': {}, 'heldout_instructions': {},
                     'max_replay_chars': 50_000, 'eval_max_chars': 2000},
            'tokenizer': {'vocab_size': 2000},
            'embeddings': {'fit_tokens': 2000, 'fit_replay_tokens': 500},
            'train': {'mode': 'embeddings', 'max_steps': 2, 'batch_size': 2, 'block_size': 64, 'lr': 1e-3, 'replay_ratio': 0.25,
                      'eval_data': [], 'replay_eval_data': [], 'tracker': 'none', 'progress': False},
            'sft': {'enabled': False},
            'eval': {'block_size': 512, 'batch_size': 2, 'speed_prompts': 1, 'prompt_chars': 40, 'reference_chars': 60, 'max_new_tokens': 4,
                     'chat': False}}

def test_vikhr_adapt_japanese_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path/'run'
    cfg = tmp_path/'ja.yaml'; cfg.write_text(yaml.safe_dump(ja_config(tiny_model_dir, out)), encoding='utf-8')
    r = run_vikhr('adapt', cfg)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out/'report.json').read_text(encoding='utf-8'))
    assert rep['language'] == 'ja' and rep['vocab_size']['adapted'] > rep['vocab_size']['original']
    tok = rep['tokenizer']
    # the adapted tokenizer spends far fewer tokens on held-out Japanese (the FAQ, never trained on)
    assert tok['adapted']['ja']['chars_per_token'] > 1.5 * tok['original']['ja']['chars_per_token'], tok
    # no words to count in Japanese: said so, not a number; English still has its tokens per word
    for st in ('original', 'adapted'):
        assert tok[st]['ja']['tokens_per_word'] is None and tok[st]['ja']['words'] == NO_WORDS
        assert isinstance(tok[st]['en']['tokens_per_word'], float)
    same = lambda d: {k: v for k, v in d.items() if k not in ('vocab_use', 'vocab_size')}
    assert same(tok['adapted']['en']) == same(tok['original']['en'])  # extend: English tokenized exactly as before
    for st in ('original', 'init', 'trained'): assert isinstance(rep['bpc'][st]['ja'], float), st
    md = (out/'report.md').read_text(encoding='utf-8')
    assert f'| ja: tokens per word | {NO_WORDS} |' in md
    assert 'ja: characters per second, same text' in md and 'ja: words per second' not in md
    assert rep['speed_check'] is None or rep['speed_check']['per'] == 'chars_per_s'
    for f in ('eval/bpc.png', 'eval/tokens_per_word.png', 'eval/speed.png'): assert (out/f).exists(), f
