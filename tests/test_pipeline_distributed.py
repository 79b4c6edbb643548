"`vikhr adapt` under torchrun (2 CPU processes, gloo): the main process's single-process stages may take longer than the process-group timeout, and the run ends with the model one process trains with the same global batch."
import json, os, subprocess, sys
import torch, yaml
from test_pipeline import small_config  # tiny_model_dir: a conftest fixture
from test_train import weights
from conftest import ROOT, run_vikhr

# rank 0's tokenizer stage made slower than the process-group timeout the config sets
SLOW = '''
import sys, time
import vikhr_nb.pipeline as P
orig = P.tokenizer_stage
def slow(*a, **k):
    time.sleep(float(sys.argv[2])); return orig(*a, **k)
P.tokenizer_stage = slow
from vikhr_nb.cli import main
sys.exit(main(['adapt', sys.argv[1]]))
'''

def test_two_processes_survive_a_slow_main_stage(tiny_model_dir, tmp_path):
    cfgs = {}
    for name, accum in (('two', 1), ('one', 2)):  # 2 processes x 2 blocks, or 1 process x 2 blocks x 2 micro-batches
        c = small_config(tiny_model_dir, tmp_path/name, grad_accum_steps=accum)
        c['dist_timeout'] = 10
        c['sft']['train'] = {**c['sft']['train'], 'grad_accum_steps': accum}
        (tmp_path/f'{name}.yaml').write_text(yaml.safe_dump(c)); cfgs[name] = c
    (tmp_path/'slow.py').write_text(SLOW)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        str(tmp_path/'slow.py'), str(tmp_path/'two.yaml'), '15'], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r1 = run_vikhr('adapt', tmp_path/'one.yaml', env={'OMP_NUM_THREADS': '1'})
    assert r1.returncode == 0, r1.stderr[-3000:]
    two, one = (json.loads((tmp_path/n/'report.json').read_text()) for n in ('two', 'one'))
    assert two['seconds']['tokenizer'] >= 15  # the slow stage really outlasted the 10 s timeout
    for st in ('train', 'sft'):
        rec = json.loads((tmp_path/'two'/st/'vikhr_stage.json').read_text())['results']
        assert rec['num_processes'] == 2, st  # both processes trained
    for st in ('embeddings', 'train/model', 'sft/train/model'):
        w2, w1 = weights(tmp_path/'two'/st), weights(tmp_path/'one'/st)
        for k in w1: torch.testing.assert_close(w2[k], w1[k], atol=1e-5, rtol=1e-4, msg=f'{st}: {k}')
    for k in ('ru', 'en'): assert abs(two['bpc']['final'][k] - one['bpc']['final'][k]) < 1e-4, k
