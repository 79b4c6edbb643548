"Embedding surgery on tiny Llamas with SmolLM2's real tokenizer (tied, untied, padded, with a head bias), the reload round trip, bad input, and `vikhr embed` end to end on the real SmolLM2."
import copy, json
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama, load_tokenizer, fetch_wheel_file, MISTRAL_SPM
from vikhr_nb.tokenizer import adapt_tokenizer, read_texts, save_adapted, load_base_tokenizer, tokenizer_json, build_tokenizer, MAPPING_FILE
from vikhr_nb.embeddings import *
from vikhr_nb.focus import *  # registers the focus method in INIT_METHODS
from vikhr_nb.head_fit import *
from conftest import run_vikhr

@pytest.fixture(scope='module')
def smol_tok(): return load_tokenizer('smollm2-135m-instruct')

@pytest.fixture(scope='module')
def corpus():
    ru = read_texts('manifest:lang=ru,split=train,kind=text')
    en = read_texts('manifest:lang=en,split=train,kind=text')
    return ru[::7][:2000], en[::5][:1000]

@pytest.fixture(scope='module')
def adapted(smol_tok, corpus):
    "The three modes on a small vocabulary: {mode: (tokenizer, mapping)}."
    ru, en = corpus
    return {mode: adapt_tokenizer(smol_tok, ru, mode, 2000, keep_texts=en, keep_vocab=20000, show_progress=False)
            for mode in ('extend', 'replace', 'optimize')}

def rows(model): return model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()

@pytest.mark.parametrize('tie', [True, False])
@pytest.mark.parametrize('mode', ['extend', 'replace', 'optimize'])
def test_resize_contract(smol_tok, adapted, mode, tie):
    tok, mp = adapted[mode]
    m = tiny_llama(len(smol_tok), 16, tie=tie)
    E0, H0 = (w.clone() for w in rows(m))
    assert resize_embeddings(m, smol_tok, tok, mp) is m                    # in place, and returned
    E, H = rows(m)
    assert E.shape == H.shape == (len(tok), 16) and m.config.vocab_size == len(tok)
    assert (m.get_output_embeddings().weight is m.get_input_embeddings().weight) == tie and m.config.tie_word_embeddings == tie
    old_v = smol_tok.get_vocab()
    shared = [(i, old_v[t]) for t, i in tok.get_vocab().items() if t in old_v]
    assert len(shared) + len(mp) == len(tok)
    ni, oi = map(list, zip(*shared))
    assert torch.equal(E[ni], E0[oi]) and torch.equal(H[ni], H0[oi])       # copied exactly, by string
    ids = sorted(i for i, p in mp.items() if p != [smol_tok.unk_token_id])
    want_E = torch.stack([E0[mp[i]].mean(0) for i in ids]); want_H = torch.stack([H0[mp[i]].mean(0) for i in ids])
    assert torch.allclose(E[ids], want_E, atol=1e-6) and torch.allclose(H[ids], want_H, atol=1e-6)  # the head from the head's own rows
    x = torch.tensor([tok('Привет, мир! Hello.').input_ids])
    assert m(x).logits.shape == (1, x.shape[1], len(tok))

