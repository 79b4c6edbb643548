#!/usr/bin/env python
"""Time the initialization of the new embedding rows of SmolLM2 adapted to a 16k Russian BPE: each method beside a naive per-token loop.

    python benchmarks/bench_embeddings.py                       # extend, 16k, best of 3
    python benchmarks/bench_embeddings.py --mode replace --repeat 5

Prints one table: for each way of computing the new rows, the best wall time of --repeat runs (seconds) and the rows
per second. `naive loop` is `torch.stack([W[pieces].mean(0) for each new token])`; `mean`, `weighted` and `random` are
`init_embeddings` on the input matrix; `focus` includes building its auxiliary space from the Russian training text;
`resize_embeddings` is the whole surgery (checks, copies, config) with `mean`, on a copy of the model made beforehand.

A second table times the head fit (`fit_head_rows`) on --fit-tokens positions of Russian and a quarter as many of English,
twice on copies of the resized model: reading the texts in float32, and under bfloat16 autocast (`bf16`, what the fit
does by default on a CPU with bf16 instructions or a GPU). It prints each one's seconds and its loss on the same probe
positions before and after the fit, so that the speed and what it costs in fit are read together.
"""
import argparse, copy, os, platform, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'true')
import torch

from vikhr_nb.models import load_model, DEFAULT_MODEL
from vikhr_nb.tokenizer import adapt_tokenizer, read_texts
from vikhr_nb.embeddings import init_embeddings, resize_embeddings
from vikhr_nb.focus import focus_rows  # registers the focus method
from vikhr_nb.head_fit import fit_head_rows

def best(fn, repeat, setup=None):
    "Best wall time of `repeat` calls of fn(setup())."
    ts = []
    for _ in range(repeat):
        arg = setup() if setup else None
        t0 = time.perf_counter(); fn(arg); ts.append(time.perf_counter() - t0)
    return min(ts)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=DEFAULT_MODEL)
    ap.add_argument('--mode', default='extend', choices=['replace', 'extend', 'optimize'])
    ap.add_argument('--vocab-size', type=int, default=16000)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--fit-tokens', type=int, default=8000, help='positions of Russian text for the head-fit table (0: skip it)')
    ap.add_argument('--skip-focus', action='store_true', help='leave out FOCUS (its auxiliary space takes the longest)')
    a = ap.parse_args()
    model, old = load_model(a.model)
    ru = read_texts('manifest:lang=ru,split=train,kind=text'); en = read_texts('manifest:lang=en,split=train,kind=text')
    t0 = time.perf_counter()
    new, mp = adapt_tokenizer(old, ru, a.mode, a.vocab_size, keep_texts=en, show_progress=False)
    W = model.get_input_embeddings().weight.detach()
    print(f'{a.model}: embedding matrix {tuple(W.shape)}, {len(old)} -> {len(new)} tokens ({a.mode}, {len(mp)} new; adapted in {time.perf_counter() - t0:.1f}s)')
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads')
    runs = {'naive loop': lambda _: torch.stack([W[mp[i]].mean(0) for i in sorted(mp)])}
    for m in ('mean', 'weighted', 'random') + (() if a.skip_focus else ('focus',)):
        runs[m] = lambda _, m=m: init_embeddings(W, mp, m, old, new, ru)
    rows = [(name, best(fn, a.repeat if name != 'focus' else 1)) for name, fn in runs.items()]
    rows.append(('resize_embeddings', best(lambda mm: resize_embeddings(mm, old, new, mp), a.repeat, lambda: copy.deepcopy(model))))
    w = max(len(n) for n, _ in rows)
    print(f"{'':{w}s}  seconds  rows/s")
    for n, s in rows: print(f'{n:{w}s}  {s:7.3f}  {len(mp) / s:9,.0f}')
    if a.fit_tokens: bench_fit(model, old, new, mp, ru, en, a.fit_tokens)

def bench_fit(model, old, new, mp, ru, en, n):
    model = resize_embeddings(copy.deepcopy(model), old, new, mp)
    print(f"\nhead fit: {len(mp)} rows, {n} positions of Russian and {n // 4} of English, one pass")
    print(f"{'reading in':10s}  seconds  positions/s  loss before  loss after (nats/token)")
    for bf16 in (True, False, True):  # bf16 first and last: the first run of a process also warms it up
        r = fit_head_rows(copy.deepcopy(model), new, sorted(mp), ru, en, max_tokens=n, replay_tokens=n // 4, bf16=bf16)
        print(f"{'bfloat16' if bf16 else 'float32':10s}  {r['seconds']:7.1f}  {r['positions'] / r['seconds']:11,.0f}  {r['loss_before']:11.4f}  {r['loss_after']:10.4f}")

if __name__ == '__main__': main()
