"""Time Learned Embedding Propagation (`vikhr_nb.lep.propagate`) by each method on the real SmolLM2-135M on CPU.

    nice -n 10 python benchmarks/bench_lep.py [--adapted DIR] [--vocab 4000]

base = the embedded default; adapted = a directory given by --adapted (a model written by `vikhr embed` / `vikhr train`),
or built here: the base resized to a tokenizer extended by --vocab Russian tokens (piece-mean init, untrained: the timing
does not depend on the values); instruct = the base with its embedding matrix multiplied by a random near-identity 576×576
matrix (so the fit has something to find). Measured here (2 CPU cores shared with other jobs, --adapted the notebook's
demo model, 52,813 rows): swap 7.7 s, overlap 25.4 s, conversion 30.3 s of wall time, about a third of it CPU time.
The time is the checks, the model copy, the float64 fit (a pivoted QR of ~50,000 × 576) and the (rows × 576) @ (576 × 576) product.
"""
import argparse, copy, time
import torch
from vikhr_nb.models import load_model, DEFAULT_MODEL
from vikhr_nb.tokenizer import adapt_tokenizer, read_texts
from vikhr_nb.embeddings import resize_embeddings
from vikhr_nb.lep import propagate, METHODS

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--adapted', default=None, help='an adapted model directory (default: build one here)')
    p.add_argument('--vocab', type=int, default=4000, help='Russian tokens to add when building the adapted model here')
    p.add_argument('--repeat', type=int, default=2, help='runs of each method (the best is printed)')
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    base = load_model(DEFAULT_MODEL)
    t0 = time.perf_counter()
    if a.adapted: adapted = load_model(a.adapted); mapping = a.adapted
    else:
        ext, mapping = adapt_tokenizer(base[1], read_texts('manifest:lang=ru,split=train,kind=text')[::2][:3000], 'extend', a.vocab,
                                       keep_texts=read_texts('manifest:lang=en,split=train,kind=text')[::4][:1000], show_progress=False)
        adapted = (resize_embeddings(copy.deepcopy(base[0]), base[1], ext, mapping), ext)
    d = base[0].config.hidden_size
    inst = copy.deepcopy(base[0])
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        inst.get_input_embeddings().weight.copy_(inst.get_input_embeddings().weight @ (torch.eye(d) + 0.02 * torch.randn(d, d, generator=g)))
    tok = copy.deepcopy(base[1])
    print(f'setup {time.perf_counter() - t0:.1f}s: base {len(base[1])} tokens, adapted {len(adapted[1])} tokens '
          f'({adapted[0].get_input_embeddings().weight.shape[0]} rows), d={d}, tied={base[0].config.tie_word_embeddings}')
    for method in METHODS:
        best, info = None, None
        for _ in range(a.repeat):
            t = time.perf_counter()
            _, _, info = propagate(base, adapted, (inst, tok), method, mapping=mapping)
            best = min(best or 1e9, time.perf_counter() - t)
        f = info['fit']['embed_tokens']
        print(f"{method:10s} {best:6.2f} s   rows fitted {f['rows']:6d}   residual {'-' if f['residual'] is None else format(f['residual'], '.1e')}")

if __name__ == '__main__': main()