def test_replace_renumbers_and_keeps_chat_tokens(smol_tok, adapted):
    tok, mp = adapted['replace']
    m = tiny_llama(len(smol_tok), 16)
    m.config.bos_token_id, m.config.eos_token_id = smol_tok.convert_tokens_to_ids(['<|im_start|>', '<|im_end|>'])
    m.config.pad_token_id = m.generation_config.pad_token_id = smol_tok.convert_tokens_to_ids('Ð°')  # an ordinary token that moves
    E0 = rows(m)[0].clone()
    resize_embeddings(m, smol_tok, tok, mp)
    E = rows(m)[0]
    old_v = smol_tok.get_vocab()
    moved = [t for t, i in tok.get_vocab().items() if t in old_v and old_v[t] != i]
    assert len(moved) > 100                                                # replace really renumbers
    for t in moved + ['<|im_start|>', '<|im_end|>', '<|endoftext|>']:
        assert torch.equal(E[tok.convert_tokens_to_ids(t)], E0[old_v[t]])
    msgs = [{'role': 'user', 'content': 'Как дела?'}]
    ids_new = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, add_generation_prompt=True)['input_ids']
    ids_old = smol_tok.apply_chat_template(msgs, tokenize=True, return_dict=True, add_generation_prompt=True)['input_ids']
    assert tok.decode(ids_new) == smol_tok.decode(ids_old)                # the same chat text ...
    specials = [i for i in ids_new if i in tok.all_special_ids]
    assert [torch.equal(E[i], E0[smol_tok.convert_tokens_to_ids(tok.convert_ids_to_tokens(i))]) for i in specials] == [True] * len(specials) > []
    assert tok.convert_ids_to_tokens([m.config.bos_token_id, m.config.eos_token_id, m.config.pad_token_id, m.generation_config.pad_token_id]) == \
        ['<|im_start|>', '<|im_end|>', 'Ð°', 'Ð°']                          # ... and the config's ids follow the strings

