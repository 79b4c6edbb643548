"Learned Embedding Propagation on tiny Llamas whose instruct space is an exact linear transform of the base's (tied and untied): overlap and conversion recover it, swap does not; the instruct model's other weights kept bit for bit; the saved directory reloads and chats; bad input; `vikhr lep` end to end."
import copy, json
import pytest
import torch
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama, chat
from vikhr_nb.tokenizer import adapt_tokenizer, read_texts, MAPPING_FILE
from vikhr_nb.embeddings import resize_embeddings, save_adapted_model
from vikhr_nb.lep import *
from conftest import run_vikhr

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']

def chat_bpe(texts, vocab_size=400):
    "A tiny byte-level BPE with ChatML's tokens in its vocabulary (as SmolLM2 has them)."
    bpe = Tokenizer(models.BPE()); bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False); bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token='<|im_start|>', eos_token='<|im_end|>', pad_token='<|endoftext|>')

@pytest.fixture(scope='module')
def toks():
    "(base tokenizer, instruct tokenizer (same vocabulary + chat template), extended tokenizer, mapping, ru texts)."
    en = read_texts('manifest:lang=en,split=train,kind=text')[::10][:600]
    ru = read_texts('manifest:lang=ru,split=train,kind=text')[::10][:600]
    tok = chat_bpe(en)
    itok = copy.deepcopy(tok); itok.chat_template = CHATML
    ext, mp = adapt_tokenizer(tok, ru, 'extend', 900, keep_texts=en, show_progress=False)
    assert len(mp) > 300
    return tok, itok, ext, mp, ru

def trio(toks, tie=True, d=16, pad=0):
    "Base, adapted, instruct pairs, and the matrices that took the base's embedding (M) and head (Mh) to the instruct's."
    tok, itok, ext, mp, _ = toks
    base = tiny_llama(len(tok), d, tie=tie)
    g = torch.Generator().manual_seed(1)
    M, Mh = (torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d) for _ in range(2))
    inst = copy.deepcopy(base)
    with torch.no_grad():
        inst.get_input_embeddings().weight.copy_(base.get_input_embeddings().weight @ M)
        if not tie: inst.get_output_embeddings().weight.copy_(base.get_output_embeddings().weight @ Mh)
        for n, p in inst.named_parameters():
            if 'embed_tokens' not in n and 'lm_head' not in n: p.add_(0.01 * torch.randn(p.shape, generator=g))
        ad = resize_embeddings(copy.deepcopy(base), tok, ext, mp, pad_to_multiple_of=pad or None)
        new = torch.tensor(sorted(mp))
        ad.get_input_embeddings().weight[new] += 0.1 * torch.randn(len(new), d, generator=g)
        if not tie: ad.get_output_embeddings().weight[new] += 0.1 * torch.randn(len(new), d, generator=g)
    return (base, tok), (ad, ext), (inst, itok), M, (M if tie else Mh)

def new_rows(model, mp, head=False):
    w = (model.get_output_embeddings() if head else model.get_input_embeddings()).weight
    return w.detach().double()[torch.tensor(sorted(mp))]

@pytest.mark.parametrize('tie', [True, False])
def test_exact_transform_recovered(toks, tie):
    mp = toks[3]
    b, a, i, M, Mh = trio(toks, tie)
    for method in METHODS:
        m, t, info = propagate(b, a, i, method, mapping=mp)
        ok = [torch.allclose(new_rows(m, mp), new_rows(a[0], mp) @ M.double(), atol=1e-5),
              torch.allclose(new_rows(m, mp, True), new_rows(a[0], mp, True) @ Mh.double(), atol=1e-5)]
        assert ok == [method != 'swap'] * 2, (method, ok)
        assert (m.get_output_embeddings().weight is m.get_input_embeddings().weight) == tie == m.config.tie_word_embeddings
        assert set(info['fit']) == ({'embed_tokens'} if tie else {'embed_tokens', 'lm_head'})
        for f in info['fit'].values():
            if method == 'swap': assert f == {'rows': 0, 'residual': None}
            else: assert f['rows'] >= 2 * 16 and f['residual'] < 1e-6
        assert info['method'] == method and info['seconds'] >= 0

