#!/usr/bin/env python
"""Peak memory and time of the embeddings stage (resize + head fit) as the target corpus grows: 1x and 10x the shipped Russian text.

    python benchmarks/bench_head_corpus.py                     # fit_tokens 5,000 (the demo: 30,000), 1x and 10x
    python benchmarks/bench_head_corpus.py --fit-tokens 30000 --scales 1 10

Each scale runs in a fresh process: the run's data stage output (runs/demo/data, from `vikhr demo`) is copied with its
target.jsonl repeated N times, and `embeddings_stage` runs on it with the demo's settings except `fit_tokens` (and
`fit_replay_tokens`, a quarter of it). The process's peak resident memory (ru_maxrss) and the stage's seconds are printed
side by side. The head fit samples texts before it tokenizes them, so its work follows fit_tokens, not the corpus;
what still grows is the corpus text itself, held as Python strings.
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
from vikhr_nb.pipeline import load_pipeline_config, embeddings_stage
data, tok, out, n = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
cfg = load_pipeline_config(None)
cfg = replace(cfg, embeddings=replace(cfg.embeddings, fit_tokens=n, fit_replay_tokens=n // 4))
t0 = time.perf_counter(); res = embeddings_stage(cfg, out, tok, data); secs = time.perf_counter() - t0
print(json.dumps({'seconds': secs, 'peak_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  'loss': res.get('fit_head', {}).get('loss_after')}))
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default=str(ROOT/'runs'/'demo'), help="a finished demo run (its data and tokenizer stages are read)")
    ap.add_argument('--fit-tokens', type=int, default=5000)
    ap.add_argument('--scales', type=int, nargs='+', default=[1, 10])
    a = ap.parse_args()
    run = Path(a.run)
    if not (run/'data'/'target.jsonl').is_file() or not (run/'tokenizer'/'tokenizer.json').is_file():
        sys.exit(f'{run} has no finished data and tokenizer stages: run `vikhr demo` first (or pass --run)')
    target = (run/'data'/'target.jsonl').read_text(encoding='utf-8')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in a.scales:
            data = Path(tmp)/f'data{s}'; shutil.copytree(run/'data', data)
            (data/'target.jsonl').write_text(target * s, encoding='utf-8')
            r = subprocess.run([sys.executable, '-c', CHILD, str(data), str(run/'tokenizer'), str(Path(tmp)/f'emb{s}'), str(a.fit_tokens)],
                               capture_output=True, text=True, cwd=ROOT)
            if r.returncode: sys.exit(r.stderr[-2000:])
            rec = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append((s, len(target.encode()) * s / 1e6, rec))
            shutil.rmtree(data); shutil.rmtree(Path(tmp)/f'emb{s}', ignore_errors=True)
    print(f'embeddings stage, demo settings with fit_tokens={a.fit_tokens:,}, {os.cpu_count()} CPU cores\n')
    print('| corpus | target text (MB) | seconds | peak memory (GB) | head-fit loss after |\n|---|---:|---:|---:|---:|')
    for s, mb, rec in rows:
        loss = f"{rec['loss']:.3f}" if rec.get('loss') is not None else '—'
        print(f"| {s}x | {mb:.1f} | {rec['seconds']:.1f} | {rec['peak_gb']:.2f} | {loss} |")
    (s0, _, r0), (s1, _, r1) = rows[0], rows[-1]
    print(f"\n{s1}x / {s0}x: peak memory {r1['peak_gb'] / r0['peak_gb']:.2f}x, time {r1['seconds'] / r0['seconds']:.2f}x")

if __name__ == '__main__':
    main()
