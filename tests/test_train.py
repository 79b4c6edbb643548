"Continued pretraining: what each mode trains, LoRA merges on tied and untied models, bad input, shipped configs."
import json, os, time
from pathlib import Path
import pytest, torch, yaml
from transformers import AutoModelForCausalLM
from vikhr_nb.core import VikhrError
from vikhr_nb.models import tiny_llama
from vikhr_nb.data import load_corpus
from vikhr_nb.train import train, load_config, expand_stages, tiny_tokenizer, TrainConfig
from conftest import run_vikhr, ROOT

RU, HELDOUT = 'manifest:lang=ru,split=train', 'manifest:lang=ru,split=heldout'

@pytest.fixture(autouse=True)
def one_thread():
    "Tiny models run faster on one thread than on two fighting over 2 cores; restore afterwards."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='session')
def tiny_dirs(tmp_path_factory):
    "Directories of a tied and an untied tiny Llama with a tiny BPE tokenizer trained on the real Russian corpus."
    root = tmp_path_factory.mktemp('tiny')
    tok = tiny_tokenizer(list(load_corpus(RU).select(range(2000))['text']), vocab_size=512)
    out = {}
    for tie in (True, False):
        d = root/('tied' if tie else 'untied')
        tiny_llama(len(tok), hidden_size=32, n_layers=2, tie=tie, max_len=256).save_pretrained(d); tok.save_pretrained(d)
        out[tie] = d
    return out

def small(model_dir, out, **kw):
    "A small config: a few steps of 4 blocks of 32 tokens."
    return {'model': str(model_dir), 'output_dir': str(out), 'train_data': [RU], 'eval_data': [HELDOUT], 'eval_max_chars': 3000,
            'block_size': 32, 'batch_size': 4, 'max_steps': 6, 'lr': 3e-3, 'tracker': 'none', 'progress': False, **kw}

def weights(d): return AutoModelForCausalLM.from_pretrained(d).state_dict()

@pytest.mark.parametrize('tie', [True, False])
def test_embeddings_mode_leaves_every_other_weight_bit_identical(tiny_dirs, tmp_path, tie):
    res = train(small(tiny_dirs[tie], tmp_path/'run', mode='embeddings', eval_max_chars=0))
    before, after = weights(tiny_dirs[tie]), weights(res['model_dir'])
    emb = {'model.embed_tokens.weight', 'lm_head.weight'}
    assert set(before) == set(after)
    for k in before:
        if k in emb: assert not torch.equal(before[k], after[k]), f'{k} was not trained'
        else: assert torch.equal(before[k], after[k]), f'{k} changed in embeddings mode'
    m = AutoModelForCausalLM.from_pretrained(res['model_dir'])
    assert (m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()) == tie
    if tie: assert torch.equal(after['lm_head.weight'], after['model.embed_tokens.weight'])
    else: assert not torch.equal(after['lm_head.weight'], after['model.embed_tokens.weight'])

@pytest.mark.parametrize('tie', [True, False])
def test_train_rows_new_keeps_original_rows_bit_identical(tiny_dirs, tmp_path, tie):
    "With train_rows 'new' only the rows listed in vikhr_mapping.json learn; the mapping travels with the trained model."
    import shutil
    d = tmp_path/'adapted'; shutil.copytree(tiny_dirs[tie], d)
    n = AutoModelForCausalLM.from_pretrained(d).config.vocab_size
    new = list(range(n - 100, n))
    (d/'vikhr_mapping.json').write_text(json.dumps({'version': 1, 'pieces': {str(i): [0] for i in new}}))
    res = train(small(d, tmp_path/'run', mode='embeddings', train_rows='new', eval_max_chars=0))
    before, after = weights(d), weights(res['model_dir'])
    for k in ('model.embed_tokens.weight', 'lm_head.weight'):
        assert torch.equal(before[k][:n-100], after[k][:n-100]), f'{k}: an original row moved'
        assert not torch.equal(before[k][n-100:], after[k][n-100:]), f'{k}: the new rows did not learn'
    assert (Path(res['model_dir'])/'vikhr_mapping.json').exists()
    with pytest.raises(VikhrError, match="train_rows 'new' needs"): train(small(tiny_dirs[tie], tmp_path/'run2', train_rows='new'))
    with pytest.raises(VikhrError, match="mode 'full' trains every weight"): load_config(small(d, tmp_path/'run3', mode='full', train_rows='new'))

