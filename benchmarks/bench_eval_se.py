#!/usr/bin/env python
"""How steady the eval stage's bits per character are: the standard error with the held-out documents resampled, per model and language.

    python benchmarks/bench_eval_se.py | tee benchmarks/bench_eval_se_cpu.txt     # after `vikhr adapt configs/demo.yaml --until embeddings`

Scores the demo run's held-out files (runs/demo/data/eval) with the original model and the initialized adapted model
(runs/demo/embeddings), prints each figure's relative standard error (`vikhr_nb.bpc.bootstrap_se`, 1,000 resamples of the
documents), the standard error of the ratio of the two models' figures on the same documents, and how many characters
of the same kind of text would bring each to 0.5% (the error falls as one over the square root of the text scored).
"""
import argparse, os, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default=str(ROOT/'runs'/'demo'))
    ap.add_argument('--model', default='smollm2-135m-instruct')
    ap.add_argument('--target', type=float, default=0.005, help='the relative standard error to reach')
    a = ap.parse_args()
    from vikhr_nb.models import load_model
    from vikhr_nb.bpc import bits_per_char, bootstrap_se
    from vikhr_nb.pipeline import read_jsonl
    run = Path(a.run)
    if not (run/'embeddings'/'config.json').is_file(): sys.exit(f'{run} has no embeddings stage: run `vikhr adapt configs/demo.yaml --until embeddings` first')
    print(f'held-out bits per character of {run}/data/eval, block 1024; standard errors from 1,000 resamples of the documents; {os.cpu_count()} CPU cores\n')
    print('| language | documents | characters | model | bpc | standard error | characters for ±0.5% | scoring s |\n|---|---:|---:|---|---:|---:|---:|---:|')
    ratios = []
    for path in sorted((run/'data'/'eval').glob('*.jsonl')):
        docs = [r['text'] for r in read_jsonl(path)]; n = sum(map(len, docs)); res = {}
        for name in (a.model, str(run/'embeddings')):
            m, tok = load_model(name)
            t0 = time.perf_counter(); r = bits_per_char(m, tok, docs, block_size=1024, batch_size=4); secs = time.perf_counter() - t0
            se = bootstrap_se(r['text_bits'], r['text_chars']); res[name] = r
            print(f"| {path.stem} | {len(docs)} | {n:,} | {'original' if name == a.model else 'adapted, init'} | {r['bpc']:.3f} | ±{100 * se:.1f}% | {n * (se / a.target) ** 2:,.0f} | {secs:.0f} |")
            del m
        se = bootstrap_se(res[str(run/'embeddings')]['text_bits'], docs and [len(d) for d in docs], res[a.model]['text_bits'])
        ratios.append((path.stem, res[str(run/'embeddings')]['bpc'] / res[a.model]['bpc'], se, n))
    print('\n| language | adapted ÷ original | standard error of the ratio | characters for ±0.5% |\n|---|---:|---:|---:|')
    for l, r, se, n in ratios: print(f'| {l} | {r:.3f} | ±{100 * se:.2f}% | {n * (se / a.target) ** 2:,.0f} |')

if __name__ == '__main__':
    main()
