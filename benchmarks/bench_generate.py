#!/usr/bin/env python
"""Greedy generation of the embedded default on this machine: float32, bfloat16 autocast (float32 weights) and bfloat16 weights, side by side.

    python benchmarks/bench_generate.py                                   # SmolLM2-135M-Instruct, 16 Russian prompts
    python benchmarks/bench_generate.py --model runs/demo/sft/train/model --batch-size 1

Each setting answers the same --prompts held-out Russian calibration prompts (`runs/demo/data/prompts.jsonl`,
or the shipped Russian instructions) with `chat_batch`, --max-new-tokens each, after one untimed warm-up batch,
and prints the seconds, the tokens generated per second and how many answers equal the float32 ones.
`chat`, `chat_batch`, `generation_speed` and self-calibration use bfloat16 autocast by default where the
device computes in it natively (`vikhr_nb.core.native_bf16`); bfloat16 *weights* are faster still but
change greedy answers more, so they are not a default.
"""
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from vikhr_nb.core import native_bf16
from vikhr_nb.models import DEFAULT_MODEL, load_model, chat_batch
from vikhr_nb.data import load_corpus

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=DEFAULT_MODEL)
    ap.add_argument('--prompts', type=int, default=16)
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--max-new-tokens', type=int, default=48)
    a = ap.parse_args()
    model, tok = load_model(a.model); model.eval()
    convs = load_corpus('manifest:lang=ru,split=train,kind=instructions', text_field='messages')
    prompts = [next(m['content'] for m in c if m['role'] == 'user') for c in convs['text'][:a.prompts]]
    print(f'{a.model}: {len(prompts)} Russian prompts, batches of {a.batch_size}, {a.max_new_tokens} new tokens at most; '
          f'{torch.get_num_threads()} threads; native bf16 here: {native_bf16(model.device)}')
    rows, ref = [], None
    for name in ('float32', 'bf16 autocast', 'bf16 weights'):
        m = model.to(torch.bfloat16) if name == 'bf16 weights' else model
        run = lambda ps: chat_batch(m, tok, ps, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, bf16=name == 'bf16 autocast')
        run(prompts[:a.batch_size])  # warm-up
        t0 = time.perf_counter(); out = run(prompts); secs = time.perf_counter() - t0
        answers = [o['answer'] for o in out]; ref = ref or answers
        rows.append((name, secs, sum(o['n_tokens'] for o in out) / secs, sum(x == y for x, y in zip(answers, ref))))
    print(f"{'':14s} {'seconds':>8s} {'tokens/s':>9s}  answers equal to float32's")
    for name, secs, tps, same in rows: print(f'{name:14s} {secs:8.1f} {tps:9.1f}  {same} of {len(prompts)}')

if __name__ == '__main__': main()
