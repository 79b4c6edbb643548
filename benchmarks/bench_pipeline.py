#!/usr/bin/env python
"""Run (or re-read) a whole adaptation and print its figures side by side with the original model, and each stage's time.

    python benchmarks/bench_pipeline.py                          # the demo (configs/demo.yaml) into runs/demo
    python benchmarks/bench_pipeline.py configs/gpu/qwen2.5-0.5b.yaml --out runs/qwen

Completed stages are skipped (see vikhr_nb.pipeline), so on a finished run this only prints; delete the run directory
to time everything again. The figures are the report's: tokens per word, bits per character (original / adapted before
training / trained), words per second on the same Russian text and in free generation, task accuracy.
"""
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vikhr_nb.pipeline import adapt, load_pipeline_config, STAGE_RECORD

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('config', nargs='?', default=None, help='a pipeline YAML (default: the demo)')
    ap.add_argument('--out', default=None, help='run directory (default: the config\'s out_dir)')
    a = ap.parse_args()
    cfg = load_pipeline_config(a.config, out_dir=a.out)
    t0 = time.perf_counter(); adapt(cfg); wall = time.perf_counter() - t0
    out = Path(cfg.out_dir)
    print((out/'report.md').read_text())
    print('| stage | seconds (when it ran) |\n|---|---:|')
    for s in ('data', 'tokenizer', 'embeddings', 'train', 'eval'):
        rec = json.loads((out/s/STAGE_RECORD).read_text())
        print(f"| {s} | {rec['seconds']:.0f} |")
    print(f'\nthis invocation: {wall:.0f}s (stages already complete were skipped)')

if __name__ == '__main__': main()
