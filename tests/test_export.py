"GGUF export through llama.cpp's converter: an extended SmolLM2 vocabulary on a tiny Llama is written with the original's pre-tokenizer declared, reads back with the same token ids and logits, and bad input leaves no file behind."
import json, shutil
import pytest
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama, load_tokenizer
from vikhr_nb.tokenizer import adapt_tokenizer, read_texts
from vikhr_nb.export import export_gguf, gguf_pretokenizer
from conftest import run_vikhr

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny Llama saved with SmolLM2's tokenizer extended by a small Russian BPE (its chat template kept)."
    base = load_tokenizer('smollm2-135m-instruct')
    ru = read_texts('manifest:lang=ru,split=train')[:300]; en = read_texts('manifest:lang=en,split=train')[:100]
    tok, _ = adapt_tokenizer(base, ru, 'extend', 2000, keep_texts=en, show_progress=False)
    d = tmp_path_factory.mktemp('export')/'tiny'
    tiny_llama(len(tok), 64).save_pretrained(d); tok.save_pretrained(d)
    return d, len(tok)

def _fields(path):
    import gguf
    r = gguf.GGUFReader(path)
    s = lambda k: bytes(r.fields[k].parts[r.fields[k].data[0]]).decode()
    return {'pre': s('tokenizer.ggml.pre'), 'template': s('tokenizer.chat_template'), 'tokens': len(r.fields['tokenizer.ggml.tokens'].data)}

def test_cli_export_and_check(tiny):
    d, n = tiny; out = d.parent/'cli.gguf'
    r = run_vikhr('export', d, '--gguf', out, '--original', 'smollm2-135m-instruct', '--outtype', 'f32', '--check')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout[r.stdout.index('{'):])
    assert res['pre_tokenizer'] == 'smollm' and res['vocab_size'] == n and res['same_ids'] == res['texts'] == 3
    assert res['max_rel_logit_diff'] < 1e-6
    f = _fields(out)
    assert f['pre'] == 'smollm' and f['tokens'] == n and 'im_start' in f['template']  # the chat template travels in the file
    r = run_vikhr('export', d, '--gguf', out, '--original', 'smollm2-135m-instruct')
    assert r.returncode == 2 and 'already exists' in r.stderr

def test_unknown_pre_tokenizer_needs_the_original(tiny):
    d, _ = tiny
    assert gguf_pretokenizer(d) is None and gguf_pretokenizer('smollm2-135m-instruct') == 'smollm'
    with pytest.raises(VikhrError, match='--original'): export_gguf(d, d.parent/'no.gguf')
    assert not list(d.parent.glob('*no.gguf*'))

def test_failed_conversion_leaves_nothing(tiny):
    d, _ = tiny; bad = d.parent/'bad'; shutil.copytree(d, bad)
    cfg = json.loads((bad/'config.json').read_text()); cfg['architectures'] = ['NoSuchForCausalLM']
    (bad/'config.json').write_text(json.dumps(cfg))
    r = run_vikhr('export', bad, '--gguf', d.parent/'bad.gguf', '--pre', 'smollm')
    assert r.returncode == 2 and "converter failed" in r.stderr, r.stderr
    assert not list(d.parent.glob('*bad.gguf*'))