def test_tied_matrix_gets_input_and_output_gradients(tiny_dirs):
    "The output side reaches every row, also of tokens that never occur in the input: both sides are trained."
    from vikhr_nb.train import prepare_model, lm_loss
    m = prepare_model(AutoModelForCausalLM.from_pretrained(tiny_dirs[True]), TrainConfig(mode='embeddings'))
    ids = torch.tensor([[5, 6, 7, 8]])
    lm_loss(m(input_ids=ids).logits, ids).backward()
    g = m.model.embed_tokens.weight.grad
    assert g is not None and g[100].abs().sum() > 0  # token 100 is not in the input
    assert all(p.grad is None for n, p in m.named_parameters() if 'embed' not in n)

@pytest.mark.parametrize('tie', [True, False])
def test_lora_merged_model_reloads_with_plain_transformers(tiny_dirs, tmp_path, tie):
    "The merged model scores held-out text exactly as the PEFT model did at the end of training (trained head included)."
    from vikhr_nb.eval import bits_per_char
    res = train(small(tiny_dirs[tie], tmp_path/'run', mode='lora', lora_targets=['q_proj', 'v_proj', 'down_proj'], eval_every=0))
    final_bpc = [m['eval_bpc'] for m in res['history'] if 'eval_bpc' in m][-1]
    merged = AutoModelForCausalLM.from_pretrained(res['model_dir'])  # plain transformers, no peft
    sd, before = merged.state_dict(), weights(tiny_dirs[tie])
    assert not any('lora' in k or 'base_model' in k for k in sd)
    assert not torch.equal(sd['lm_head.weight'], before['lm_head.weight'])  # the trained head was kept
    assert torch.equal(sd['model.layers.0.self_attn.k_proj.weight'], before['model.layers.0.self_attn.k_proj.weight'])  # not a target
    assert not torch.equal(sd['model.layers.0.self_attn.q_proj.weight'], before['model.layers.0.self_attn.q_proj.weight'])  # merged
    assert (merged.lm_head.weight.data_ptr() == merged.model.embed_tokens.weight.data_ptr()) == tie
    from vikhr_nb.train import _take_chars
    from transformers import AutoTokenizer
    texts = _take_chars(load_corpus(HELDOUT), 3000)
    r = bits_per_char(merged, AutoTokenizer.from_pretrained(res['model_dir']), texts, block_size=32, batch_size=8)
    assert abs(r['bpc'] - final_bpc) < 1e-4

def test_kl_term_is_zero_at_the_start_and_grows(tiny_dirs, tmp_path):
    res = train(small(tiny_dirs[False], tmp_path/'run', mode='full', kl_weight=0.5, eval_max_chars=0, lr=1e-2))
    kls = [m['kl'] for m in res['history'] if 'kl' in m]
    assert kls[0] < 1e-6 < kls[-1]  # the reference is the starting model
    assert all(abs(m['loss'] - m['ce'] - 0.5 * m['kl']) < 1e-4 for m in res['history'] if 'kl' in m)

def test_two_stages_chain_and_rerun_is_a_no_op(tiny_dirs, tmp_path):
    cfg = small(tiny_dirs[True], tmp_path/'run', eval_max_chars=0, replay_data=['manifest:lang=en,split=train'], replay_ratio=0.25,
                stages=[{'mode': 'embeddings', 'max_steps': 3}, {'mode': 'lora', 'max_steps': 3, 'lora_targets': ['q_proj'], 'streaming': True, 'shuffle_buffer': 50}])
    res = train(cfg)
    assert res['model_dir'] == str(tmp_path/'run'/'stage2-lora'/'model')
    s1 = json.loads((tmp_path/'run'/'stage1-embeddings'/'model'/'vikhr_train.json').read_text())
    assert s1['config']['mode'] == 'embeddings' and s1['step'] == 3
    t = os.path.getmtime(Path(res['model_dir'])/'model.safetensors')
    again = train(cfg)  # finished: returns at once, writes nothing
    assert again['model_dir'] == res['model_dir'] and os.path.getmtime(Path(res['model_dir'])/'model.safetensors') == t

