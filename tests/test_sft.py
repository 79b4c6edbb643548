"Instruction tuning: the loss mask on real chat templates, chat training packed and unpacked, LoRA on chosen layers, resume, bad input."
import copy, json, math
from pathlib import Path
import pytest, torch, yaml
import torch.nn.functional as F
from torch.utils.data import DataLoader
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama, load_tokenizer
from vikhr_nb.train import (train, load_config, tiny_tokenizer, format_conversation, tokenize_chat, chat_blocks, MixedBlocks,
                            collate_rows, lm_loss, prepare_model, TrainConfig, _pad_id)
from vikhr_nb.sft import write_conversations, read_conversations, sft, sft_config

# ChatML without a default system prompt (SmolLM2's own template always inserts one)
CHATML = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}")

@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def smol_tok(): return load_tokenizer()

def labelled(r):
    "Runs of consecutive labelled positions: (start, end) pairs."
    runs, start = [], None
    for j, l in enumerate(r['labels'] + [-100]):
        if l != -100 and start is None: start = j
        if l == -100 and start is not None: runs.append((start, j)); start = None
    return runs

def test_mask_smollm2_template(smol_tok):
    "SmolLM2's template: the default system prompt, the question and the role header unscored; the answer and <|im_end|> scored."
    tok = smol_tok
    r = format_conversation(tok, [{'role': 'user', 'content': 'What is the capital of France?'}, {'role': 'assistant', 'content': 'Paris.'}])
    ids, labels = r['input_ids'], r['labels']
    assert len(ids) == len(labels)
    (a, b), = labelled(r)
    assert labels[a:b] == ids[a:b]
    assert tok.decode(ids[a:b]) == 'Paris.<|im_end|>'
    assert ids[b - 1] == tok.convert_tokens_to_ids('<|im_end|>')
    assert tok.decode(ids[:a]).startswith('<|im_start|>system\nYou are a helpful AI assistant named SmolLM')
    assert tok.decode(ids[:a]).endswith('What is the capital of France?<|im_end|>\n<|im_start|>assistant\n')
    assert tok.decode(ids[b:]) == '\n'  # the template's newline after the end of turn is not scored

@pytest.mark.parametrize('template', ['smollm2', 'chatml'])
def test_mask_system_turn_two_answers(smol_tok, template):
    "An explicit system turn and two answers: exactly the two answers (each with its end token) are labelled, token by token."
    tok = smol_tok
    if template == 'chatml': tok = copy.deepcopy(smol_tok); tok.chat_template = CHATML
    conv = [{'role': 'system', 'content': 'Отвечай одним словом.'}, {'role': 'user', 'content': 'Столица Италии?'},
            {'role': 'assistant', 'content': 'Рим.'}, {'role': 'user', 'content': 'А Испании?'}, {'role': 'assistant', 'content': 'Мадрид.'}]
    r = format_conversation(tok, conv)
    ids = r['input_ids']
    spans = labelled(r)
    assert [tok.decode(ids[a:b]) for a, b in spans] == ['Рим.<|im_end|>', 'Мадрид.<|im_end|>']
    assert [ids[a:b] for a, b in spans] == [tok('Рим.<|im_end|>')['input_ids'], tok('Мадрид.<|im_end|>')['input_ids']]
    assert all(r['labels'][j] == ids[j] for a, b in spans for j in range(a, b))
    assert sum(l != -100 for l in r['labels']) == sum(b - a for a, b in spans)
    assert tok.decode(ids).startswith('<|im_start|>system\nОтвечай одним словом.')  # no default system prompt added
    assert tok.decode(ids[spans[0][1]:spans[1][0]]) == '\n<|im_start|>user\nА Испании?<|im_end|>\n<|im_start|>assistant\n'

