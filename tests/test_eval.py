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

# --- chat quality (answer bits per character, copy score, answer language, facts) and the report around them

CONV = [{'role': 'user', 'content': 'What is the capital of France?'}, {'role': 'assistant', 'content': 'The capital of France is Paris.'}]

def test_answer_bits_per_char_by_hand(smol):
    "The bits of the answer tokens (the end-of-turn token included), computed by hand from one forward pass, over the answer's characters."
    from vikhr_nb.eval import answer_bits_per_char
    model, tok = smol
    full = tok.apply_chat_template([CONV[0]], add_generation_prompt=True, tokenize=True, return_dict=True)['input_ids']
    ans = tok(CONV[1]['content'], add_special_tokens=False).input_ids + [tok.convert_tokens_to_ids('<|im_end|>')]
    ids = torch.tensor([full + ans])
    with torch.no_grad(): logp = model(input_ids=ids).logits[0].float().log_softmax(-1)  # (T, V)
    bits = -sum(logp[len(full) + k - 1, t].item() for k, t in enumerate(ans)) / 0.6931471805599453
    r = answer_bits_per_char(model, tok, [CONV, {'messages': CONV}], batch_size=2)
    assert r['n_tokens'] == 2 * len(ans) and r['n_chars'] == 2 * len(CONV[1]['content']) and r['n'] == 2
    assert r['nll_bits'] == pytest.approx(2 * bits, rel=1e-3)  # a batch of two: float32 sums in another order
    assert r['bpc'] == pytest.approx(bits / len(CONV[1]['content']), rel=1e-3) and r['bpc'] < 1  # the model knows this answer

def test_copy_score_tiny_and_real(smol, tiny_dir):
    "A random model copies nothing (but its similarity is a finite share); the original copies a short English sentence exactly."
    from vikhr_nb.eval import copy_score
    from transformers import AutoModelForCausalLM
    model, tok = smol
    tiny = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    t = copy_score(tiny, tok, ['The cat sat on the mat.'], max_new_tokens=6)
    assert t['exact'] == 0 and 0 <= t['similarity'] < 1 and t['samples'][0]['n_tokens'] <= 6
    r = copy_score(model, tok, ['  The cat sat on the mat.\n'])
    assert r['exact'] == 1 and r['similarity'] == 1 and r['samples'][0]['answer'] == 'The cat sat on the mat.'
    assert r['samples'][0]['budget'] == r['samples'][0]['text_tokens'] + 8

def test_score_answers_counts_scripts_and_loops():
    "An answer counts in a script when half its letters are; loops are answers whose word 3-grams repeat."
    from vikhr_nb.eval import score_answers
    s = score_answers(['Ядро Linux — основная часть системы.', {'answer': 'Ядро (kernel) is the core of the OS', 'n_tokens': 9},
                       'и снова и снова и снова и снова и снова', '42'], 'Cyrillic')
    assert [a['in_script'] for a in s['answers']] == [True, False, True, False]
    assert [a['loops'] for a in s['answers']] == [False, False, True, False]
    assert s['share'] == 0.5 and s['loop_share'] == 0.25 and s['answers'][1]['n_tokens'] == 9
    assert score_answers(['Ядро (kernel) is the core of the OS'], 'Cyrillic', min_share=0.1)['share'] == 1
    assert score_answers(['Der Kern ist groß.'], 'Latin')['share'] == 1

def test_chat_eval_bad_input(smol):
    from vikhr_nb.eval import chat_eval, copy_score, answer_bits_per_char, answer_language, fact_check, score_answers
    model, tok = smol
    with pytest.raises(VikhrError, match='empty'): answer_bits_per_char(model, tok, [])
    with pytest.raises(VikhrError, match='no assistant text'): answer_bits_per_char(model, tok, [CONV[:1]])
    with pytest.raises(VikhrError, match='role'): answer_bits_per_char(model, tok, ['just a string'])
    with pytest.raises(VikhrError, match='no texts'): copy_score(model, tok, [])
    with pytest.raises(VikhrError, match='no texts'): copy_score(model, tok, ['a', '  '])
    with pytest.raises(VikhrError, match='no prompts'): answer_language(model, tok, [], 'Latin')
    with pytest.raises(VikhrError, match='no answers'): score_answers([], 'Latin')
    with pytest.raises(VikhrError, match='pairs'): fact_check(model, tok, qa=[])
    with pytest.raises(VikhrError, match=r"no script given for the prompts in \['ru'\]"): chat_eval(model, tok, {}, [], {'ru': ['Привет']}, {'en': 'Latin'})
    bare = load_tokenizer('smollm2-135m-instruct'); bare.chat_template = None
    for f in (lambda: copy_score(model, bare, ['a']), lambda: answer_bits_per_char(model, bare, [CONV]),
              lambda: fact_check(model, bare), lambda: chat_eval(model, bare, {}, [], {}, {})):
        with pytest.raises(VikhrError, match='no chat template'): f()

