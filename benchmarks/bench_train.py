#!/usr/bin/env python
"""Training throughput of each `vikhr train` mode, side by side, on the real corpus.

    python benchmarks/bench_train.py                      # the embedded SmolLM2-135M, every mode
    python benchmarks/bench_train.py --model runs/embed/model --modes embeddings lora
    python benchmarks/bench_train.py --model tiny         # a tiny random Llama (seconds, for a smoke test)
    python benchmarks/bench_train.py --modes full lora --mixed-precision no bf16   # float32 beside bf16 autocast
    python benchmarks/bench_train.py --model runs/demo/train/model --modes sft-allpos sft --chat-data runs/demo/sft/calibration.jsonl --block-size 512   # the demo's calibration step
    python benchmarks/bench_train.py --model runs/demo/embeddings --modes full lora embeddings --loss-chunk 0 1024 --batch-size 8   # full logits beside the chunked loss

Each mode runs `train()` itself — the same loop, data pipeline and optimizer as a real run — for
`--warmup` + `--steps` optimizer steps; the first `--warmup` steps are not timed. Prints tokens/s
from the fastest timed step (on a shared machine the least disturbed one; the median is shown
too), the peak memory of the process that ran the mode (each mode runs in a fresh one: resident
RAM on a CPU, allocated GPU memory on a GPU), and on a GPU also the model FLOPs utilization (MFU): the FLOPs the mode needs
per token divided by the device's peak dense bf16/fp16 FLOPs. With several --mixed-precision values
every mode runs under each (`auto` is what `vikhr train` picks: bf16 on GPUs and on CPUs with
bfloat16 instructions, see `vikhr_nb.core.cpu_bf16`; float32 on other CPUs).

FLOPs per token, with F = forward FLOPs = 2 x (parameters of every matmul, the head included)
+ 4 x layers x hidden x block (attention scores and weighted sum):
  full           3F   (forward, activation gradients, weight gradients)
  lora           2F + 2 x vocab x hidden   (forward, activation gradients, the head's weight gradient; adapters negligible)
  embeddings     2F + 2 x vocab x hidden   (the same: the transformer gets activation gradients only)
  full+kl        4F   (one more forward of the frozen reference)
  sft            3F   (every weight, on conversations: loss on the answers, the head applied only where they are)
  sft-allpos     3F   (the same with the head applied at every position, `head_positions: all`)
The two sft modes run on the same conversations (--chat-data, packed; they need a model with a chat
template, so not 'tiny'); MFU counts 3F per token for both,
so the time the head saves shows as a higher MFU.
"""
import argparse, json, os, shutil, statistics, sys, tempfile, time
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's vikhr_nb, installed or not
from vikhr_nb.train import train, tiny_tokenizer
from vikhr_nb.models import DEFAULT_MODEL, load_model, tiny_llama

PEAK_TFLOPS = {'H200': 989, 'H100': 989, 'A100': 312, 'L40S': 362, 'L4': 121, 'A10G': 125, 'A10': 125,
               'RTX 4090': 165, 'RTX 3090': 71, 'V100': 125, 'T4': 65}  # dense bf16/fp16 tensor-core peaks

def peak_flops(override):
    if override: return override * 1e12
    if not torch.cuda.is_available(): return None
    name = torch.cuda.get_device_name()
    for k, v in PEAK_TFLOPS.items():
        if k in name: return v * 1e12
    return None

def flops_per_token(model_dir, block_size):
    "Forward FLOPs per token (F above) and 2 x vocab x hidden."
    model, _ = load_model(model_dir)
    c = model.config
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))  # includes lm_head (tied or not)
    F = 2 * matmul + 4 * c.num_hidden_layers * c.hidden_size * block_size
    return F, 2 * c.vocab_size * c.hidden_size

MODES = {'embeddings': dict(mode='embeddings'), 'lora': dict(mode='lora'), 'full': dict(mode='full'),
         'full+kl': dict(mode='full', kl_weight=0.1), 'sft': dict(mode='full', data_format='chat'),
         'sft-allpos': dict(mode='full', data_format='chat', head_positions='all')}