def test_bad_conversations(smol_tok):
    with pytest.raises(VikhrError, match='no assistant turn'):
        format_conversation(smol_tok, [{'role': 'user', 'content': 'hi'}])
    with pytest.raises(VikhrError, match='non-empty list'): format_conversation(smol_tok, [])
    with pytest.raises(VikhrError, match="'role'"): format_conversation(smol_tok, [{'role': 'robot', 'content': 'hi'}])
    with pytest.raises(VikhrError, match='string .content'): format_conversation(smol_tok, [{'role': 'user', 'content': None}])
    conv = [{'role': 'user', 'content': 'hi ' * 50}, {'role': 'assistant', 'content': 'hello'}]
    with pytest.raises(VikhrError, match=r'is \d+ tokens, longer than the limit of 16'): format_conversation(smol_tok, conv, max_len=16)
    plain = tiny_tokenizer(['some text to train on'] * 5, vocab_size=300)
    with pytest.raises(VikhrError, match='no chat template'): format_conversation(plain, conv)

# --- training on a tiny model

def chat_tokenizer(texts):
    tok = tiny_tokenizer(texts, vocab_size=400)
    tok.add_special_tokens({'additional_special_tokens': ['<|im_start|>', '<|im_end|>']})
    tok.chat_template = CHATML
    return tok

CONVS = [{'messages': [{'role': 'user', 'content': f'How many pears are in basket {i}?'},
                       {'role': 'assistant', 'content': f'Basket {i} holds {i % 7} pears.'}]} for i in range(40)]

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny Llama (4 layers) with a ChatML tokenizer, and a JSONL file of conversations."
    root = tmp_path_factory.mktemp('sft')
    texts = [m['content'] for c in CONVS for m in c['messages']]
    tok = chat_tokenizer(texts)
    tiny_llama(len(tok), hidden_size=32, n_layers=4, max_len=256).save_pretrained(root/'model'); tok.save_pretrained(root/'model')
    write_conversations(root/'chats.jsonl', CONVS)
    return root, tok

def cfg_for(root, out, **kw):
    return {'model': str(root/'model'), 'train_data': [str(root/'chats.jsonl')], 'output_dir': str(out), 'block_size': 64, 'batch_size': 4,
            'max_steps': 8, 'lr': 1e-2, 'eval_data': [], 'tracker': 'none', 'progress': False, 'mixed_precision': 'no', **kw}

@pytest.mark.parametrize('pack', [True, False])
def test_chat_training_runs(tiny, tmp_path, pack):
    root, tok = tiny
    res = sft(cfg_for(root, tmp_path/'run', pack=pack))
    losses = [m['loss'] for m in res['history'] if 'loss' in m]
    assert len(losses) == 8 and all(math.isfinite(l) for l in losses)
    assert losses[-1] < losses[0] - 0.5, losses
    assert json.loads((tmp_path/'run'/'run.json').read_text())['pack'] == pack

def test_loss_is_nll_of_answers_only(tiny):
    "The loop's loss on one batch equals the mean NLL over the assistant tokens computed by hand; padding and prompts never count."
    root, tok = tiny
    import datasets
    for pack in (True, False):
        rows = tokenize_chat(datasets.Dataset.from_dict({'text': [c['messages'] for c in CONVS[:8]]}), tok, 64, pack=pack)
        collate = (lambda b: collate_rows(b, _pad_id(tok))) if not pack else None
        batch = next(iter(DataLoader(MixedBlocks(rows), batch_size=4, collate_fn=collate)))
        model = tiny_llama(len(tok), hidden_size=32, n_layers=2, max_len=256)
        logits = model(input_ids=batch['input_ids'], attention_mask=batch.get('attention_mask')).logits
        got = lm_loss(logits, batch['input_ids'], batch['labels']).item()
        nll, n = 0.0, 0
        for b in range(batch['input_ids'].shape[0]):
            for t in range(1, batch['input_ids'].shape[1]):
                y = batch['labels'][b, t].item()
                if y == -100: continue
                assert y == batch['input_ids'][b, t].item()
                nll -= F.log_softmax(logits[b, t - 1].double(), -1)[y].item(); n += 1
        assert n > 0 and abs(got - nll / n) < 1e-4
        assert abs(got - lm_loss(logits, batch['input_ids']).item()) > 1e-3  # not the all-token loss
        answers = {tok.decode([i for i, l in zip(row.tolist(), lab.tolist()) if l != -100]) for row, lab in zip(batch['input_ids'], batch['labels'])}
        assert all('<|im_start|>' not in a and 'pears.<|im_end|>' in a for a in answers)