def test_only_embeddings_change(toks):
    tok, itok, ext, mp, _ = toks
    b, a, i, M, Mh = trio(toks, tie=False, pad=64)
    before = {k: v.clone() for k, v in i[0].state_dict().items()}
    m, t, info = propagate(b, a, i, 'conversion', mapping=mp)
    sd = m.state_dict()
    assert sd.keys() == before.keys()
    assert [k for k in sd if 'embed_tokens' not in k and 'lm_head' not in k and not torch.equal(sd[k], before[k])] == []
    assert all(torch.equal(v, i[0].state_dict()[k]) for k, v in before.items())   # the caller's instruct model untouched
    E = sd['model.embed_tokens.weight']
    assert E.shape[0] == a[0].get_input_embeddings().weight.shape[0] == m.config.vocab_size and E.shape[0] % 64 == 0
    assert E[len(ext):].abs().sum() == 0                                            # padding rows stay zero
    for s in SPECIALS:                                                              # the chat tokens: the instruct model's own rows
        assert torch.equal(E[ext.convert_tokens_to_ids(s)], before['model.embed_tokens.weight'][itok.convert_tokens_to_ids(s)])
        assert torch.equal(sd['lm_head.weight'][ext.convert_tokens_to_ids(s)], before['lm_head.weight'][itok.convert_tokens_to_ids(s)])
    assert t.chat_template == CHATML and len(t) == len(ext) and t.eos_token == '<|im_end|>' and t.get_vocab() == ext.get_vocab()
    assert ext.chat_template is None                                                # the adapted tokenizer passed in is untouched

def test_save_reload_chat(toks, tmp_path):
    mp = toks[3]
    b, a, i, M, _ = trio(toks)
    r = lep_model(b, a, i, 'overlap', tmp_path/'lep', mapping=mp)
    assert r['method'] == 'overlap' and r['info']['fit']['embed_tokens']['rows'] > 32
    rec = json.loads((tmp_path/'lep'/LEP_RECORD).read_text())
    assert rec['method'] == 'overlap' and rec['mapping_from'] == 'argument'
    assert {int(k): v for k, v in json.loads((tmp_path/'lep'/MAPPING_FILE).read_text())['pieces'].items()} == mp
    m = AutoModelForCausalLM.from_pretrained(tmp_path/'lep'); t = AutoTokenizer.from_pretrained(tmp_path/'lep')
    assert torch.allclose(new_rows(m, mp), new_rows(a[0], mp) @ M.double(), atol=1e-5)
    assert t.chat_template == CHATML and len(t) == len(toks[2])
    enc = t.apply_chat_template([{'role': 'user', 'content': 'Привет'}], add_generation_prompt=True, tokenize=True, return_dict=True)
    assert t.convert_tokens_to_ids('<|im_start|>') in enc['input_ids']
    assert isinstance(chat(m, t, 'Привет', max_new_tokens=4), str)
    with pytest.raises(VikhrError, match='already exists'): lep_model(b, a, i, 'overlap', tmp_path/'lep', mapping=mp)

