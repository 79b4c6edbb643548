#!/usr/bin/env python
"""Time tokenizer training and adaptation on the shipped corpus, and compare encoding throughput of original vs adapted.

    python benchmarks/bench_tokenizer.py                   # SmolLM2 and Mistral, 16k Russian BPE, extend
    python benchmarks/bench_tokenizer.py --vocab-size 32000 --mode replace --repeat 5

Prints one table: for each base, the seconds to train the target vocabulary, the seconds to adapt (train + merge + mapping),
and the encoding throughput in MB/s (UTF-8 megabytes of text per second, batch encoding, best of --repeat runs) of the
original and of the adapted tokenizer on the held-out Russian and on the English text of data/.
"""
import argparse, os, sys, time, platform
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'true')

from vikhr_nb.models import fetch_wheel_file, MISTRAL_SPM
from vikhr_nb.tokenizer import load_base_tokenizer, read_texts, train_tokenizer, adapt_tokenizer

def throughput(tok, texts, repeat):
    "UTF-8 MB/s of batch encoding (best of `repeat`)"
    mb = sum(len(t.encode('utf-8')) for t in texts) / 1e6
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter(); tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False); best = min(best, time.perf_counter() - t0)
    return mb / best

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bases', nargs='+', default=['smollm2-135m-instruct', 'mistral'], help="'mistral' is the SentencePiece model from mistral-common")
    ap.add_argument('--vocab-size', type=int, default=16000)
    ap.add_argument('--mode', default='extend', choices=['replace', 'extend', 'optimize'])
    ap.add_argument('--repeat', type=int, default=3)
    a = ap.parse_args()
    ru_train = read_texts('manifest:lang=ru,split=train,kind=text')
    texts = {'ru held-out': read_texts('manifest:lang=ru,split=heldout,kind=text'), 'en': read_texts('manifest:lang=en,split=train,kind=text')}
    print(f"corpus: {sum(map(len, ru_train)) / 1e6:.2f}M Russian training characters; "
          + ', '.join(f'{k}: {sum(len(t.encode()) for t in v) / 1e6:.2f} MB' for k, v in texts.items()))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; TOKENIZERS_PARALLELISM={os.environ['TOKENIZERS_PARALLELISM']}")
    rows = []
    for name in a.bases:
        base = load_base_tokenizer(fetch_wheel_file(MISTRAL_SPM) if name == 'mistral' else name)
        t0 = time.perf_counter(); train_tokenizer(ru_train, a.vocab_size, base=base, show_progress=False); t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        tok, mp = adapt_tokenizer(base, ru_train, a.mode, a.vocab_size, keep_texts=texts['en'], show_progress=False)
        t_adapt = time.perf_counter() - t0
        r = dict(base=name, vocab=f'{len(base)}->{len(tok)}', train_s=t_train, adapt_s=t_adapt)
        for k, v in texts.items():
            r[f'{k} MB/s orig'] = throughput(base, v, a.repeat); r[f'{k} MB/s adapted'] = throughput(tok, v, a.repeat)
        rows.append(r)
    keys = list(rows[0])
    w = {k: max(len(k), *(len(f'{r[k]:.2f}' if isinstance(r[k], float) else str(r[k])) for r in rows)) for k in keys}
    print('  '.join(k.rjust(w[k]) for k in keys))
    for r in rows: print('  '.join((f'{r[k]:.2f}' if isinstance(r[k], float) else str(r[k])).rjust(w[k]) for k in keys))

if __name__ == '__main__': main()