def test_lora_layers(tiny):
    root, tok = tiny
    m = prepare_model(tiny_llama(len(tok), n_layers=4), TrainConfig(mode='lora', lora_layers=[0, -1]))
    layers = {n.split('layers.')[1].split('.')[0] for n, _ in m.named_parameters() if 'lora_' in n}
    assert layers == {'0', '3'}
    trained = {n for n, p in m.named_parameters() if p.requires_grad}
    assert any('embed_tokens' in n for n in trained) and all('lora_' in n or 'embed_tokens' in n or 'lm_head' in n for n in trained)
    all_layers = prepare_model(tiny_llama(len(tok), n_layers=4), TrainConfig(mode='lora'))
    assert {n.split('layers.')[1].split('.')[0] for n, _ in all_layers.named_parameters() if 'lora_' in n} == {'0', '1', '2', '3'}
    with pytest.raises(VikhrError, match=r'lora_layers \[4\] out of range: the model has 4 layers'):
        prepare_model(tiny_llama(len(tok), n_layers=4), TrainConfig(mode='lora', lora_layers=[0, 4]))

def test_resume_chat_matches_uninterrupted(tiny, tmp_path):
    "Stopped at step 3 and resumed: the same losses as a straight run (dict batches with labels go through skip_first_batches)."
    root, tok = tiny
    kw = dict(pack=False, max_steps=6, save_every=3)
    straight = sft(cfg_for(root, tmp_path/'a', **kw))
    sft(cfg_for(root, tmp_path/'b', stop_at_step=3, **kw))
    resumed = sft(cfg_for(root, tmp_path/'b', **kw))
    loss = lambda r: [round(m['loss'], 5) for m in r['history'] if 'loss' in m]
    assert loss(resumed) == loss(straight)

def test_bad_chat_input(tiny, tmp_path):
    root, tok = tiny
    noans = tmp_path/'noans.jsonl'
    noans.write_text(json.dumps(CONVS[0]) + '\n' + json.dumps({'messages': [{'role': 'user', 'content': 'hi'}]}) + '\n')
    with pytest.raises(VikhrError, match=r'noans.jsonl row 1: the conversation has no assistant turn'):
        sft(cfg_for(root, tmp_path/'r1', train_data=[str(noans)]))
    long = tmp_path/'long.jsonl'
    write_conversations(long, [CONVS[0], {'messages': [{'role': 'user', 'content': 'pears ' * 200}, {'role': 'assistant', 'content': 'ok'}]}])
    with pytest.raises(VikhrError, match=r'long.jsonl row 1: the conversation is \d+ tokens, longer than the limit of 64'):
        sft(cfg_for(root, tmp_path/'r2', train_data=[str(long)]))
    text = tmp_path/'text.jsonl'; text.write_text(json.dumps({'text': 'plain text'}) + '\n')
    with pytest.raises(VikhrError, match="data_format 'chat' reads conversations from a `messages` column"):
        sft(cfg_for(root, tmp_path/'r3', train_data=[str(text)]))
    with pytest.raises(VikhrError, match=r'lora_layers \[-5\] out of range: the model has 4 layers'):
        sft(cfg_for(root, tmp_path/'r4', lora_layers=[0, -5]))
    with pytest.raises(VikhrError, match='lora_layers must be list'): load_config({'lora_layers': ['first']})
    with pytest.raises(VikhrError, match="needs mode 'lora'"): load_config({'lora_layers': [0]})
    with pytest.raises(VikhrError, match="data_format must be 'text'"): load_config({'data_format': 'messages'})
    with pytest.raises(VikhrError, match="pack: false .* needs data_format 'chat'"): load_config({'pack': False})
    plain = tmp_path/'plain'; tiny_llama(300, n_layers=2).save_pretrained(plain)
    tiny_tokenizer(['pears and apples'] * 5, vocab_size=300).save_pretrained(plain)
    with pytest.raises(VikhrError, match='no chat template'): sft(cfg_for(root, tmp_path/'r5', model=str(plain)))
    (tmp_path/'bad.jsonl').write_text('{"messages": [{"role": "human", "content": "hi"}]}\n')
    with pytest.raises(VikhrError, match=r'bad.jsonl line 1: message 0 must be a dict with a .role.'): read_conversations(tmp_path/'bad.jsonl')