def test_padded_model_and_pad_to_multiple(smol_tok, adapted):
    tok, mp = adapted['extend']
    m = tiny_llama(len(smol_tok) + 64, 16, tie=False)                      # rows beyond the tokenizer, like Qwen2.5
    E0, H0 = (w.clone() for w in rows(m))
    resize_embeddings(m, smol_tok, tok, mp, pad_to_multiple_of=128)
    E, H = rows(m)
    n = -(-len(tok) // 128) * 128
    assert E.shape[0] == H.shape[0] == m.config.vocab_size == n
    assert torch.equal(E[:len(smol_tok)], E0[:len(smol_tok)]) and torch.equal(H[:len(smol_tok)], H0[:len(smol_tok)])
    assert E[len(tok):].abs().sum() == 0 and H[len(tok):].abs().sum() == 0   # new padding rows are zero, old ones dropped

def test_head_bias_follows(smol_tok, adapted):
    tok, mp = adapted['replace']
    m = tiny_llama(len(smol_tok), 16, tie=False)
    lin = torch.nn.Linear(16, len(smol_tok), bias=True); lin.weight.data = m.lm_head.weight.data.clone(); m.lm_head = lin
    b0 = lin.bias.detach().clone()
    resize_embeddings(m, smol_tok, tok, mp)
    b = m.lm_head.bias.detach()
    assert b.shape == (len(tok),) and m.lm_head.bias.requires_grad
    t = '<|im_end|>'; assert b[tok.convert_tokens_to_ids(t)] == b0[smol_tok.convert_tokens_to_ids(t)]
    i = next(i for i, p in mp.items() if len(p) > 1)
    assert torch.allclose(b[i], b0[mp[i]].mean())

@pytest.mark.parametrize('method', INIT_METHODS)
def test_methods_are_deterministic(smol_tok, adapted, corpus, method):
    tok, mp = adapted['extend']
    outs = []
    for _ in range(2):
        m = tiny_llama(len(smol_tok), 16, tie=False)
        resize_embeddings(m, smol_tok, tok, mp, method=method, texts=corpus[0][:800], seed=3, dim=20)
        outs.append(rows(m))
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    E = outs[0][0]; new = E[sorted(mp)]
    spread = new.std(0).mean() / E[:len(smol_tok)].std(0).mean()
    assert (spread < 1e-3) if method == 'random' else (spread > 0.1)      # random: ~the mean of all rows; the others: distinct rows

def test_unknown_symbols_do_not_become_endoftext(smol_tok, adapted):
    "New tokens the old vocabulary can only map to its unknown token (<|endoftext|>) do not start as <|endoftext|>."
    tok, mp = adapted['extend']
    unk = [i for i, p in mp.items() if p == [smol_tok.unk_token_id]]
    if not unk: pytest.skip('no unspellable symbol in this vocabulary')
    m = tiny_llama(len(smol_tok), 16); E0 = rows(m)[0].clone()
    resize_embeddings(m, smol_tok, tok, mp)
    E = rows(m)[0]
    assert not torch.equal(E[unk[0]], E0[smol_tok.unk_token_id])
    assert torch.allclose(E[unk[0]], E0[:len(smol_tok)].mean(0), atol=1e-3)

@pytest.mark.parametrize('tie', [True, False])
def test_save_reload_same_logits(smol_tok, adapted, tmp_path, tie):
    tok, mp = adapted['replace']
    m = tiny_llama(len(smol_tok), 16, tie=tie)
    resize_embeddings(m, smol_tok, tok, mp, pad_to_multiple_of=64)
    out = save_adapted_model(m, tok, tmp_path/'model', mp, method='mean', base_model='tiny')
    m2, t2 = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    x = torch.tensor([t2('Привет, мир! <|im_end|> Hello').input_ids])
    assert x.tolist() == [tok('Привет, мир! <|im_end|> Hello').input_ids]
    with torch.no_grad(): assert torch.equal(m2(x).logits, m(x).logits)
    assert m2.config.tie_word_embeddings == tie and (m2.get_output_embeddings().weight is m2.get_input_embeddings().weight) == tie
    assert json.loads((out/EMBED_RECORD).read_text())['method'] == 'mean'
    from vikhr_nb.tokenizer import load_mapping
    assert load_mapping(out) == mp

def test_save_is_atomic(smol_tok, adapted, tmp_path, monkeypatch):
    tok, mp = adapted['extend']
    m = tiny_llama(len(smol_tok), 16); resize_embeddings(m, smol_tok, tok, mp)
    t = copy.deepcopy(tok)
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(t, 'save_pretrained', boom)
    with pytest.raises(OSError): save_adapted_model(m, t, tmp_path/'model')
    assert list(tmp_path.iterdir()) == []                                   # nothing half-written
    (tmp_path/'model').mkdir(); (tmp_path/'model'/'keep').write_text('x')
    with pytest.raises(VikhrError, match='already exists'): save_adapted_model(m, tok, tmp_path/'model')

def test_bad_input(smol_tok, adapted, corpus, tmp_path):
    tok, mp = adapted['extend']
    rtok, rmp = adapted['replace']
    fresh = lambda **kw: tiny_llama(len(smol_tok), 16, **kw)
    with pytest.raises(VikhrError, match='another tokenizer'): resize_embeddings(fresh(), smol_tok, tok, rmp)       # another pair's mapping
    with pytest.raises(VikhrError, match='new ids outside'): resize_embeddings(fresh(), smol_tok, tok, {**mp, len(tok) + 7: [1]})
    with pytest.raises(VikhrError, match='old ids outside'): resize_embeddings(fresh(), smol_tok, tok, {**mp, max(mp): [len(smol_tok) + 5]})
    with pytest.raises(VikhrError, match='no old pieces'): resize_embeddings(fresh(), smol_tok, tok, {**mp, max(mp): []})
    with pytest.raises(VikhrError, match="not this model's tokenizer"): resize_embeddings(tiny_llama(len(smol_tok) + 5000, 16), smol_tok, tok, mp)
    with pytest.raises(VikhrError, match='do not belong together'): resize_embeddings(tiny_llama(30000, 16), smol_tok, tok, mp)
    m = fresh(); m.config.vocab_size = 123
    with pytest.raises(VikhrError, match='vocab_size=123'): resize_embeddings(m, smol_tok, tok, mp)
    m = fresh(tie=False); m.lm_head = torch.nn.Linear(16, 1000, bias=False)
    with pytest.raises(VikhrError, match='output head has shape'): resize_embeddings(m, smol_tok, tok, mp)
    m = fresh(tie=True); m.lm_head.weight = torch.nn.Parameter(m.lm_head.weight.detach().clone())  # the PEFT trap: a tied model untied
    with pytest.raises(VikhrError, match='tie_word_embeddings=True'): resize_embeddings(m, smol_tok, tok, mp)
    with pytest.raises(VikhrError, match='needs old_tokenizer, new_tokenizer and texts'): resize_embeddings(fresh(), smol_tok, tok, mp, method='focus')
    m = fresh(); E0 = rows(m)[0].clone()
    with pytest.raises(VikhrError, match='unknown init method'): resize_embeddings(m, smol_tok, tok, mp, method='zeros')
    assert torch.equal(rows(m)[0], E0) and m.config.vocab_size == len(smol_tok)   # nothing changed
    # a tokenizer whose special tokens are not the model's
    j = tokenizer_json(tok); a = next(x for x in j['added_tokens'] if x['content'] == '<repo_name>')
    a['content'] = '<repo>'; j['model']['vocab']['<repo>'] = j['model']['vocab'].pop('<repo_name>', a['id'])
    with pytest.raises(VikhrError, match='lacks 1 special/added tokens'): resize_embeddings(fresh(), smol_tok, build_tokenizer(j, tok))
    # a mapping file made from a tokenizer of another size
    d = save_adapted(tok, mp, tmp_path/'tok', base=smol_tok, mode='extend')
    meta = json.loads((d/MAPPING_FILE).read_text()); meta['old_vocab_size'] = 32000; (d/MAPPING_FILE).write_text(json.dumps(meta))
    with pytest.raises(VikhrError, match='belongs to another model'): resize_embeddings(fresh(), smol_tok, tok, d)

def test_other_family_is_refused(smol_tok, corpus):
    "A tokenizer adapted from Mistral's SentencePiece model cannot be grafted onto SmolLM2, even with a mapping computed for it."
    mistral = load_base_tokenizer(fetch_wheel_file(MISTRAL_SPM))
    mtok, _ = adapt_tokenizer(mistral, corpus[0][:500], 'extend', 1000, show_progress=False)
    with pytest.raises(VikhrError, match='lacks'): resize_embeddings(tiny_llama(len(smol_tok), 16), smol_tok, mtok)
    with pytest.raises(VikhrError, match="not this model's tokenizer"): resize_embeddings(tiny_llama(len(smol_tok), 16), mistral, mtok)
    m = tiny_llama(len(mistral), 16)                                        # the sizes fit, the family does not
    with pytest.raises(VikhrError, match='lacks|decode differently'): resize_embeddings(m, mistral, adapt_tokenizer(smol_tok, corpus[0][:500], 'replace', 1000, show_progress=False)[0])

def test_cli_embed_end_to_end(smol, adapted, smol_tok, tmp_path):
    "`vikhr embed` on the real SmolLM2: a directory plain transformers reloads, with the same logits as the in-memory resize."
    tok, mp = adapted['extend']
    tdir = save_adapted(tok, mp, tmp_path/'tok', base=smol_tok, mode='extend')
    r = run_vikhr('embed', '--tokenizer', tdir, '--method', 'weighted', '--pad-to-multiple-of', '64', '--out', tmp_path/'model')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['new_vocab_size'] == len(tok) and res['rows'] % 64 == 0 and res['tied'] is True
    m2 = AutoModelForCausalLM.from_pretrained(tmp_path/'model'); t2 = AutoTokenizer.from_pretrained(tmp_path/'model')
    model, old = smol
    mem = resize_embeddings(copy.deepcopy(model), old, tok, mp, method='weighted', pad_to_multiple_of=64)
    x = torch.tensor([t2('Привет, мир! Как дела?').input_ids])
    with torch.no_grad(): assert torch.equal(m2(x).logits, mem(x).logits)
    rec = json.loads((tmp_path/'model'/EMBED_RECORD).read_text())
    assert rec['method'] == 'weighted' and rec['mapping_from'] == MAPPING_FILE and rec['mode'] == 'extend'
    # the output directory exists: refused before the model is even loaded
    r = run_vikhr('embed', '--tokenizer', tdir, '--out', tmp_path/'model')
    assert r.returncode == 2 and 'already exists' in r.stderr
    r = run_vikhr('embed', '--tokenizer', tdir, '--method', 'focus', '--out', tmp_path/'m2')
    assert r.returncode == 2 and 'needs --corpus' in r.stderr

def test_fit_head_rows_on_smol(smol, adapted, smol_tok, corpus):
    "The head fit on the real SmolLM2: the fitted rows predict held-out Russian better than the piece mean, English stays, only new rows move."
    from vikhr_nb.eval import bits_per_char
    tok, mp = adapted['extend']
    model, _ = smol
    m = resize_embeddings(copy.deepcopy(model), smol_tok, tok, mp)
    W0 = m.get_input_embeddings().weight.detach().clone()
    ru_eval = [t[:600] for t in read_texts('manifest:lang=ru,split=heldout,kind=text')[:3]]
    en_eval = [t[:600] for t in read_texts('manifest:lang=en,split=heldout,kind=text')[:6]]
    before = bits_per_char(m, tok, ru_eval)['bpc'], bits_per_char(m, tok, en_eval)['bpc']
    r = fit_head_rows(m, tok, sorted(mp), corpus[0], corpus[1], max_tokens=6000, replay_tokens=1500)
    after = bits_per_char(m, tok, ru_eval)['bpc'], bits_per_char(m, tok, en_eval)['bpc']
    assert r['loss_after'] < r['loss_before'] and r['rows'] == len(mp) and r['positions'] >= 7500
    assert after[0] < before[0] - 0.05, (before, after)                      # held-out Russian: clearly better
    assert abs(after[1] - before[1]) < 0.01 * before[1], (before, after)     # English: unchanged within 1%
    W = m.get_input_embeddings().weight.detach(); old = torch.ones(len(W), dtype=torch.bool); old[sorted(mp)] = False
    assert torch.equal(W[old], W0[old]) and m.get_output_embeddings().weight is m.get_input_embeddings().weight

def test_fit_head_rows_bias_and_refusals(smol_tok, adapted, corpus):
    "A head with a bias is fitted (the bias stays); a model whose logits are more than its head applied to the hidden state is refused."
    tok, mp = adapted['extend']
    torch.manual_seed(0)
    m = resize_embeddings(tiny_llama(len(smol_tok), 16, tie=False), smol_tok, tok, mp)
    m.lm_head.bias = torch.nn.Parameter(torch.randn(len(tok)) * 0.1)
    b0 = m.lm_head.bias.detach().clone()
    r = fit_head_rows(m, tok, sorted(mp), corpus[0][:200], max_tokens=2000, lr=1e-2)
    assert r['loss_after'] < r['loss_before'] and torch.equal(m.lm_head.bias.detach(), b0)
    forward = m.forward
    def capped(*a, **k):
        out = forward(*a, **k); out.logits = 0.5 * torch.tanh(out.logits / 0.5); return out  # soft-capping, as Gemma 2 does at 30
    m.forward = capped
    with pytest.raises(VikhrError, match='soft-capping'): fit_head_rows(m, tok, sorted(mp), corpus[0][:50])

def test_cli_embed_fit_head(adapted, smol_tok, tmp_path):
    "`vikhr embed --fit-head` records the fit and writes a model that reloads."
    tok, mp = adapted['extend']
    tdir = save_adapted(tok, mp, tmp_path/'tok', base=smol_tok, mode='extend')
    r = run_vikhr('embed', '--tokenizer', tdir, '--fit-head', '--corpus', 'manifest:lang=ru,split=train', '--replay', 'manifest:lang=en,split=train',
                  '--fit-tokens', '2000', '--out', tmp_path/'model')
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout.strip().splitlines()[-1])['fit_head']
    assert fit['loss_after'] < fit['loss_before'] and fit['rows'] == len(mp)
    assert json.loads((tmp_path/'model'/EMBED_RECORD).read_text())['fit_head'] == fit
    assert AutoModelForCausalLM.from_pretrained(tmp_path/'model').config.vocab_size == len(tok)

def test_focus_is_registered_by_its_module():
    "FOCUS lives in its own lesson and module: without that module `init_embeddings` names it; with it, the recipe is there."
    import subprocess, sys
    code = ("import torch\nfrom vikhr_nb.core import VikhrError\nfrom vikhr_nb.embeddings import init_embeddings, INIT_METHODS\n"
            "try: init_embeddings(torch.zeros(3, 2), {3: [1]}, 'focus')\nexcept VikhrError as e: print(e)\n"
            "import vikhr_nb.focus\nprint(list(INIT_METHODS))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "unknown init method 'focus'" in r.stdout and 'import vikhr_nb.focus' in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "['mean', 'weighted', 'random', 'focus']"
