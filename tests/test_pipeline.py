"The whole adaptation (vikhr adapt / vikhr demo): stages chained, skipped when done, resumed after a crash, bad configs refused."
import json, os, shutil
from pathlib import Path
import pytest, yaml, torch
from vikhr_nb.core import VikhrError
from vikhr_nb import pipeline as P
from vikhr_nb.pipeline import adapt, load_pipeline_config, config_dict, PipelineConfig
from vikhr_nb.models import tiny_llama, load_tokenizer
from conftest import ROOT, run_vikhr

def small_config(model_dir, out, **train):
    return {'name': 'tiny', 'model': str(model_dir), 'out_dir': str(out),
            'data': {'max_target_chars': 200_000, 'max_replay_chars': 100_000, 'eval_max_chars': 1500, 'mc_max_items': 3},
            'tokenizer': {'vocab_size': 1500},
            'embeddings': {'fit_tokens': 4000, 'fit_replay_tokens': 1000},
            'train': {'mode': 'embeddings', 'max_steps': 2, 'batch_size': 2, 'block_size': 64, 'lr': 1e-3, 'replay_ratio': 0.25,
                      'eval_data': [], 'replay_eval_data': [], 'tracker': 'none', 'progress': False, **train},
            'sft': {'self_calibration': 4, 'calibration_tokens': 8, 'copy_examples': 4, 'instructions': 8,
                    'train': {'mode': 'full', 'max_steps': 2, 'batch_size': 2, 'block_size': 512, 'lr': 1e-3, 'tracker': 'none', 'progress': False}},
            'eval': {'block_size': 512, 'batch_size': 2, 'speed_prompts': 1, 'max_new_tokens': 4, 'chat_prompts': 2, 'copy_texts': 2,
                     'copy_chars': 60, 'chat_max_new_tokens': 4}}

REQUIRED = ['tokenizer.original.ru.chars_per_token', 'tokenizer.adapted.ru.chars_per_token', 'tokenizer.original.en.tokens_per_word',
            'tokenizer.adapted.en.tokens_per_word', 'bpc.original.ru', 'bpc.init.ru', 'bpc.trained.ru', 'bpc.original.en', 'bpc.trained.en',
            'speed.original.ru_words_per_s', 'speed.final.ru_words_per_s', 'vocab_size.original', 'vocab_size.adapted',
            'mc.original.ru_mc_manpages.acc', 'mc.final.ru_mc_manpages.acc', 'bpc.final.ru', 'bpc.final.en',
            *[f'chat.{st}.{k}' for st in ('original', 'trained', 'final') for k in
              ('answer_bpc.ru.bpc', 'answer_bpc.en.bpc', 'copy.exact', 'copy.similarity', 'language.ru.share', 'language.en.share', 'facts.share')]]

def _get(d, path):
    for k in path.split('.'): d = d[k]
    return d

def test_adapt_end_to_end_then_skips_everything(tiny_model_dir, tmp_path, caplog):
    out = tmp_path/'run'
    rep = adapt(small_config(tiny_model_dir, out))
    for k in REQUIRED: assert isinstance(_get(rep, k), (int, float)), k
    assert rep['vocab_size']['adapted'] > rep['vocab_size']['original']
    assert rep['tokenizer']['adapted']['ru']['chars_per_token'] > rep['tokenizer']['original']['ru']['chars_per_token']
    same = lambda d: {k: v for k, v in d.items() if k not in ('vocab_use', 'vocab_size')}
    assert same(rep['tokenizer']['adapted']['en']) == same(rep['tokenizer']['original']['en'])  # extend: English tokenized as before
    for f in ('report.json', 'report.md', 'eval/bpc.png', 'eval/tokens_per_word.png', 'eval/speed.png', 'config.yaml'): assert (out/f).exists(), f
    assert json.loads((out/'report.json').read_text()) == rep
    fit = json.loads((out/'embeddings'/'vikhr_stage.json').read_text())['results']['fit_head']  # the new head rows were fitted
    assert fit['loss_after'] < fit['loss_before'] and fit['positions'] >= 5000
    sft = json.loads((out/'sft'/'vikhr_stage.json').read_text())['results']
    assert sft['data']['copy_examples'] == 4 and sft['data']['instructions'] == 8 and sft['step'] == 2
    cal = [json.loads(l) for l in (out/'sft'/'calibration.jsonl').read_text().splitlines()]
    assert len(cal) == sft['data']['conversations'] and all(c['messages'][-1]['role'] == 'assistant' for c in cal)
    stamps = {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}
    assert len(stamps) == 6
    assert set(rep['peak_memory_gb']) == set(rep['seconds']) and all(v > 0 for v in rep['peak_memory_gb'].values())
    rep2 = adapt(small_config(tiny_model_dir, out))  # everything is complete: nothing runs again
    assert rep2 == rep and stamps == {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}