def test_killed_after_the_final_checkpoint_only_saves_the_model(tiny_dirs, tmp_path):
    import shutil
    cfg = small(tiny_dirs[True], tmp_path/'run', mode='full', max_steps=4, eval_max_chars=0)
    res = train(cfg); w = weights(res['model_dir'])
    shutil.rmtree(res['model_dir'])  # as if killed between the last checkpoint and the model
    again = train(cfg)
    assert again['step'] == 4 and all(torch.equal(w[k], v) for k, v in weights(again['model_dir']).items())
    assert [m['step'] for m in again['history'] if 'loss' in m] == [1, 2, 3, 4]

def test_gradient_checkpointing_gives_the_same_weights(tiny_dirs, tmp_path):
    "Recomputing activations in the backward pass changes memory and time, not the result."
    a = train(small(tiny_dirs[False], tmp_path/'a', mode='full', max_steps=3, eval_max_chars=0))
    b = train(small(tiny_dirs[False], tmp_path/'b', mode='full', max_steps=3, eval_max_chars=0, gradient_checkpointing=True))
    wa, wb = weights(a['model_dir']), weights(b['model_dir'])
    for k in wa: torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5, msg=k)
    assert not AutoModelForCausalLM.from_pretrained(b['model_dir']).is_activation_checkpointing

def test_bf16_mixed_precision_with_kl_runs_on_cpu(tiny_dirs, tmp_path):
    res = train(small(tiny_dirs[True], tmp_path/'run', mode='full', max_steps=2, eval_max_chars=500, mixed_precision='bf16', kl_weight=0.1))
    assert res['step'] == 2 and all(torch.isfinite(v).all() for v in weights(res['model_dir']).values())
    assert AutoModelForCausalLM.from_pretrained(res['model_dir']).dtype == torch.float32  # master weights stay float32

# ---- bad input: a clear VikhrError before any compute

@pytest.mark.parametrize('over, msg', [
    ({'max_steps': 0}, 'max_steps must be at least 1'),
    ({'block_size': 1024}, 'longer than the context'),
    ({'mode': 'lora', 'lora_targets': ['c_attn']}, 'name no linear layer'),
    ({'mode': 'lora', 'lora_targets': ['embed_tokens']}, 'name no linear layer'),
    ({'max_stpes': 3}, "did you mean 'max_steps'"),
    ({'replay_ratio': 1.0, 'replay_data': ['x']}, 'replay_ratio must be in [0, 1)'),
    ({'warmup_steps': 6}, 'warmup_steps (6) must be fewer than max_steps'),
    ({'lr': 'fast'}, 'lr must be float'),
    ({'tracker': 'tensorbored'}, 'unknown tracker'),
    ({'stages': [{'mode': 'lora', 'block_size': 4096}]}, 'longer than the context'),
    ({'stages': [{'model': 'other'}]}, 'only be set for the whole run'),
])
def test_bad_config_fails_before_compute(tiny_dirs, tmp_path, over, msg):
    t0 = time.perf_counter()
    with pytest.raises(VikhrError) as e: train(small(tiny_dirs[True], tmp_path/'run', **over))
    assert msg in str(e.value)
    assert not (tmp_path/'run').exists()  # nothing written
    assert time.perf_counter() - t0 < 10

def test_output_dir_of_another_run_is_refused(tiny_dirs, tmp_path):
    train(small(tiny_dirs[True], tmp_path/'run', max_steps=2, eval_max_chars=0))
    with pytest.raises(VikhrError, match=r'holds the checkpoints of another run \(lr: 0.003 -> 0.001\)'):
        train(small(tiny_dirs[True], tmp_path/'run', max_steps=2, eval_max_chars=0, lr=1e-3))
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('my notes')
    with pytest.raises(VikhrError, match='not a `vikhr train` run'): train(small(tiny_dirs[True], tmp_path/'mine'))
    assert (tmp_path/'mine'/'notes.txt').read_text() == 'my notes'
    # overwrite starts afresh
    res = train(small(tiny_dirs[True], tmp_path/'run', max_steps=2, eval_max_chars=0, lr=1e-3, overwrite=True))
    assert json.loads((Path(res['model_dir'])/'vikhr_train.json').read_text())['config']['lr'] == 1e-3

