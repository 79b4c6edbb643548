"Model loading: the embedded default, GGUF conversion, hub ids without network, bad input."
import os, time, shutil
from pathlib import Path
import pytest, torch
from vikhr_nb.core import VikhrError
from vikhr_nb import models
from vikhr_nb.models import load_model, load_tokenizer, chat, convert_gguf, fetch_gguf, check_gguf, tiny_llama, check_model_tokenizer
from conftest import run_vikhr

def test_default_answers_capital_of_france(smol):
    model, tok = smol
    assert 'Paris' in chat(model, tok, 'What is the capital of France?')

def test_default_is_the_real_smollm2(smol):
    model, tok = smol
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert len(tok) == 49152 and model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert '<|im_start|>' in tok.chat_template

@pytest.mark.parametrize('env', [{'HF_HUB_OFFLINE': '1'}, {'HF_ENDPOINT': 'https://127.0.0.1:9'}, {'HF_ENDPOINT': 'https://10.255.255.1'}])
def test_hub_id_without_network_fails_fast(monkeypatch, tmp_path, env):
    monkeypatch.setenv('HF_HOME', str(tmp_path))  # an empty hub cache
    for k, v in env.items(): monkeypatch.setenv(k, v)
    t0 = time.perf_counter()
    with pytest.raises(VikhrError, match='hub cannot be reached') as e: load_tokenizer('HuggingFaceTB/SmolLM2-135M')
    assert time.perf_counter() - t0 < 10
    assert 'smollm2-135m-instruct' in str(e.value)  # says what to use instead

def test_unknown_alias_and_missing_paths(tmp_path):
    with pytest.raises(VikhrError, match='unknown model'): load_model('smollm2-1b')
    with pytest.raises(VikhrError, match='does not exist'): load_model(tmp_path/'missing.gguf')
    (tmp_path/'empty').mkdir()
    with pytest.raises(VikhrError, match='holds no config.json'): load_model(tmp_path/'empty')
    (tmp_path/'notes.txt').write_text('hi')
    with pytest.raises(VikhrError, match='neither a .gguf'): load_model(tmp_path/'notes.txt')

def test_truncated_and_corrupt_gguf(tmp_path):
    real = fetch_gguf()
    trunc = tmp_path/'trunc.gguf'
    with open(real, 'rb') as f: trunc.write_bytes(f.read(5_000_000))
    with pytest.raises(VikhrError, match='truncated or corrupt'): load_model(trunc)
    junk = tmp_path/'junk.gguf'; junk.write_bytes(b'not a gguf file' * 100)
    with pytest.raises(VikhrError, match='truncated or corrupt'): check_gguf(junk)
    assert not any(p.name.startswith('gguf-') and (p/'config.json').exists() and 'trunc' in str(p) for p in (tmp_path).iterdir())

def test_interrupted_conversion_leaves_no_cache(tmp_path, monkeypatch):
    "A crash while writing the checkpoint must leave neither the target nor a temporary directory."
    real = fetch_gguf()
    def boom(self, *a, **k): raise KeyboardInterrupt('simulated crash while saving the tokenizer')
    from transformers import PreTrainedTokenizerBase
    monkeypatch.setattr(PreTrainedTokenizerBase, 'save_pretrained', boom)
    out = tmp_path/'ckpt'
    with pytest.raises(KeyboardInterrupt): convert_gguf(real, out)
    assert list(tmp_path.iterdir()) == []

def test_gguf_file_converts_once_and_matches_default(tmp_path, monkeypatch, smol):
    real = fetch_gguf()  # from the default cache, before pointing the cache elsewhere
    monkeypatch.setenv('VIKHR_CACHE', str(tmp_path/'cache'))
    g = tmp_path/'m.gguf'; os.symlink(real, g)
    model, tok = load_model(g)
    ids = torch.tensor([tok('Hello, world').input_ids])
    with torch.no_grad(): torch.testing.assert_close(model(ids).logits, smol[0](ids).logits)
    cached = list((tmp_path/'cache'/'models').iterdir())
    assert len(cached) == 1 and cached[0].name.startswith('gguf-')
    mtime = (cached[0]/'model.safetensors').stat().st_mtime
    load_model(g)  # second time: from the cache, no conversion
    assert (cached[0]/'model.safetensors').stat().st_mtime == mtime

def test_mismatched_model_and_tokenizer(smol):
    with pytest.raises(VikhrError, match='do not belong together'): check_model_tokenizer(tiny_llama(1000), smol[1])

def test_tiny_llama_tied_and_untied():
    t, u = tiny_llama(50, tie=True), tiny_llama(50, tie=False)
    assert t.lm_head.weight is t.model.embed_tokens.weight
    assert u.lm_head.weight is not u.model.embed_tokens.weight

def test_cli_model_info_and_errors():
    r = run_vikhr('model', 'info')
    assert r.returncode == 0, r.stderr
    assert '"vocab_size": 49152' in r.stdout
    r = run_vikhr('model', 'info', 'no-such-model')
    assert r.returncode == 2 and 'unknown model' in r.stderr and 'Traceback' not in r.stderr