def test_crash_resumes_at_the_failed_stage(tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path/'run'
    def crash(*a, **k): raise RuntimeError('simulated crash in the evaluation stage')
    monkeypatch.setattr(P, 'eval_stage', crash)
    with pytest.raises(RuntimeError, match='simulated crash'): adapt(small_config(tiny_model_dir, out))
    assert not (out/'eval').exists() and (out/'train'/'vikhr_stage.json').exists()
    done = {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}
    monkeypatch.undo()
    rep = adapt(small_config(tiny_model_dir, out))
    assert 'bpc' in rep and {p: p.stat().st_mtime for p in done} == done  # earlier stages were not redone

def test_calibration_data_of_another_config_is_rebuilt(tiny_model_dir, tmp_path, monkeypatch):
    "A crash inside sft training leaves its conversations; a rerun reuses them only for the same sft settings."
    import vikhr_nb.sft as S
    out, cfg = tmp_path/'run', small_config(tiny_model_dir, tmp_path/'run')
    def crash(*a, **k): raise RuntimeError('simulated crash in sft training')
    monkeypatch.setattr(S, 'sft', crash)
    with pytest.raises(RuntimeError, match='simulated crash'): adapt(cfg)
    rec = json.loads((out/'sft'/'calibration.json').read_text())
    assert rec['copy_examples'] == 4 and not (out/'sft'/'vikhr_stage.json').exists()
    monkeypatch.undo()
    cfg['sft']['copy_examples'] = 2
    rep = adapt(cfg)
    res = json.loads((out/'sft'/'vikhr_stage.json').read_text())['results']
    assert res['data']['copy_examples'] == 2 and 'fingerprint' not in res['data'] and 'bpc' in rep
    assert json.loads((out/'sft'/'calibration.json').read_text())['fingerprint'] == json.loads((out/'sft'/'vikhr_stage.json').read_text())['fingerprint']

def test_output_of_another_config_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path/'run'
    cfg = small_config(tiny_model_dir, out)
    P.run_stage('data', out/'data', P.fingerprint({'other': 1}), lambda o: {})
    with pytest.raises(VikhrError, match='different configuration'): adapt(cfg)

def test_bad_configs_fail_before_any_compute(tmp_path):
    with pytest.raises(VikhrError, match='no such file'): load_pipeline_config({'data': {'target': [str(tmp_path/'missing.jsonl')]}})
    with pytest.raises(VikhrError, match='unknown setting'): load_pipeline_config({'tokenizer': {'size': 3}})
    with pytest.raises(VikhrError, match='unknown setting'): load_pipeline_config({'epochs': 3})
    with pytest.raises(VikhrError, match='too small'): load_pipeline_config({'tokenizer': {'vocab_size': 10}})
    with pytest.raises(VikhrError, match='does not exist'): load_pipeline_config(tmp_path/'nope.yaml')
    with pytest.raises(VikhrError, match='not a device name'): load_pipeline_config({'device': 'gpu'})
    if not torch.cuda.is_available():
        with pytest.raises(VikhrError, match='CUDA device'): load_pipeline_config({'device': 'cuda'})
    r = run_vikhr('adapt', tmp_path/'nope.yaml')
    assert r.returncode == 2 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr

def test_demo_yaml_is_the_demo():
    shipped = yaml.safe_load((ROOT/'configs'/'demo.yaml').read_text())
    assert shipped == config_dict(PipelineConfig())

@pytest.mark.parametrize('name', ['smollm2-360m', 'qwen2.5-0.5b', 'llama-3.2-1b'])
def test_gpu_configs_are_valid(name):
    load_pipeline_config(ROOT/'configs'/'gpu'/f'{name}.yaml')

def test_lep_stage_propagates_into_the_instruct_variant(tiny_model_dir, tmp_path):
    "With lep.instruct set, the trained embeddings move into the variant: its body is kept bit for bit, the report's final model is it."
    from transformers import AutoModelForCausalLM
    variant = tmp_path/'variant'
    m = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if 'embed_tokens' not in n and 'lm_head' not in n: p.add_(0.01 * torch.randn_like(p))  # an "instruction-tuned" body
    m.save_pretrained(variant); load_tokenizer(tiny_model_dir).save_pretrained(variant)
    cfg = small_config(tiny_model_dir, tmp_path/'run')
    cfg['lep'] = {'instruct': str(variant), 'method': 'conversion', 'ridge': 1e-3}
    cfg['sft']['enabled'] = False
    rep = adapt(cfg)
    out = AutoModelForCausalLM.from_pretrained(tmp_path/'run'/'lep')
    body = lambda sd: {k: v for k, v in sd.items() if 'embed_tokens' not in k and 'lm_head' not in k}
    b_out, b_var = body(out.state_dict()), body(AutoModelForCausalLM.from_pretrained(variant).state_dict())
    assert b_out.keys() == b_var.keys() and all(torch.equal(b_out[k], b_var[k]) for k in b_var)
    assert isinstance(rep['bpc']['final']['ru'], float) and 'sft' not in {p.parent.name for p in (tmp_path/'run').glob('*/vikhr_stage.json')}

def test_bad_pipeline_settings_fail_before_any_stage(tiny_model_dir, tmp_path):
    with pytest.raises(VikhrError, match='vocab_size must be int'): load_pipeline_config({'tokenizer': {'vocab_size': 'ten'}})
    with pytest.raises(VikhrError, match='lep.method'): load_pipeline_config({'lep': {'method': 'magic'}})
    with pytest.raises(VikhrError, match='data.tasks key'): load_pipeline_config({'data': {'tasks': {'../../x': 'manifest:lang=ru,split=heldout,kind=task'}}})
    with pytest.raises(VikhrError, match='data.heldout key'): load_pipeline_config({'data': {'heldout': {'ru': ['manifest:lang=ru,split=heldout'], 'a/b': ['manifest:lang=en,split=heldout']}}})
    out = tmp_path/'run'
    with pytest.raises(VikhrError, match='block_size 2048 is longer than the context'):  # the tiny model has 1024 positions
        adapt(small_config(tiny_model_dir, out, block_size=2048))
    assert not out.exists() or not any(out.iterdir())  # refused before the first stage wrote anything

def test_a_stage_directory_without_a_record_is_not_replaced(tmp_path):
    d = tmp_path/'data'; d.mkdir(); (d/'mine.txt').write_text('a user file')
    with pytest.raises(VikhrError, match='no stage record'): P.run_stage('data', d, 'abc', lambda o: {})
    assert (d/'mine.txt').read_text() == 'a user file'

def test_vikhr_eval_measures_a_saved_model_beside_its_original(tiny_model_dir, tmp_path):
    "`vikhr eval` writes the eval stage's report; a model measured beside itself scores exactly what the original scores."
    cfg = small_config(tiny_model_dir, tmp_path/'unused')
    out = tmp_path/'ev'
    rep = P.evaluate(tiny_model_dir, tiny_model_dir, out, {k: cfg[k] for k in ('data', 'eval')})
    assert rep['bpc']['final'] == rep['bpc']['original'] and rep['tokenizer']['adapted'] == rep['tokenizer']['original']
    same = lambda c: {k: v for k, v in c.items() if k != 'seconds'}
    assert same(rep['chat']['final']['copy']) == same(rep['chat']['original']['copy'])  # greedy: the same answers
    assert 'adapted, final' in (out/'report.md').read_text() and set(rep['seconds']) == {'data', 'eval'}
    stamps = {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}
    assert P.evaluate(tiny_model_dir, tiny_model_dir, out, {k: cfg[k] for k in ('data', 'eval')}) == rep  # complete: skipped
    assert stamps == {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}
    base = tmp_path/'base'; shutil.copytree(tiny_model_dir, base)
    tc = json.loads((base/'tokenizer_config.json').read_text()); tc.pop('chat_template', None)
    (base/'tokenizer_config.json').write_text(json.dumps(tc)); (base/'chat_template.jinja').unlink(missing_ok=True)
    with pytest.raises(VikhrError, match='no chat template.*--no-chat'): P.evaluate(base, tiny_model_dir, tmp_path/'ev2', {k: cfg[k] for k in ('data', 'eval')})
    assert not (tmp_path/'ev2').exists()
    r = run_vikhr('eval', 'nosuch', '--original', str(tiny_model_dir), '--out', str(tmp_path/'ev3'))
    assert r.returncode == 2 and 'unknown model' in r.stderr and not (tmp_path/'ev3').exists()

@pytest.mark.skipif(shutil.which('lm_eval') is None, reason='lm-eval is not installed (pip install -e ".[dev]")')
def test_vikhr_eval_runs_lm_eval_on_both_models(tiny_model_dir, tmp_path, monkeypatch):
    "`vikhr eval --lm-eval TASK`: the harness scores both models on a local task, offline; a hub task without the hub is refused before any work."
    cfg = {k: small_config(tiny_model_dir, tmp_path/'unused')[k] for k in ('data', 'eval')}
    rep = P.evaluate(tiny_model_dir, tiny_model_dir, tmp_path/'ev', cfg, lm_eval=['ru_mc_manpages'], lm_eval_limit=3)
    s = rep['lm_eval']
    assert s['original'] == s['final'] and {'acc', 'acc_norm'} <= set(s['original']['ru_mc_manpages'])  # the same model twice
    assert '## lm-eval' in (tmp_path/'ev'/'report.md').read_text() and json.loads((tmp_path/'ev'/'report.json').read_text()) == rep
    monkeypatch.setattr('vikhr_nb.models.hub_reachable', lambda *a, **k: False)
    with pytest.raises(VikhrError, match='need the Hugging Face hub'):
        P.evaluate(tiny_model_dir, tiny_model_dir, tmp_path/'ev2', cfg, lm_eval=['belebele_rus_Cyrl'])
    assert not (tmp_path/'ev2').exists()

def test_until_stops_after_a_stage_and_the_baseline_trains_the_original_the_same_way(tiny_model_dir, tmp_path):
    "`--until embeddings` runs the single-process stages only; the rest resumes from them; `baseline: same-training` adds a report column."
    out = tmp_path/'run'
    cfg = small_config(tiny_model_dir, out, mode='full') | {'baseline': 'same-training'}
    cfg['sft'] = {'enabled': False}; cfg['eval'] |= {'chat': False}
    with pytest.raises(VikhrError, match="until must be one of the stages"): adapt(cfg, until='training')
    r = run_vikhr('adapt', _write_yaml(tmp_path/'c.yaml', cfg), '--until', 'embeddings')
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.parent.name for p in out.glob('*/vikhr_stage.json')) == ['data', 'embeddings', 'tokenizer']
    done = {p: p.stat().st_mtime for p in out.glob('*/vikhr_stage.json')}
    rep = adapt(cfg)
    assert {p: p.stat().st_mtime for p in done} == done  # the first three were not redone
    base = json.loads((out/'baseline'/'vikhr_stage.json').read_text())['results']
    train = json.loads((out/'train'/'vikhr_stage.json').read_text())['results']
    assert base['step'] == train['step'] == 2 and base['tokens'] == train['tokens']  # the same compute
    assert load_tokenizer(base['model_dir']).get_vocab() == load_tokenizer(tiny_model_dir).get_vocab()  # with its own tokenizer
    assert rep['bpc']['baseline']['ru'] != rep['bpc']['original']['ru']  # it was trained
    read = rep['train_reading']
    assert read['baseline']['tokens'] == read['trained']['tokens'] and read['trained']['chars'] > read['baseline']['chars']  # more Russian for the same tokens
    assert 'original + same training' in (out/'report.md').read_text() and 'baseline' in rep['seconds']
    with pytest.raises(VikhrError, match="baseline must be 'none' or 'same-training'"): load_pipeline_config(cfg | {'baseline': 'yes'})
    bad = small_config(tiny_model_dir, tmp_path/'bad', train_rows='new') | {'baseline': 'same-training'}
    with pytest.raises(VikhrError, match="the original has none"): load_pipeline_config(bad)