def test_cli_flags():
    "`vikhr train --data-format chat --lora-layers 0 -1` and `vikhr sft` go through the flag machinery."
    from vikhr_nb.cli import build_parser
    a = build_parser().parse_args(['train', '--data-format', 'chat', '--no-pack', '--mode', 'lora', '--lora-layers', '0', '-1'])
    cfg = load_config(None, **{k: v for k, v in vars(a).items() if k in TrainConfig.__dataclass_fields__})
    assert (cfg.data_format, cfg.pack, cfg.lora_layers) == ('chat', False, [0, -1])
    a = build_parser().parse_args(['sft', '--train-data', 'c.jsonl', '--max-steps', '3'])
    cfg = sft_config(None, **{k: v for k, v in vars(a).items() if k in TrainConfig.__dataclass_fields__})
    assert (cfg.data_format, cfg.mode, cfg.max_steps, cfg.lr) == ('chat', 'lora', 3, 2e-4)

def test_shipped_sft_configs():
    root = Path(__file__).resolve().parents[1]/'configs'/'sft'
    cal, full = sft_config(root/'calibration.yaml'), sft_config(root/'full.yaml')
    assert (cal.mode, cal.lora_layers, cal.data_format) == ('lora', [0, -1], 'chat')
    assert (full.mode, full.lora_layers) == ('full', [])

def test_sft_cli_end_to_end(tiny, tmp_path):
    "`vikhr sft` trains and writes a plain transformers model with a chat template."
    root, tok = tiny
    from vikhr_nb.cli import main
    from transformers import AutoTokenizer
    assert main(['sft', '--model', str(root/'model'), '--train-data', str(root/'chats.jsonl'), '--output-dir', str(tmp_path/'o'),
                 '--max-steps', '2', '--block-size', '64', '--batch-size', '2', '--eval-data', '--tracker', 'none', '--no-progress',
                 '--lora-layers', '0', '-1']) == 0
    assert AutoTokenizer.from_pretrained(tmp_path/'o'/'model').chat_template == CHATML
    assert json.loads((tmp_path/'o'/'model'/'vikhr_train.json').read_text())['config']['lora_layers'] == [0, -1]

def test_full_with_kl_unpacked(tiny, tmp_path):
    "configs/sft/full.yaml's kind of run: all weights, KL to the start (padding masked out of it), one conversation per row."
    root, tok = tiny
    res = sft(cfg_for(root, tmp_path/'full', mode='full', kl_weight=0.1, pack=False, max_steps=3, lr=1e-3))
    ms = [m for m in res['history'] if 'loss' in m]
    assert ms[0]['kl'] < 1e-6 < ms[-1]['kl']  # the first step starts at the reference itself
    assert all(math.isfinite(m['loss']) and abs(m['loss'] - m['ce'] - 0.1 * m['kl']) < 1e-5 for m in ms)