def test_bad_input(toks, tmp_path):
    tok, itok, ext, mp, ru = toks
    b, a, i, *_ = trio(toks)
    cases = [
        (dict(instruct=(tiny_llama(len(tok), 32), itok)), 'hidden size'),
        (dict(instruct=(tiny_llama(len(tok), 16, tie=False), itok)), 'tying'),
        (dict(instruct=(Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)), itok)), 'model_type'),
        (dict(adapted=(a[0], tok)), 'adapted model: the model has'),                      # not the adapted model's tokenizer
        (dict(adapted=(tiny_llama(len(tok), 16), ext)), 'adapted model: the tokenizer has'),  # rows < len(tokenizer)
        (dict(mapping={k: [p + 10_000 for p in v] for k, v in mp.items()}), 'old ids outside'),
        (dict(instruct=(i[0], copy.deepcopy(tok))), 'no chat template'),
        (dict(method='rotate'), 'unknown LEP method'),
    ]
    other = chat_bpe(ru); other.chat_template = CHATML
    cases.append((dict(instruct=(i[0], other)), 'different vocabularies'))
    for kw, msg in cases:
        args = dict(base=b, adapted=a, instruct=i, method='conversion', mapping=mp) | kw
        with pytest.raises(VikhrError, match=msg.replace('(', r'\(').replace(')', r'\)')): propagate(**args)
        with pytest.raises(VikhrError): lep_model(args['base'], args['adapted'], args['instruct'], args['method'], tmp_path/'x', mapping=args['mapping'])
        assert not (tmp_path/'x').exists()                                              # nothing written
    b2 = tiny_llama(len(tok), 256); i2 = copy.deepcopy(b2)                              # 400 tokens share fewer than 2·d = 512 rows
    with torch.no_grad(): a2 = resize_embeddings(copy.deepcopy(b2), tok, ext, mp)
    with pytest.raises(VikhrError, match='ridge > 0'): propagate((b2, tok), (a2, ext), (i2, itok), 'overlap', mapping=mp)
    _, _, info = propagate((b2, tok), (a2, ext), (i2, itok), 'overlap', ridge=1e-3, mapping=mp)
    assert info['fit']['embed_tokens']['rows'] < 512

def test_fit_map():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 6, generator=g, dtype=torch.float64); M = torch.randn(6, 6, generator=g, dtype=torch.float64)
    assert torch.allclose(fit_map(X, X @ M), M, atol=1e-10)
    with pytest.raises(VikhrError, match='ridge > 0'): fit_map(X[:5], X[:5] @ M)
    with pytest.raises(VikhrError, match='rank-deficient'): fit_map(torch.cat([X[:, :5], X[:, :1]], 1), X @ M)
    assert torch.isfinite(fit_map(torch.cat([X[:, :5], X[:, :1]], 1), X @ M, ridge=1e-3)).all()
    with pytest.raises(VikhrError, match='ridge must be'): fit_map(X, X, ridge=-1)

def test_cli_end_to_end(toks, tmp_path):
    tok, itok, ext, mp, _ = toks
    b, a, i, M, _ = trio(toks, tie=False)
    b[0].save_pretrained(tmp_path/'base'); tok.save_pretrained(tmp_path/'base')
    i[0].save_pretrained(tmp_path/'inst'); itok.save_pretrained(tmp_path/'inst')
    save_adapted_model(a[0], ext, tmp_path/'adapted', mp, old_vocab_size=len(tok), mode='extend')
    r = run_vikhr('lep', '--base', tmp_path/'base', '--adapted', tmp_path/'adapted', '--instruct', tmp_path/'inst', '--method', 'conversion', '--out', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec['method'] == 'conversion' and rec['mapping_from'].endswith(MAPPING_FILE) and rec['info']['fit']['lm_head']['residual'] < 1e-6
    assert (tmp_path/'out'/MAPPING_FILE).read_bytes() == (tmp_path/'adapted'/MAPPING_FILE).read_bytes()
    m = AutoModelForCausalLM.from_pretrained(tmp_path/'out')
    assert torch.allclose(new_rows(m, mp), new_rows(a[0], mp) @ M.double(), atol=1e-5)
    cfg = tmp_path/'lep.yaml'                                                       # a config file; flags override it
    cfg.write_text(f"base: {tmp_path/'base'}\nadapted: {tmp_path/'adapted'}\ninstruct: {tmp_path/'inst'}\nmethod: overlap\nout: {tmp_path/'out2'}\n")
    r = run_vikhr('lep', cfg, '--instruct', tmp_path/'base')                        # the base has no chat template
    assert r.returncode != 0 and 'no chat template' in r.stderr and not (tmp_path/'out2').exists()
    cfg.write_text(cfg.read_text() + 'colour: blue\n')
    r = run_vikhr('lep', cfg)
    assert r.returncode != 0 and "unknown keys: ['colour']" in r.stderr
