"""The instruction files in data/ are well-formed one-turn conversations, the held-out ones never meet training
text (not even the FAQ sections they come from), a rebuild gives the same bytes, and the pretraining specs
still select text only."""
import json, subprocess, sys, unicodedata
from pathlib import Path
import pytest
from vikhr_nb.data import resolve_corpus, select_files, verify_manifest, word_ngrams

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/'data'
MANIFEST = json.loads((DATA/'manifest.json').read_text(encoding='utf-8'))
FILES = MANIFEST['files']
INSTR = [e for e in FILES if e['kind'] == 'instructions']
TASKS = {'faq', 'translate_ru_en', 'translate_en_ru', 'copy', 'command'}

def rows(path):
    with open(DATA/path, encoding='utf-8') as f: return [json.loads(l) for l in f]

def norm(s): return ' '.join(unicodedata.normalize('NFKC', s).casefold().split())

@pytest.fixture(scope='module')
def training():
    "{lang: (normalized blob, word 8-gram set)} over every training file of any kind, both sides of parallel ones"
    out = {}
    for lang in ('ru', 'en'):
        texts = []
        for e in FILES:
            if e['split'] != 'train' or lang not in e['lang'].split('-'): continue
            for r in rows(e['path']):
                if e['kind'] == 'instructions': texts += [m['content'] for m in r['messages']]
                elif e['kind'] == 'parallel': texts.append(r[lang])
                else: texts.append(r['text'])
        out[lang] = ('\n'.join(norm(t) for t in texts), set().union(*(word_ngrams(t) for t in texts)))
    return out

def leaks(text, train, share=0.5):
    "A text of at least 40 characters that is a normalized substring of training text, or half of whose word 8-grams are in it"
    blob, grams = train
    if len(text) < 40: return False
    g = word_ngrams(text)
    return norm(text) in blob or (bool(g) and len(g & grams) / len(g) >= share)

def test_files_and_specs():
    names = {e['path']: (e['lang'], e['split']) for e in INSTR}
    assert names == {'ru_instructions.jsonl': ('ru', 'train'), 'en_instructions.jsonl': ('en', 'train'),
                     'ru_en_instructions.jsonl': ('ru-en', 'train'), 'ru_instructions_heldout.jsonl': ('ru', 'heldout'),
                     'en_instructions_heldout.jsonl': ('en', 'heldout'), 'ru_en_instructions_heldout.jsonl': ('ru-en', 'heldout')}
    assert [r['path'].name for r in resolve_corpus('manifest:lang=ru,split=heldout,kind=instructions')] == ['ru_instructions_heldout.jsonl']
    assert [r['path'].name for r in resolve_corpus('manifest:lang=en,split=train,kind=instructions')] == ['en_instructions.jsonl']
    assert verify_manifest() == []

def test_pretraining_specs_select_the_same_kinds_as_before():
    "Adding instruction files (and the held-out FAQ sections) changes nothing a training or evaluation spec selects"
    def kinds(spec): return [(r['path'].name, r['kind']) for r in resolve_corpus(spec)]
    assert kinds('manifest:lang=ru,split=train') == [('ru_fortunes.jsonl', 'text'), ('ru_tech.jsonl', 'text')]
    assert kinds('manifest:lang=en,split=train') == [('en_fortunes.jsonl', 'text'), ('en_tech.jsonl', 'text')]
    assert kinds('manifest:lang=ru,split=heldout') == [('ru_heldout_manpages.jsonl', 'text')]
    assert kinds('manifest:lang=en,split=heldout') == [('en_heldout_fortunes.jsonl', 'text')]
    assert kinds('manifest:lang=ru,split=heldout,kind=task') == [('ru_mc_manpages.jsonl', 'task')]
    assert kinds('manifest:kind=parallel') == [('ru_en_parallel.jsonl', 'parallel')]
    assert {r['kind'] for r in resolve_corpus('manifest')} == {'text'}

def test_conversations_are_well_formed():
    for e in INSTR:
        rs, ids = rows(e['path']), set()
        assert len(rs) == e['documents'] >= 40, e['path']
        for r in rs:
            assert set(r) == {'id', 'task', 'messages'} and r['id'] not in ids and r['task'] in TASKS, (e['path'], r['id'])
            ids.add(r['id'])
            (u, a), = [r['messages']]
            assert [u['role'], a['role']] == ['user', 'assistant'] and set(u) == set(a) == {'role', 'content'}, r['id']
            assert u['content'].strip() == u['content'] and a['content'].strip() == a['content'] and a['content'], r['id']
            if r['task'] == 'copy': assert u['content'].endswith('\n\n' + a['content']), r['id']
            if r['task'].startswith('translate'): assert a['content'] not in u['content'], r['id']
            if r['task'] == 'faq': assert u['content'].endswith('?') and len(a['content']) <= 1500, r['id']
        assert {k: v for k, v in e['tasks'].items()} == {t: sum(r['task'] == t for r in rs) for t in {r['task'] for r in rs}}

def test_answers_are_real_text():
    "Every answer is text of the file the item says it comes from"
    src = {}
    for e in FILES:
        if e['kind'] in ('text', 'sections', 'parallel'):
            for r in rows(e['path']):
                for f in e['fields']: src.setdefault(r['id'], []).append(r[f])
    for e in INSTR:
        for r in rows(e['path']):
            doc = r['id'].rsplit(':', 1)[0]
            if r['task'] in ('copy', 'translate_ru_en', 'translate_en_ru'): doc = doc.rsplit(':', 1)[0]
            assert any(r['messages'][1]['content'] in t for t in src[doc]), r['id']

def test_heldout_never_meets_training(training):
    for e in (e for e in INSTR if e['split'] == 'heldout'):
        for r in rows(e['path']):
            for m in r['messages']:  # the request without its instruction line, and the answer
                text = m['content'].split('\n\n', 1)[-1] if m['role'] == 'user' else m['content']
                assert not any(leaks(text, training[l]) for l in e['lang'].split('-')), (e['path'], r['id'], m['role'])
    # the FAQ sections the held-out questions come from are in no training file, in either language
    for e in (e for e in FILES if e['kind'] == 'sections'):
        rs = rows(e['path'])
        assert rs, e['path']
        for r in rs:
            for f, lang in zip(e['fields'], e['lang'].split('-')):
                assert not leaks(r[f], training[lang]), (e['path'], r['id'])
    ids = {e['path']: {r['id'].split(':', 1)[1] for r in rows(e['path'])} for e in FILES if e['kind'] == 'sections'}
    assert ids['ru_faq_heldout.jsonl'] & ids['en_faq_heldout.jsonl']  # the same sections, in both languages
    for f in ('ru_tech.jsonl', 'en_tech.jsonl', 'ru_en_parallel.jsonl'):
        assert not {r['id'].split(':', 1)[1] for r in rows(f)} & set().union(*ids.values()), f

def test_rebuild_is_byte_identical():
    "data/build_instructions.py --check: rebuild from the shipped corpus into a temp dir, compare (a few seconds)"
    r = subprocess.run([sys.executable, str(DATA/'build_instructions.py'), '--check'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert 'byte-identical' in r.stdout
