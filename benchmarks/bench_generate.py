#!/usr/bin/env python
"""Greedy generation of the embedded default on this machine: float32, bfloat16 autocast (float32 weights) and bfloat16 weights, side by side; then one-prompt decoding against the memory-bandwidth ceiling.

    python benchmarks/bench_generate.py                                   # SmolLM2-135M-Instruct, 16 Russian prompts
    python benchmarks/bench_generate.py --model runs/demo/sft/train/model --batch-size 1
    python benchmarks/bench_generate.py --skip-batch --compile            # only the decode table, torch.compile included

Each setting answers the same --prompts held-out Russian calibration prompts (`runs/demo/data/prompts.jsonl`,
or the shipped Russian instructions) with `chat_batch`, --max-new-tokens each, after one untimed warm-up batch,
and prints the seconds, the tokens generated per second and how many answers equal the float32 ones.
`chat`, `chat_batch`, `generation_speed` and self-calibration use bfloat16 autocast by default where the
device computes in it natively (`vikhr_nb.core.native_bf16`); bfloat16 *weights* are faster still but
change greedy answers more, so they are not a default.

The second table is what one user chatting feels: a single prompt, --decode-tokens tokens forced
to be generated, and the median milliseconds per token after the first (`vikhr_nb.eval.generation_speed`,
whose clock notes every decoding step) for each way of running it — float32, bf16 autocast, bf16
weights, a static KV cache (`cache_implementation='static'`), torch.compile of the forward (with
--compile; on a CPU it needs a C++ compiler and takes a minute or more), 1 thread and all of them.
Beside each: the memory-bandwidth ceiling, the bytes of weights one decoding step must read (every
matrix once; the input embedding only one row) divided by the read bandwidth of this machine
(a 1 GiB float32 tensor summed, best of 5), and how far the measured step is above it.
"""
import argparse, copy, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from vikhr_nb.core import native_bf16
from vikhr_nb.models import DEFAULT_MODEL, load_model, chat_batch
from vikhr_nb.eval import generation_speed
from vikhr_nb.data import load_corpus

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=DEFAULT_MODEL)
    ap.add_argument('--prompts', type=int, default=16)
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--max-new-tokens', type=int, default=48)
    ap.add_argument('--decode-tokens', type=int, default=64, help='tokens generated per run in the decode table')
    ap.add_argument('--skip-batch', action='store_true', help='only the decode table')
    ap.add_argument('--compile', action='store_true', help='add torch.compile rows to the decode table')
    a = ap.parse_args()
    model, tok = load_model(a.model); model.eval()
    convs = load_corpus('manifest:lang=ru,split=train,kind=instructions', text_field='messages')
    prompts = [next(m['content'] for m in c if m['role'] == 'user') for c in convs['text'][:a.prompts]]
    if not a.skip_batch: batch_table(a, model, tok, prompts)
    decode_table(a, model, tok, prompts[0])

def batch_table(a, model, tok, prompts):
    print(f'{a.model}: {len(prompts)} Russian prompts, batches of {a.batch_size}, {a.max_new_tokens} new tokens at most; '
          f'{torch.get_num_threads()} threads; native bf16 here: {native_bf16(model.device)}')
    rows, ref = [], None
    for name in ('float32', 'bf16 autocast', 'bf16 weights'):
        m = copy.deepcopy(model).to(torch.bfloat16) if name == 'bf16 weights' else model  # the float32 model stays as it is
        run = lambda ps: chat_batch(m, tok, ps, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, bf16=name == 'bf16 autocast')
        run(prompts[:a.batch_size])  # warm-up
        t0 = time.perf_counter(); out = run(prompts); secs = time.perf_counter() - t0
        answers = [o['answer'] for o in out]; ref = ref or answers
        rows.append((name, secs, sum(o['n_tokens'] for o in out) / secs, sum(x == y for x, y in zip(answers, ref))))
    print(f"{'':14s} {'seconds':>8s} {'tokens/s':>9s}  answers equal to float32's")
    for name, secs, tps, same in rows: print(f'{name:14s} {secs:8.1f} {tps:9.1f}  {same} of {len(prompts)}')

def read_bandwidth():
    "Bytes per second this machine reads: a 1 GiB float32 tensor summed, best of 5."
    x = torch.ones(2**28)
    best = float('inf')
    for _ in range(5):
        t0 = time.perf_counter(); x.sum().item(); best = min(best, time.perf_counter() - t0)
    return x.nbytes / best

def step_bytes(model):
    "Bytes of weights one decoding step reads: every parameter once, except the input embedding (one row), unless it is tied to the head."
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    return n if emb is head else n - emb.numel() * emb.element_size() + emb.shape[1] * emb.element_size()

def decode_table(a, model, tok, prompt):
    text = tok.apply_chat_template([{'role': 'user', 'content': prompt}], tokenize=False, add_generation_prompt=True)
    bw = read_bandwidth(); threads = torch.get_num_threads()
    print(f'\none prompt ({len(tok(text).input_ids)} tokens), {a.decode_tokens} tokens decoded; read bandwidth {bw / 1e9:.1f} GB/s (1 GiB tensor sum)')
    ways = [('float32', {}, False, 'float32', threads), ('bf16 autocast', {}, True, 'float32', threads),
            ('bf16 autocast, 1 thread', {}, True, 'float32', 1), ('bf16 weights', {}, False, 'bf16', threads),
            ('bf16 autocast, static cache', {'cache_implementation': 'static'}, True, 'float32', threads),
            ('bf16 weights, static cache', {'cache_implementation': 'static'}, False, 'bf16', threads)]
    if a.compile: ways += [('bf16 weights, static, compiled', {'cache_implementation': 'static'}, False, 'bf16-compiled', threads)]
    rows = []
    for name, kw, autocast, weights, n_threads in ways:
        m = model if weights == 'float32' else copy.deepcopy(model).to(torch.bfloat16)
        if weights == 'bf16-compiled': m.forward = torch.compile(m.forward)
        torch.set_num_threads(n_threads)
        t0 = time.perf_counter()
        try: sp = generation_speed(m, tok, [text], max_new_tokens=a.decode_tokens, warmup=1, bf16=autocast, **kw)
        except Exception as e:  # a way this torch / transformers / machine cannot run: say so, go on
            print(f'  {name}: not run here ({type(e).__name__}: {str(e).splitlines()[0][:120]})', flush=True); continue
        finally: torch.set_num_threads(threads)
        # under autocast each matmul reads its weights as bf16 copies (autocast's cache): the step reads bf16 bytes
        nbytes = step_bytes(m) // (2 if autocast else 1)
        ceiling = 1000 * nbytes / bw
        rows.append((name, sp['decode_ms_per_token'], ceiling, sp['first_token_ms'], time.perf_counter() - t0))
        print(f'  {name}: {sp["decode_ms_per_token"]:.1f} ms per token ({time.perf_counter() - t0:.0f} s)', flush=True)
    print(f"{'':32s} {'ms/token':>9s} {'ceiling':>8s} {'× ceiling':>9s} {'1st ms':>7s}")
    for name, ms, ceil, first, _ in rows: print(f'{name:32s} {ms:9.1f} {ceil:8.1f} {ms / ceil:8.1f}× {first:7.0f}')

if __name__ == '__main__': main()