OLD_REPORT = {'vocab_size': {'original': 49152, 'adapted': 57152},
              'tokenizer': {'original': {'ru': {'chars_per_token': 1.31, 'tokens_per_word': 5.3}}, 'adapted': {'ru': {'chars_per_token': 3.1, 'tokens_per_word': 2.2}}},
              'bpc': {'original': {'en': 1.1, 'ru': 1.5}, 'trained': {'en': 1.3, 'ru': 1.4}},
              'bpc_repeat': {'original': {'ru': {'repeated': 0.7, 'other': 1.9, 'repeated_chars': 100}}, 'trained': {'ru': {'repeated': 1.6, 'other': 2.1, 'repeated_chars': 100}}},
              'speed': {'original': {'ru_words_per_s': 20.0, 'ru_free_words_per_s': 25.0}, 'adapted': {'ru_words_per_s': 45.0, 'ru_free_words_per_s': 50.0}},
              'mc': {'original': {'ru_mc': {'acc': 0.3, 'acc_norm': 0.35}}, 'trained': {'ru_mc': {'acc': 0.4, 'acc_norm': 0.45}}}}

# report_markdown(OLD_REPORT) before the chat rows and the 'final' stage existed (commit 16aa2f4): pinned byte for byte
OLD_MD = '''| figure | original | adapted, before training | adapted, trained | change |
|---|---:|---:|---:|---:|
| vocabulary size | 49,152 | — | 57,152 | 1.16× |
| en: characters per token | — | — | — |  |
| en: tokens per word | — | — | — |  |
| ru: characters per token | 1.310 | — | 3.100 | 2.37× |
| ru: tokens per word | 5.300 | — | 2.200 | 0.42× |
| en: bits per character | 1.100 | — | 1.300 | 1.18× |
| ru: bits per character | 1.500 | — | 1.400 | 0.93× |
| ru: bits per character, words used before in the text | 0.700 | — | 1.600 | 2.29× |
| ru: bits per character, the rest | 1.900 | — | 2.100 | 1.11× |
| ru: words per second, free generation | 25.000 | — | 50.000 | 2.00× |
| ru: words per second, same text | 20.000 | — | 45.000 | 2.25× |
| ru_mc: acc | 0.300 | — | 0.400 | 1.33× |
| ru_mc: acc_norm | 0.350 | — | 0.450 | 1.29× |
'''

def _chat_result(bpc, exact, share, answer):
    return {'answer_bpc': {'ru': {'bpc': bpc}, 'en': {'bpc': bpc / 2}}, 'copy': {'exact': exact, 'similarity': 0.9, 'samples': [{'text': 'abc', 'answer': 'abd', 'n_tokens': 2}]},
            'language': {'ru': {'share': share, 'loop_share': 0.0}, 'en': {'share': 1.0, 'loop_share': 0.0}}, 'facts': {'share': 1.0},
            'samples': {'ru': [{'prompt': 'Что такое ядро?', 'answer': answer, 'n_tokens': 7}], 'en': []}}

def test_report_with_and_without_final_and_chat(tmp_path):
    "Old reports render exactly as before; 'final' adds a column (the change is then final vs original), 'chat' adds rows, samples and a plot."
    import copy
    from vikhr_nb.eval import report_markdown, write_report
    assert report_markdown(OLD_REPORT) == OLD_MD
    rep = copy.deepcopy(OLD_REPORT)
    rep['bpc']['final'] = {'en': 1.2, 'ru': 1.35}
    rep['chat'] = {'original': _chat_result(2.0, 0.5, 0.25, 'Ядро | это\nчасть'), 'trained': _chat_result(1.8, 0.0, 0.5, 'Ядро'),
                   'final': _chat_result(1.6, 0.75, 0.75, 'Ядро ОС')}
    md = report_markdown(rep)
    lines = md.splitlines()
    assert lines[0] == '| figure | original | adapted, before training | adapted, trained | adapted, final | change |'
    assert '| ru: bits per character | 1.500 | — | 1.400 | 1.350 | 0.90× |' in lines
    assert '| vocabulary size | 49,152 | — | 57,152 | — | 1.16× |' in lines
    assert '| ru: answer bits per character | 2.000 | — | 1.800 | 1.600 | 0.80× |' in lines
    assert '| copy: exact match | 0.500 | — | 0.000 | 0.750 | 1.50× |' in lines
    assert '| ru: prompts answered in ru | 0.250 | — | 0.500 | 0.750 | 3.00× |' in lines
    assert '| fact check | 1.000 | — | 1.000 | 1.000 | 1.00× |' in lines
    tail = md[md.index('## Sample answers'):]
    assert tail.index('### original') < tail.index('### adapted, trained') < tail.index('### adapted, final')
    assert '| ru | Что такое ядро? | Ядро \\| это<br>часть | 7 |' in tail and '| copy | abc | abd | 2 |' in tail
    write_report(rep, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bpc.png', 'chat.png', 'report.json', 'report.md', 'speed.png', 'tokens_per_word.png']
    assert json.loads((tmp_path/'report.json').read_text())['chat']['final']['copy']['exact'] == 0.75