NEED = {'embeddings': lambda F, H: 2 * F + H, 'lora': lambda F, H: 2 * F + H, 'full': lambda F, H: 3 * F, 'full+kl': lambda F, H: 4 * F,
        'sft': lambda F, H: 3 * F, 'sft-allpos': lambda F, H: 3 * F}

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default=DEFAULT_MODEL, help="alias, directory or hub id; 'tiny' for a tiny random Llama")
    p.add_argument('--modes', nargs='+', default=list(MODES), choices=list(MODES))
    p.add_argument('--train-data', default='manifest:lang=ru,split=train')
    p.add_argument('--chat-data', default='manifest:lang=ru-en,split=train,kind=instructions', help='conversations for the sft modes')
    p.add_argument('--block-size', type=int, default=256)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--steps', type=int, default=4, help='timed optimizer steps per mode')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s choice)')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps per mode')
    p.add_argument('--gradient-checkpointing', action='store_true')
    p.add_argument('--mixed-precision', nargs='+', default=['auto'], choices=['auto', 'no', 'bf16', 'fp16'],
                   help='one or more: each mode runs under each, side by side')
    p.add_argument('--loss-chunk', nargs='+', type=int, default=[1024],
                   help="one or more `loss_chunk` values (0: the full (batch, block, vocab) logits), side by side")
    p.add_argument('--peak-tflops', type=float, default=None, help="the device's peak, for MFU where it is not in the table")
    p.add_argument('--json', help='also write the results here')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)

    work = Path(tempfile.mkdtemp(prefix='bench_train-'))
    try: run(a, work)
    finally: shutil.rmtree(work, ignore_errors=True)  # checkpoints of a 135M model are ~1 GB per mode

def _train_and_peak(cfg, threads=None):
    "Run `train(cfg)`; its result and this process's peak memory in GB (the GPU's where there is one, else resident RAM)."
    import resource
    if threads: torch.set_num_threads(threads)
    res = train(cfg)
    if torch.cuda.is_available(): return res, torch.cuda.max_memory_allocated() / 1e9
    return res, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024) / 1e9

def one_mode(cfg, threads=None):
    "Each mode in a fresh process, so that its peak memory is its own (under `accelerate launch`: in this one, peak since start)."
    if int(os.environ.get('WORLD_SIZE', '1')) > 1: return _train_and_peak(cfg, threads)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=mp.get_context('spawn')) as ex: return ex.submit(_train_and_peak, cfg, threads).result()

def run(a, work):
    model = a.model
    if model == 'tiny':
        from vikhr_nb.data import load_corpus
        tok = tiny_tokenizer(list(load_corpus(a.train_data).select(range(2000))['text']))
        model = str(work/'tiny')
        tiny_llama(len(tok), hidden_size=64, n_layers=2, max_len=max(512, a.block_size)).save_pretrained(model); tok.save_pretrained(model)
    F, H = flops_per_token(model, a.block_size)
    peak = peak_flops(a.peak_tflops)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else f'CPU, {torch.get_num_threads()} threads'
    print(f'model {a.model}, {a.batch_size} x {a.block_size} tokens per step, {a.steps} timed steps per mode, on {dev}', flush=True)
    rows = []
    for name, mp, lc in [(n, m, c) for n in a.modes for m in a.mixed_precision for c in a.loss_chunk]:
        cfg = dict(model=model, output_dir=str(work/f'{name}-{mp}-{lc}'), loss_chunk=lc, train_data=[a.chat_data if name.startswith('sft') else a.train_data], eval_data=[], block_size=a.block_size,
                   batch_size=a.batch_size, max_steps=a.warmup + a.steps, lr=1e-4, embedding_lr=1e-3, tracker='none', progress=False,
                   gradient_checkpointing=a.gradient_checkpointing, mixed_precision=mp, **MODES[name])
        res, peak_gb = one_mode(cfg, a.threads)
        times = [m['step_time'] for m in res['history'] if 'step_time' in m][a.warmup:]
        tokens = a.batch_size * a.block_size * res['num_processes']
        tps = tokens / min(times)
        row = {'mode': name, 'precision': res['mixed_precision'], 'loss_chunk': lc, 'trained_parameters': res['trained_parameters'], 's_per_step': min(times),
               's_per_step_median': statistics.median(times), 'tokens_per_s': tps, 'peak_gb': peak_gb}
        if peak: row['mfu'] = NEED[name](F, H) * tps / peak
        rows.append(row)
        print(f"  {name:<11} {row['precision']:<5} chunk {lc:<5} {res['trained_parameters']/1e6:8.2f}M trained  {row['s_per_step']:7.3f} s/step (median {row['s_per_step_median']:.3f})  {tps:9.0f} tokens/s  peak {peak_gb:.2f} GB"
              + (f"  MFU {row['mfu']:.1%}" if 'mfu' in row else ''), flush=True)
    print()
    print(f"{'mode':<11} {'prec':<5} {'chunk':>5} {'trained':>10} {'s/step':>8} {'median':>8} {'tokens/s':>9} {'peak GB':>8}" + ('   MFU' if peak else ''))
    for r in rows:
        print(f"{r['mode']:<11} {r['precision']:<5} {r['loss_chunk']:>5} {r['trained_parameters']/1e6:9.2f}M {r['s_per_step']:8.3f} {r['s_per_step_median']:8.3f} {r['tokens_per_s']:9.0f} {r['peak_gb']:8.2f}"
              + (f" {r['mfu']:6.1%}" if 'mfu' in r else ''))
    if a.json: Path(a.json).write_text(json.dumps({'model': a.model, 'device': dev, 'rows': rows}, indent=1))

if __name__ == '__main__':
    main()
