"""The shipped corpus (data/) is what its manifest says, the held-out set never leaks into training,
and the data module fails on bad input with a message that says what to do."""
import hashlib, importlib.util, json, os, re, shutil, socket, subprocess, sys, threading, time
from pathlib import Path
import pytest
from vikhr_nb.core import VikhrError
from vikhr_nb.data import (clean_text, corpus_overlap, data_dir, detect_lang, load_corpus, load_manifest, resolve_corpus,
                           select_files, text_key, verify_manifest)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/'data'
MANIFEST = json.loads((DATA/'manifest.json').read_text(encoding='utf-8'))
FILES = MANIFEST['files']

def read_rows(entry):
    with open(DATA/entry['path'], encoding='utf-8') as f: return [json.loads(l) for l in f]

@pytest.fixture(scope='module')
def corpus():
    "{file name: list of records} for every manifest entry"
    return {e['path']: read_rows(e) for e in FILES}

def strs(v):
    "The strings in a field value: a text, or the texts of a list (choices); none for an index (gold)"
    return [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []

def texts(corpus, entry):
    "Every text of a file, all text fields (both sides of a parallel file, query and choices of a task)"
    return [x for r in corpus[entry['path']] for f in entry['fields'] for x in strs(r[f])]

def text_fields(entry): return [f for f in entry['fields'] if f not in ('choices', 'gold', 'messages')]  # conversations: tests/test_instructions.py

# ---------------------------------------------------------------- the manifest

def test_manifest_describes_every_file():
    on_disk = sorted(p.name for p in DATA.glob('*.jsonl'))
    assert sorted(e['path'] for e in FILES) == on_disk
    for e in FILES:
        assert e['lang'] in ('ru', 'en', 'ru-en') and e['split'] in ('train', 'heldout') and e['kind'] in ('text', 'parallel', 'task', 'sections', 'instructions'), e['path']
        assert e['source'] and e['licence'] and len(e['sha256']) == 64
        for s in e['sources']: assert e['source'].count(f"{s['package']} {s['version']}") == 1
        for lf in e['licence_files']: assert (DATA/lf).is_file(), lf
    assert [e['path'] for e in FILES if e['split'] == 'heldout'] == ['ru_heldout_manpages.jsonl', 'en_heldout_fortunes.jsonl', 'ru_mc_manpages.jsonl',
        'ru_faq_heldout.jsonl', 'en_faq_heldout.jsonl', 'ru_en_faq_heldout.jsonl',  # the held-out FAQ sections (kind 'sections')
        'ru_instructions_heldout.jsonl', 'en_instructions_heldout.jsonl', 'ru_en_instructions_heldout.jsonl']
    for s in MANIFEST['sources']:
        assert re.fullmatch(r'[0-9a-f]{64}', s['sha256']) and s['version'] and (DATA/s['copyright']).is_file(), s['package']

def test_sha256_and_counts_match_files(corpus):
    for e in FILES:
        p = DATA/e['path']
        assert hashlib.sha256(p.read_bytes()).hexdigest() == e['sha256'], e['path']
        assert p.stat().st_size == e['bytes'], e['path']
        tx = texts(corpus, e)
        assert len(corpus[e['path']]) == e['documents'], e['path']
        assert sum(map(len, tx)) == e['characters'], e['path']
        assert sum(len(t.split()) for t in tx) == e['words'], e['path']
    assert verify_manifest() == []

def test_corpus_is_small():
    assert sum((DATA/e['path']).stat().st_size for e in FILES) < 20e6

# ---------------------------------------------------------------- the files

def test_files_are_clean_utf8_jsonl():
    for e in FILES:
        raw = (DATA/e['path']).read_bytes()
        raw.decode('utf-8')  # strict
        assert raw.endswith(b'\n') and b'\r' not in raw, e['path']
        ids = set()
        for n, line in enumerate(raw.decode('utf-8').split('\n')[:-1]):
            r = json.loads(line)
            assert set(r) == {'id', *e['fields'], *(['task'] if e['kind'] == 'instructions' else [])}, (e['path'], n)
            assert r['id'] not in ids; ids.add(r['id'])
            for f in e['fields']:
                if f == 'gold': assert r[f] in range(len(r['choices'])), (e['path'], n); continue
                if f == 'choices': assert len(r[f]) == len(set(r[f])) >= 2, (e['path'], n)
                for t in strs(r[f]):
                    assert isinstance(t, str) and t.strip(), (e['path'], n)
                    assert clean_text(t, markup=None) == t, (e['path'], n, t[:200])  # NFC, whitespace, no control chars

def test_no_duplicates_within_a_file(corpus):
    for e in FILES:
        for f in text_fields(e):
            keys = [text_key(r[f]) for r in corpus[e['path']]]
            assert len(keys) == len(set(keys)), (e['path'], f)

def test_languages(corpus):
    "A deterministic sample of every file is in the file's language (lingua over likely confusions)"
    cands = ['ru', 'uk', 'be', 'bg', 'en', 'de', 'fr']
    for e in FILES:
        recs = corpus[e['path']][::max(1, len(corpus[e['path']]) // 150)]
        for f, lang in zip(text_fields(e), e['lang'].split('-')):
            got = detect_lang([r[f] for r in recs], langs=cands)
            share = sum(g == lang for g in got) / len(got)
            assert share >= 0.95, (e['path'], f, share)

# ---------------------------------------------------------------- held-out

def test_heldout_shares_no_document_with_training(corpus):
    held = [e for e in FILES if e['split'] == 'heldout']
    train = [e for e in FILES if e['split'] == 'train']
    train_keys = {text_key(t) for e in train for t in texts(corpus, e)}
    for e in held:
        leaked = [t[:80] for t in texts(corpus, e) if text_key(t) in train_keys]
        assert not leaked, leaked

def test_heldout_has_no_near_duplicate_in_training(corpus):
    "Not nearly equal (MinHash) and not contained in a longer training document (word 8-grams)"
    for h in (e for e in FILES if e['split'] == 'heldout' and e['kind'] == 'text'):
        lang, train = h['lang'], []
        for e in FILES:  # every training text in the held-out set's language, including that side of parallel files
            if e['split'] == 'train' and lang in e['lang'].split('-') and e['kind'] != 'instructions':
                f = e['fields'][0] if len(e['fields']) == 1 else lang
                train += [r[f] for r in corpus[e['path']]]
        ov = corpus_overlap(texts(corpus, h), train)
        assert ov == {'exact': [], 'near': [], 'contained': []}, {k: v[:5] for k, v in ov.items()}

# ---------------------------------------------------------------- selection and loading

def test_select_and_resolve():
    assert [p.name for p in select_files(lang='ru', split='train', paths=True)] == ['ru_fortunes.jsonl', 'ru_tech.jsonl', 'ru_instructions.jsonl']  # any kind
    assert [r['path'].name for r in resolve_corpus('manifest:lang=ru,split=train,kind=text')] == ['ru_fortunes.jsonl', 'ru_tech.jsonl']
    assert [r['path'].name for r in resolve_corpus(f'{DATA}/manifest.json:kind=parallel')] == ['ru_en_parallel.jsonl']
    assert data_dir() == DATA and len(load_manifest()) == len(FILES)

def test_load_corpus_reads_through_datasets():
    ds = load_corpus('manifest:split=heldout,lang=ru')
    assert ds.column_names == ['text'] and len(ds) == select_files(split='heldout', lang='ru', kind='text')[0]['documents']
    par = load_corpus('manifest:kind=parallel', text_field='en')
    assert par[0]['text'] == read_rows(select_files(kind='parallel')[0])[0]['en']

# ---------------------------------------------------------------- bad input

def test_non_utf8_file_names_file_and_offset(tmp_path):
    p = tmp_path/'legacy.jsonl'
    p.write_bytes(b'{"text": "ok"}\n' + '{"text": "Привет"}\n'.encode('cp1251'))
    with pytest.raises(VikhrError, match=r'legacy\.jsonl is not valid UTF-8: byte offset 25') as e: load_corpus(str(p))
    assert 'iconv' in str(e.value)

def test_empty_file(tmp_path):
    (tmp_path/'empty.jsonl').write_text('')
    with pytest.raises(VikhrError, match='is empty'): load_corpus(tmp_path/'empty.jsonl')
    (tmp_path/'blank.txt').write_text('\n\n  \n')
    with pytest.raises(VikhrError, match='no documents'): load_corpus(tmp_path/'blank.txt', clean=True)

def test_missing_path():
    with pytest.raises(VikhrError, match='no such file or directory: /no/such/corpus.jsonl'): load_corpus('/no/such/corpus.jsonl')
    with pytest.raises(VikhrError, match='matches no'): load_corpus('/no/such/*.jsonl')

def test_unknown_manifest_key_and_value():
    with pytest.raises(VikhrError, match=r"unknown manifest key 'language=ru'.*lang=\.\.\."): load_corpus('manifest:language=ru')
    with pytest.raises(VikhrError, match='selects no file; the manifest has lang=en|ru|ru-en'): load_corpus('manifest:lang=xx')

def test_missing_text_field(tmp_path):
    (tmp_path/'qa.jsonl').write_text('{"question": "?", "answer": "!"}\n')
    with pytest.raises(VikhrError, match="no field 'text' .*question, answer"): load_corpus(tmp_path/'qa.jsonl')

def test_no_corpus_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('VIKHR_DATA', str(tmp_path))
    with pytest.raises(VikhrError, match='clone the repository'): data_dir()

def test_hub_offline_fails_fast(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    t0 = time.time()
    with pytest.raises(VikhrError, match='offline'): load_corpus('hub:some-owner/some-dataset', streaming=True)
    assert time.time() - t0 < 5

def test_hub_unreachable_fails_fast(monkeypatch):
    from vikhr_nb.models import hub_reachable
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False); monkeypatch.delenv('HF_DATASETS_OFFLINE', raising=False)
    if hub_reachable(): pytest.skip('the Hugging Face Hub is reachable here')
    t0 = time.time()
    with pytest.raises(VikhrError, match='cannot be reached'): load_corpus('hub:some-owner/some-dataset:cfg@train')
    assert time.time() - t0 < 20

def test_cli_error():
    "`vikhr data` is wired into the command line and reports bad input as one line (exit status 2)"
    from conftest import run_vikhr
    r = run_vikhr('data', 'stats', '--corpus', 'manifest:langg=ru')
    assert r.returncode == 2 and 'unknown manifest key' in r.stderr, r.stderr

# ---------------------------------------------------------------- the build script

@pytest.fixture(scope='module')
def build():
    spec = importlib.util.spec_from_file_location('build_corpus', DATA/'build_corpus.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def test_build_pins_match_manifest(build):
    assert {s['package']: (s['version'], s['sha256']) for s in MANIFEST['sources']} == \
           {k: (v[0], v[1]) for k, v in build.PACKAGES.items()}

def test_build_rejects_a_wrong_deb(build, tmp_path):
    name, (version, *_ ) = 'fortunes-ru', build.PACKAGES['fortunes-ru']
    (tmp_path/build.deb_name(name, version)).write_bytes(b'not the pinned package')
    with pytest.raises(SystemExit, match='sha256'): build.fetch_deb(name, tmp_path)

def test_build_explains_a_missing_version(build, tmp_path, monkeypatch):
    monkeypatch.setitem(build.PACKAGES, 'fortunes-ru', ('0.0-0', '0' * 64, 'GPL-2'))
    with pytest.raises(SystemExit, match='snapshot.debian.org'): build.fetch_deb('fortunes-ru', tmp_path)

def _debian_reachable(build, timeout=5.0):
    "Whether the host apt would download the first pinned package from answers on its port"
    name, (version, *_) = next(iter(build.PACKAGES.items()))
    try: r = subprocess.run(['apt-get', 'download', '--print-uris', f'{name}={version}'], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired): return False
    m = re.search(r"'(https?)://([^/:']+)(?::(\d+))?/", r.stdout)
    if not m: return False
    ok = []
    def _try():
        try: socket.create_connection((m.group(2), int(m.group(3) or (443 if m.group(1) == 'https' else 80))), timeout=timeout).close(); ok.append(1)
        except OSError: pass
    t = threading.Thread(target=_try, daemon=True); t.start(); t.join(timeout + 1)
    return bool(ok)

@pytest.mark.slow
def test_rebuild_is_byte_identical(build):
    "data/build_corpus.py --check: download (or reuse) the pinned .debs, rebuild in a temp dir, compare (about 1-2 min)"
    debs = Path(os.environ.get('XDG_CACHE_HOME', Path.home()/'.cache'))/'vikhr_nb'/'debs'
    cached = all((debs/s['deb']).exists() for s in MANIFEST['sources'])
    if not cached and not _debian_reachable(build):
        pytest.skip("the pinned .debs are not in the cache and the Debian archive is unreachable (apt-get download needs it)")
    r = subprocess.run([sys.executable, str(DATA/'build_corpus.py'), '--check'], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert 'byte-identical' in r.stdout

def test_readme_counts_match_manifest():
    readme = (DATA/'README.md').read_text(encoding='utf-8')
    for e in FILES:
        row = next(l for l in readme.splitlines() if l.startswith(f"| `{e['path']}`"))
        for k in ('documents', 'characters', 'words'): assert f"| {e[k]:,} |" in row, (e['path'], k)
    for s in MANIFEST['sources']: assert s['sha256'] in readme and s['version'] in readme, s['package']

def test_plain_manifest_spec_is_training_text_only():
    "`--corpus manifest` (or the data folder) must never hand the held-out set to a training stage"
    for spec in ('manifest', str(DATA), 'manifest:lang=ru'):
        assert {r['split'] for r in resolve_corpus(spec)} == {'train'}, spec
    assert [r['path'].name for r in resolve_corpus('manifest:split=heldout')] == ['ru_heldout_manpages.jsonl', 'en_heldout_fortunes.jsonl']
    assert [r['path'].name for r in resolve_corpus('manifest:split=heldout,kind=task')] == ['ru_mc_manpages.jsonl']

def test_mc_task_is_heldout_sentence_completion(corpus):
    "Every item's gold choice is the sentence that ends its query's paragraph in the held-out set"
    held = '\n'.join(r['text'] for r in corpus['ru_heldout_manpages.jsonl'])
    items = corpus['ru_mc_manpages.jsonl']
    assert len(items) == 200 and {len(it['choices']) for it in items} == {4}
    for it in items:
        assert f"{it['query']} {it['choices'][it['gold']]}" in held, it['id']
    golds = [it['gold'] for it in items]
    assert all(golds.count(g) > 30 for g in range(4))  # the gold position is not a giveaway
