#!/usr/bin/env python
"""Is the same-text speed-up stable? The eval stage's generation-speed test, run several times, side by side.

    python benchmarks/bench_speed.py --adapted runs/demo/sft/train/model            # the demo's final model against the original
    python benchmarks/bench_speed.py --adapted runs/demo/sft/train/model --repeat 3 --prompts 4 --reference-chars 200   # the old, shorter test

Both models are loaded once. Each repeat times them producing the same held-out passages (`vikhr_nb.pipeline.speed_texts`: runs of lines in the target script, spread
over the held-out set) after the same prompts, in one of two ways: `sequential` (the
original on every prompt, then the adapted model: how the eval stage timed them before) or
`interleaved` (`vikhr_nb.eval.generation_speeds`: the models take turns prompt by prompt, as the
eval stage does now). Each row prints words per second of both, the measured ratio, and the ratio
expected from the passages' compression and the two models' median per-token decode time
(`vikhr_nb.eval.speed_check`). Words per second are steady figures (the time to each first token
plus every later token at the median step: a stall of the machine is not the model's); the `wall`
column is the same ratio by raw wall-clock time; the last lines give the spread of the measured ratio over the
repeats and its distance from the expectation.
"""
import argparse, json, statistics, sys, time
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vikhr_nb.models import DEFAULT_MODEL, load_model
from vikhr_nb.eval import generation_speed, generation_speeds, speed_check
from vikhr_nb.metrics import tokenizer_stats
from vikhr_nb.pipeline import PipelineConfig, speed_texts

def main():
    e = PipelineConfig().eval
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--original', default=DEFAULT_MODEL)
    p.add_argument('--adapted', required=True, help='a directory written by the pipeline (or `vikhr train`)')
    p.add_argument('--heldout', default='runs/demo/data/eval/ru.jsonl', help='JSON Lines with a text column (a data stage writes data/eval/LANG.jsonl)')
    p.add_argument('--lang', default='ru')
    p.add_argument('--script', default='Cyrillic', help="the target script ('' for whole documents)")
    p.add_argument('--prompts', type=int, default=e.speed_prompts)
    p.add_argument('--prompt-chars', type=int, default=e.prompt_chars)
    p.add_argument('--reference-chars', type=int, default=e.reference_chars)
    p.add_argument('--repeat', type=int, default=2)
    p.add_argument('--ways', nargs='+', default=['sequential', 'interleaved'], choices=['sequential', 'interleaved'])
    a = p.parse_args()
    texts = [json.loads(l)['text'] for l in open(a.heldout, encoding='utf-8') if l.strip()]
    prompts, refs = speed_texts(texts, a.prompts, a.prompt_chars, a.reference_chars, a.script or None)
    models = {'original': load_model(a.original), 'final': load_model(a.adapted)}
    tok = {st: {a.lang: tokenizer_stats(t, texts)} for st, (_, t) in (('original', models['original']), ('adapted', models['final']))}
    print(f'{len(prompts)} prompts of <= {a.prompt_chars} characters, {sum(map(len, refs)):,} characters of reference text; '
          f'CPU, {torch.get_num_threads()} threads' if not torch.cuda.is_available() else torch.cuda.get_device_name(), flush=True)
    print(f"{'way':<11} {'run':>3} {'wall':>6} {'orig w/s':>9} {'adapt w/s':>9} {'measured':>9} {'expected':>9} {'text gain':>9} {'ms/tok o':>9} {'ms/tok a':>9} {'1st ms o':>9} {'1st ms a':>9} {'seconds':>8}")
    ratios, expected, walls = {w: [] for w in a.ways}, {w: [] for w in a.ways}, {w: [] for w in a.ways}
    for w, r in [(w, r) for r in range(a.repeat) for w in a.ways]:
        t0, speed = time.perf_counter(), {}
        sps = generation_speeds(models, prompts, references=refs) if w == 'interleaved' else \
              {st: generation_speed(m, t, prompts, references=refs) for st, (m, t) in models.items()}
        for st, sp in sps.items():
            speed[st] = {f'{a.lang}_{k}': sp[v] for k, v in (('words_per_s', 'words_per_s'), ('words_per_s_wall', 'words_per_s_wall'), ('decode_ms_per_token', 'decode_ms_per_token'),
                                                             ('first_token_ms', 'first_token_ms'), ('tokens', 'n_tokens'))}
        c = speed_check({'speed': speed, 'tokenizer': tok}, a.lang, prompts, refs)
        ratios[w].append(c['measured']); expected[w].append(c['expected'])
        wall = speed['final'][f'{a.lang}_words_per_s_wall'] / speed['original'][f'{a.lang}_words_per_s_wall']; walls[w].append(wall)
        g = lambda st, k: speed[st][f'{a.lang}_{k}']
        print(f"{w:<11} {r + 1:>3} {wall:5.2f}× {g('original', 'words_per_s'):9.2f} {g('final', 'words_per_s'):9.2f} {c['measured']:8.2f}× {c['expected']:8.2f}× {c['speed_text_compression']:8.2f}× "
              f"{g('original', 'decode_ms_per_token'):9.1f} {g('final', 'decode_ms_per_token'):9.1f} {g('original', 'first_token_ms'):9.0f} {g('final', 'first_token_ms'):9.0f} {time.perf_counter() - t0:8.0f}", flush=True)
    print()
    for w in a.ways:
        rs = ratios[w]; spread = (max(rs) - min(rs)) / statistics.mean(rs)
        worst = max(abs(m / x - 1) for m, x in zip(rs, expected[w]))
        print(f'{w}: measured ratio over {a.repeat} runs {min(rs):.2f}×–{max(rs):.2f}× (spread {spread:.1%}); largest distance from the expected ratio {worst:.1%}; '
              f'by raw wall time {min(walls[w]):.2f}×–{max(walls[w]):.2f}×')
    print(f'held-out compression {c["heldout_compression"]:.2f}× (expected from it and the last run\'s per-token costs: {c["expected_heldout"]:.2f}×)')

if __name__ == '__main__':
    main()