def _write_yaml(path, d):
    path.write_text(yaml.safe_dump(d, allow_unicode=True)); return path

def test_a_capped_hub_stream_goes_to_disk_as_it_is_read(tmp_path, monkeypatch):
    "The data stage takes `max_target_chars` of a streamed (hub) corpus document by document into its file, and stops reading there."
    from datasets import IterableDataset
    from vikhr_nb import data as D
    docs = [f'Документ номер {i}: ' + 'текст на русском языке. ' * 20 for i in range(10_000)]
    read = []
    def gen():
        for d in docs: read.append(1); yield {'text': d}
    real = D.load_corpus
    monkeypatch.setattr(D, 'load_corpus', lambda specs, **kw: IterableDataset.from_generator(gen) if kw.get('streaming') else real(specs, **kw))
    out = tmp_path/'data'; out.mkdir()
    res = P._load_texts(['hub:someone/ru-web'], True, 'Cyrillic', 'exact', 50_000, out/'target.jsonl')
    got = [json.loads(l)['text'] for l in (out/'target.jsonl').read_text().splitlines()]
    assert got == docs[:len(got)] and 50_000 <= sum(map(len, got)) < 50_000 + len(docs[0])
    assert res['documents'] == len(got) and res['characters'] == sum(map(len, got))
    assert len(read) <= 2000  # the stream was read only as far as the cap (and the script filter's batch of 1,000), not to its end
    assert sorted(p.name for p in out.iterdir()) == ['target.jsonl']  # the raw take and its cache are gone
    with pytest.raises(VikhrError, match='set max_target_chars'): P._load_texts(['hub:someone/ru-web'], True, None, 'none', None, out/'x.jsonl')

