"A run killed for real (SIGKILL) after a checkpoint resumes with the same data order and ends with the same weights."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import torch, yaml
from test_train import tiny_dirs, small, weights, one_thread  # noqa: F401 (fixtures)
from conftest import run_vikhr, ROOT
from vikhr_nb.train import train, latest_checkpoint

def test_killed_run_resumes_to_the_same_weights(tiny_dirs, tmp_path):
    cfg = small(tiny_dirs[False], tmp_path/'killed', mode='full', max_steps=150, save_every=5, eval_max_chars=0,
                replay_data=['manifest:lang=en,split=train'], replay_ratio=0.2)
    (tmp_path/'c.yaml').write_text(yaml.safe_dump(cfg))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    p = subprocess.Popen([sys.executable, '-m', 'vikhr_nb.train', str(tmp_path/'c.yaml')], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out, t0 = tmp_path/'killed', time.time()
    try:
        while (ck := latest_checkpoint(out)) is None or int(ck.name.split('-')[1]) < 10:
            assert p.poll() is None, 'the run ended before it could be killed'
            assert time.time() - t0 < 300, 'no checkpoint after 300 s'
            time.sleep(0.005)
    finally: p.kill(); p.wait()  # SIGKILL: no cleanup of any kind
    assert p.returncode == -signal.SIGKILL
    assert not (out/'model').exists()
    killed_at = int(latest_checkpoint(out).name.split('-')[1])
    assert killed_at < 150
    for d in (out/'checkpoints').glob('step-*'): assert (d/'trainer_state.json').exists()  # only whole checkpoints
    r = run_vikhr('train', tmp_path/'c.yaml', env={'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from' in r.stderr
    ref = train({**cfg, 'output_dir': str(tmp_path/'uninterrupted')})
    wa, wb = weights(ref['model_dir']), weights(out/'model')
    for k in wa: assert torch.equal(wa[k], wb[k]), k
    # the metrics file holds each step once, up to the end
    steps = [m['step'] for m in map(json.loads, (out/'metrics.jsonl').read_text().splitlines()) if 'loss' in m]
    assert steps == list(range(1, 151))
