"Two CPU processes (torchrun, gloo) and one process with the same global batch end with the same weights."
import json, os, subprocess, sys
from pathlib import Path
import torch, yaml
from test_train import tiny_dirs, small, weights, one_thread  # noqa: F401 (fixtures)
from conftest import run_vikhr, ROOT

def test_two_processes_match_one_with_the_same_global_batch(tiny_dirs, tmp_path):
    # full training with KL and English replay: every path through the loop, and every weight moves
    common = small(tiny_dirs[True], None, mode='full', max_steps=6, warmup_steps=1, kl_weight=0.1,
                   replay_data=['manifest:lang=en,split=train'], replay_ratio=0.25, eval_every=3,
                   replay_eval_data=['manifest:lang=en,split=heldout'])
    cfgs = {'two': {**common, 'batch_size': 2, 'grad_accum_steps': 1},   # 2 processes x 2 blocks
            'one': {**common, 'batch_size': 2, 'grad_accum_steps': 2}}   # 1 process x 2 blocks x 2 micro-batches
    for name, c in cfgs.items():
        c['output_dir'] = str(tmp_path/name); (tmp_path/f'{name}.yaml').write_text(yaml.safe_dump(c))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        '-m', 'vikhr_nb.train', str(tmp_path/'two.yaml')], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r1 = run_vikhr('train', tmp_path/'one.yaml', env={'OMP_NUM_THREADS': '1'})
    assert r1.returncode == 0, r1.stderr[-3000:]
    s2 = json.loads((tmp_path/'two'/'model'/'vikhr_train.json').read_text())
    s1 = json.loads((tmp_path/'one'/'model'/'vikhr_train.json').read_text())
    assert s2['num_processes'] == 2 and s1['num_processes'] == 1  # torchrun really started two processes, and they joined
    w2, w1 = weights(tmp_path/'two'/'model'), weights(tmp_path/'one'/'model')
    w0 = weights(tiny_dirs[True])
    assert all(not torch.equal(w0[k], w2[k]) for k in w0 if 'norm' not in k)  # the run trained something
    for k in w1: torch.testing.assert_close(w2[k], w1[k], atol=1e-5, rtol=1e-4, msg=k)
    h2 = [json.loads(l) for l in (tmp_path/'two'/'metrics.jsonl').read_text().splitlines()]
    h1 = [json.loads(l) for l in (tmp_path/'one'/'metrics.jsonl').read_text().splitlines()]
    assert [sorted(m) for m in h2] == [sorted(m) for m in h1]
    for a, b in zip(h2, h1):
        for k in ('loss', 'ce', 'kl', 'eval_bpc', 'eval_replay_bpc'):
            if k in a: assert abs(a[k] - b[k]) < 1e-4, (k, a, b)
    # the evaluation was shared out and summed: the same characters were scored
    assert sum('eval_bpc' in m and 'eval_replay_bpc' in m for m in h2) == 3  # steps 0, 3 and 6

def test_accelerate_launch_runs_it(tiny_dirs, tmp_path):
    "`accelerate launch -m vikhr_nb.train` (one CPU process here: see RESOURCES.md on --num_processes 2 on CPU)."
    c = small(tiny_dirs[True], tmp_path/'run', max_steps=2, eval_max_chars=500)
    (tmp_path/'c.yaml').write_text(yaml.safe_dump(c))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    r = subprocess.run([sys.executable, '-m', 'accelerate.commands.launch', '--cpu', '--num_processes', '1', '--num_machines', '1',
                        '--mixed_precision', 'no', '--dynamo_backend', 'no', '-m', 'vikhr_nb.train', str(tmp_path/'c.yaml')],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path/'run'/'model'/'vikhr_train.json').read_text())
    assert s['step'] == 2 and s['num_processes'] == 1
