#!/usr/bin/env python
"""Inits compared by a training probe: each init of the new rows trained for the demo's own training (32 steps) and scored before and after.

    vikhr adapt configs/demo.yaml --until tokenizer        # the demo's data and 16k tokenizer (seconds), if runs/demo lacks them
    python benchmarks/bench_init_probe.py | tee benchmarks/bench_init_probe_cpu.txt
    python benchmarks/bench_init_probe.py --steps 50 --inits mean "mean + head fit"

Every init starts from SmolLM2-135M-Instruct and the demo run's adapted tokenizer, is trained with the demo's train
section (every weight, batch 8 x 256, 20% English replay, a quarter of the Russian documents repeated), and is scored on
the demo's held-out Russian (split into words used before in the text and the rest) and English. The first row is the
original model with its own tokenizer trained the same way: the fair baseline. Two rows train the demo's init
differently: without the repeated documents (`repeat_share: 0`), and with the word term (`word_ll_weight: 0.1`, the
original's likelihood of each word as the target; `vikhr_nb.train.tokenize_and_align`). Results are kept in WORK/probe.json as
they come, so an interrupted run resumes where it stopped (`vikhr_nb.probe.init_probe`).
"""
import argparse, json, os, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]

ORDER = ['original, own tokenizer', 'mean + head fit', 'mean + head fit, no repeated documents', 'mean + head fit, word term 0.1', 'mean', 'untied: norm-matched mean in, head fit out', 'untied: distilled in, head fit out',
         'tied: mean + head fit, then distilled', 'weighted', 'weighted + head fit', 'focus', 'focus + head fit']

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default=str(ROOT/'runs'/'demo'), help='a demo run with its data and tokenizer stages done')
    ap.add_argument('--work', default=str(ROOT/'runs'/'probe'), help='working directory (results kept in probe.json)')
    ap.add_argument('--steps', type=int, help="probe length in optimizer steps (default: the demo's max_steps)")
    ap.add_argument('--inits', nargs='+', help='which inits (default: all, in the order of the table)')
    a = ap.parse_args()
    import torch
    from vikhr_nb.pipeline import load_pipeline_config, _train_fields, read_jsonl
    from vikhr_nb.probe import PROBE_INITS, init_probe, probe_table
    run = Path(a.run)
    if not (run/'tokenizer'/'tokenizer.json').is_file() or not (run/'data'/'target.jsonl').is_file():
        sys.exit(f'{run} has no data and tokenizer stages: run `vikhr adapt configs/demo.yaml --until tokenizer` first (or pass --run)')
    cfg = load_pipeline_config(None)
    fields = {k: v for k, v in _train_fields(cfg, run).items() if k not in ('model', 'output_dir')}
    fields |= {'save_every': 0} | ({'max_steps': a.steps} if a.steps else {})
    names = a.inits or ORDER
    unknown = [n for n in names if n not in PROBE_INITS]
    if unknown: sys.exit(f"unknown inits {unknown}: choose from {list(PROBE_INITS)}")
    texts = [r['text'] for r in read_jsonl(run/'data'/'target.jsonl')]
    replay = [r['text'] for r in read_jsonl(run/'data'/'replay.jsonl')]
    L, R = cfg.language, cfg.replay_language
    heldout = {l: [r['text'] for r in read_jsonl(run/'data'/'eval'/f'{l}.jsonl')] for l in (L, R)}
    e = cfg.embeddings
    t0 = time.perf_counter()
    res = init_probe(cfg.model, run/'tokenizer', fields, heldout, a.work, texts, replay, inits={n: PROBE_INITS[n] for n in names},
                     head_fit={'max_tokens': e.fit_tokens, 'replay_tokens': e.fit_replay_tokens, 'epochs': e.fit_epochs},
                     block_size=cfg.eval.block_size, batch_size=cfg.eval.batch_size, seed=cfg.seed)
    steps = fields['max_steps']
    print(f"init probe: {cfg.model} + the demo's {cfg.tokenizer.vocab_size // 1000}k {cfg.tokenizer.mode}, {steps} steps of the demo's training "
          f"({fields['mode']}, batch {fields['batch_size']} x {fields['block_size']}, lr {fields['lr']}, replay {fields['replay_ratio']}, "
          f"repeat {fields.get('repeat_share', 0)}); {os.cpu_count()} CPU cores, torch {torch.__version__}")
    print(f"held-out bits per character: {L} {sum(map(len, heldout[L])):,} characters, {R} {sum(map(len, heldout[R])):,}; "
          f"(+x%): after the probe, against the original with its own tokenizer after the same probe\n")
    print(probe_table(res, L, R))
    for n, r in res.items():
        i = r['info']; bits = []
        if 'fit_head' in i: bits.append(f"head fit loss {i['fit_head']['loss_before']:.3f} -> {i['fit_head']['loss_after']:.3f}")
        if 'distill' in i: bits.append(f"distilled {i['distill']['steps']} steps, hidden-state error {i['distill']['loss_first']:.3f} -> {i['distill']['loss_last']:.3f}")
        if 'norm_scale' in i: bits.append(f"input rows scaled x{i['norm_scale']:.2f}")
        if 'parameters' in i: bits.append(f"{i['parameters'] / 1e6:.1f}M parameters, {'tied' if i['tied'] else 'untied'}")
        print(f"- {n}: {r['seconds']:.0f} s" + (f"; {'; '.join(bits)}" if bits else ''))
    from transformers import AutoTokenizer
    from vikhr_nb.models import load_tokenizer
    from vikhr_nb.pipeline import training_reading
    any_run = next(iter(res.values()))
    tokens = {'tokens': any_run['steps'] * fields['batch_size'] * fields.get('grad_accum_steps', 1) * fields['block_size']}
    for who, tok in (('the original tokenizer', load_tokenizer(cfg.model)), ('the adapted tokenizer', AutoTokenizer.from_pretrained(run/'tokenizer'))):
        r = training_reading(tokens, fields['replay_ratio'], texts, tok)
        print(f"- the same compute with {who}: {r['tokens']:,} {L} training tokens, about {r['chars']:,} characters ({r['chars_per_token']:.2f} per token)")
    adapted = {n: r for n, r in res.items() if not n.startswith('original')}
    if adapted:
        best = min(adapted, key=lambda n: adapted[n]['probe'][L]['bpc'])
        print(f"\nlowest {L} bits per character after the probe: {best} ({adapted[best]['probe'][L]['bpc']:.3f})")
    print(f"this run: {time.perf_counter() - t0:,.0f} s (inits already in {a.work}/probe.json are not rerun)")

if __name__ == '__main__':
    main()