def test_embeddings_stage_can_untie_rescale_and_distill_the_new_rows(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    out = tmp_path/'run'
    cfg = small_config(tiny_model_dir, out)
    cfg['embeddings'] |= {'untie': True, 'norm_match': True, 'distill_steps': 3}
    res = adapt(cfg, until='embeddings')
    assert res['untied'] and res['distill']['steps'] == 3 and res['norm_scale'] > 0
    m = AutoModelForCausalLM.from_pretrained(out/'embeddings')
    new = sorted(int(k) for k in json.loads((out/'embeddings'/'vikhr_mapping.json').read_text())['pieces'])
    E, H = m.get_input_embeddings().weight, m.get_output_embeddings().weight
    assert not m.config.tie_word_embeddings and not torch.equal(E[new], H[new])  # separate input and output rows
    old = AutoModelForCausalLM.from_pretrained(tiny_model_dir).get_input_embeddings().weight
    assert torch.equal(E[:old.shape[0]][:100], old[:100])  # shared rows are the original's (the first ids of SmolLM2's vocabulary are kept)
    with pytest.raises(VikhrError, match='distill_steps must be 0'): load_pipeline_config({'embeddings': {'distill_steps': -1}})

def test_the_word_term_reads_the_original_unless_told_otherwise(tiny_model_dir, tmp_path):
    "`train.word_ll_weight` alone: the training stage's word term targets the pipeline's original model; a `word_ll_model` given is kept."
    cfg = load_pipeline_config(small_config(tiny_model_dir, tmp_path/'run', word_ll_weight=0.1))
    assert P._train_fields(cfg, tmp_path/'run')['word_ll_model'] == str(tiny_model_dir)
    cfg = load_pipeline_config(small_config(tiny_model_dir, tmp_path/'run', word_ll_weight=0.1, word_ll_model='other'))
    assert P._train_fields(cfg, tmp_path/'run')['word_ll_model'] == 'other'
    assert 'word_ll_model' not in P._train_fields(load_pipeline_config(small_config(tiny_model_dir, tmp_path/'run')), tmp_path/'run')