def test_failed_checkpoint_leaves_no_partial_checkpoint(tiny_dirs, tmp_path, monkeypatch):
    import accelerate
    calls = []
    def boom(self, output_dir=None, **kw):
        calls.append(output_dir); Path(output_dir, 'model.safetensors').write_bytes(b'half')
        raise KeyboardInterrupt('killed while writing the checkpoint')
    monkeypatch.setattr(accelerate.Accelerator, 'save_state', boom)
    with pytest.raises(KeyboardInterrupt): train(small(tiny_dirs[True], tmp_path/'run', max_steps=4, save_every=2, eval_max_chars=0))
    assert calls and not list((tmp_path/'run'/'checkpoints').glob('step-*'))
    monkeypatch.undo()
    res = train(small(tiny_dirs[True], tmp_path/'run', max_steps=4, save_every=2, eval_max_chars=0))  # starts afresh, cleans up
    assert res['step'] == 4 and not list((tmp_path/'run'/'checkpoints').glob('.tmp-*'))

def test_cli_errors_and_flags(tiny_dirs, tmp_path, capsys):
    "In-process `vikhr train` (the subprocess path is exercised by the distributed and resume tests)."
    from vikhr_nb.cli import main
    cfg = tmp_path/'c.yaml'; cfg.write_text(yaml.safe_dump(small(tiny_dirs[True], tmp_path/'run')))
    assert main(['train', str(cfg), '--max-steps', '0']) == 2
    assert 'max_steps must be at least 1' in capsys.readouterr().err
    assert main(['train', str(cfg), '--mode', 'lora', '--lora-targets', 'q_proj', 'v_proj', '--embedding-lr', 'none', '--print-config']) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['lora_targets'] == ['q_proj', 'v_proj'] and printed['embedding_lr'] is None and printed['max_steps'] == 6
    (tmp_path/'bad.yaml').write_text(f"mode: embeddings\noutput_dir: {tmp_path/'run'}\nlearning_rate: 1e-3\n")  # the run it would write
    assert main(['train', str(tmp_path/'bad.yaml')]) == 2
    assert "unknown setting 'learning_rate'" in capsys.readouterr().err
    assert not (tmp_path/'run').exists()

# ---- shipped configs

@pytest.mark.parametrize('path', sorted((ROOT/'configs'/'train').glob('*.yaml')), ids=lambda p: p.name)
def test_shipped_train_configs_load(path):
    "Every stage of a shipped config passes the checks `train` runs before any compute, and the stages write to distinct directories."
    from vikhr_nb.train import check_config
    stages = expand_stages(load_config(path))
    assert len(stages) == max(1, len(load_config(path).stages or []))
    for s in stages: check_config(s)  # raises a VikhrError on a bad setting
    assert len({s.output_dir for s in stages}) == len(stages)

@pytest.mark.parametrize('path', sorted((ROOT/'configs'/'accelerate').glob('*.yaml')), ids=lambda p: p.name)
def test_shipped_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import load_config_from_file
    c = load_config_from_file(str(path))
    assert c.distributed_type is not None

@pytest.mark.parametrize('tie', [True, False])
def test_save_dtype_bfloat16_halves_the_model_and_reloads(tiny_dirs, tmp_path, tie):
    "Trained in float32, saved in bf16: the same weights rounded, half the bytes, tied rows still tied, plain from_pretrained."
    from safetensors import safe_open
    a = train(small(tiny_dirs[tie], tmp_path/'f32', mode='full', max_steps=2, eval_max_chars=0))
    b = train(small(tiny_dirs[tie], tmp_path/'bf16', mode='full', max_steps=2, eval_max_chars=0, save_dtype='bfloat16'))
    fa, fb = Path(a['model_dir'])/'model.safetensors', Path(b['model_dir'])/'model.safetensors'
    def tensors(p):
        with safe_open(p, 'pt') as f: return [f.get_tensor(k) for k in f.keys()]
    assert {t.dtype for t in tensors(fb)} == {torch.bfloat16}
    nbytes = lambda p: sum(t.numel() * t.element_size() for t in tensors(p))
    assert nbytes(fb) * 2 == nbytes(fa)  # the weights take half the bytes (a tiny model's file is mostly its header)
    ma, mb = AutoModelForCausalLM.from_pretrained(a['model_dir']), AutoModelForCausalLM.from_pretrained(b['model_dir'], dtype='auto')
    assert mb.dtype == torch.bfloat16
    assert (mb.get_input_embeddings().weight.data_ptr() == mb.get_output_embeddings().weight.data_ptr()) == tie
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()): assert torch.equal(va.to(torch.bfloat16), vb), k
    with pytest.raises(VikhrError, match='save_dtype must be one of'): train(small(tiny_dirs[tie], tmp_path/'x', save_dtype='int8'))
