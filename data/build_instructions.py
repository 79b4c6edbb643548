#!/usr/bin/env python
"""Build instruction data (one-turn conversations) from the real text shipped in `data/`, byte for byte.

    python data/build_instructions.py            # read data/, write the instruction files, update data/manifest.json
    python data/build_instructions.py --check    # build into a temp dir and compare with the shipped files
    python data/build_instructions.py --out DIR  # write the instruction files and a manifest into DIR

`data/build_corpus.py` runs this at the end of every corpus build, so a full rebuild is that one command.
Every file read is checked against the sha256 in the manifest first. Nothing here is random but the
fixed-seed sampling below, so a rerun gives the same bytes.

A conversation is `{"id", "task", "messages": [{"role": "user", "content"}, {"role": "assistant", "content"}]}`.
Tasks: `faq` (a Debian FAQ question -> its answer), `translate_ru_en` / `translate_en_ru` (a paragraph of the
parallel manuals; the request is written in the source language), `copy` (repeat a text unchanged) and
`command` (held-out only: "what does the command X do?" -> the first paragraph of its man page's description).

Held-out rule: the held-out FAQ questions are the FAQ sections that `build_corpus.py` moves out of every
training file (`faq_heldout` there: 25% of the FAQ sections, by a salted hash of the section id, the same
sections in both languages); the other held-out items come from the held-out man pages and the held-out English
fortunes. No stage trains on any of them, and an item whose answer is found in training text anyway (a
normalized substring, or a quarter of its word 8-grams) is dropped.
"""
import argparse, hashlib, json, random, re, shutil, sys, tempfile, unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # use the repo's vikhr_nb even when it is not installed
from vikhr_nb import data as D

INSTRUCTIONS = dict(seed=0, max_answer=1500, min_answer=40, max_translate=600, min_translate_letters=20,
                    translate_ratio=[0.5, 2.5], copy_max=600, copy_min_letters=20,
                    copy_train={'ru_fortunes.jsonl': 200, 'ru_tech.jsonl': 100, 'en_fortunes.jsonl': 100, 'en_tech.jsonl': 100},
                    copy_heldout={'ru_heldout_manpages.jsonl': 60, 'en_heldout_fortunes.jsonl': 60},
                    command_sections=['man1', 'man8'], command_max=1000, heldout_contain=dict(n=8, max_share=0.25))

# the requests, by the language they are written in
FAQ_Q = re.compile(r'^\d+(?:\.\d+)*\.?\s+(.+\?)$')  # "1.2. Что такое Debian GNU/Linux?"
TRANSLATE = {('ru', 'en'): 'Переведи на английский:\n\n{text}', ('en', 'ru'): 'Translate into Russian:\n\n{text}'}
COPY = {'ru': 'Повтори этот текст без изменений:\n\n{text}', 'en': 'Repeat this text exactly, without any changes:\n\n{text}'}
COMMAND = {'ru': 'Что делает команда {name}?'}

# output file: (lang, split, input files whose packages it derives from)
OUTPUTS = {
    'ru_instructions.jsonl':             ('ru', 'train', ['ru_tech.jsonl', 'ru_fortunes.jsonl']),
    'en_instructions.jsonl':             ('en', 'train', ['en_tech.jsonl', 'en_fortunes.jsonl']),
    'ru_en_instructions.jsonl':          ('ru-en', 'train', ['ru_en_parallel.jsonl']),
    'ru_instructions_heldout.jsonl':     ('ru', 'heldout', ['ru_faq_heldout.jsonl', 'ru_heldout_manpages.jsonl']),
    'en_instructions_heldout.jsonl':     ('en', 'heldout', ['en_faq_heldout.jsonl', 'en_heldout_fortunes.jsonl']),
    'ru_en_instructions_heldout.jsonl':  ('ru-en', 'heldout', ['ru_en_faq_heldout.jsonl']),
}
FIELDS = ['messages']  # the manifest's text fields (each record also has `id` and `task`)

def log(*a): print(*a, file=sys.stderr, flush=True)

def sha256_file(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()

def read_inputs(data):
    "{file name: rows} of every corpus file this script reads, each checked against its manifest sha256"
    m = json.loads((data/'manifest.json').read_text(encoding='utf-8'))
    by = {e['path']: e for e in m['files']}
    need = sorted({f for *_, fs in OUTPUTS.values() for f in fs} | {'ru_en_parallel.jsonl'})
    rows = {}
    for f in need:
        if f not in by: sys.exit(f"error: {data/'manifest.json'} has no entry for {f}: rebuild the corpus with data/build_corpus.py first.")
        if sha256_file(data/f) != by[f]['sha256']:
            sys.exit(f"error: {data/f} does not match the sha256 in its manifest: rebuild it with data/build_corpus.py.")
        rows[f] = [json.loads(l) for l in open(data/f, encoding='utf-8')]
    return m, rows

def conv(id, task, user, assistant):
    return {'id': id, 'task': task, 'messages': [{'role': 'user', 'content': user}, {'role': 'assistant', 'content': assistant}]}

def paras(t): return t.split('\n\n')

def cap(ps, n):
    "The longest run of leading paragraphs of at most `n` characters in all (a cut at a paragraph boundary)"
    out = []
    for p in ps:
        if len('\n\n'.join(out + [p])) > n: break
        out.append(p)
    return '\n\n'.join(out)

# ------------------------------------------------------------------ the tasks

def faq_items(docs, cfg):
    "Question -> answer pairs from FAQ sections whose first paragraph is a numbered question"
    out = []
    for d in docs:
        if ':' not in d['id'] or not d['id'].split(':', 1)[0].startswith('debian-faq'): continue
        ps = paras(d['text'])
        m = FAQ_Q.match(ps[0])
        if not m or '\n' in ps[0]: continue
        ans = cap(ps[1:], cfg['max_answer'])
        if len(ans) < cfg['min_answer']: continue
        out.append(conv(f"{d['id']}:faq", 'faq', m.group(1), ans))
    return out

def translate_items(pairs, cfg, rng, src='ru', tgt='en'):
    """Whole short sections, or the paragraphs of longer ones (the parallel file is aligned paragraph by paragraph:
    the same number on both sides, or the section is skipped); each pair goes one way, chosen with the seed"""
    out = []
    lo, hi = cfg['translate_ratio']
    for p in pairs:
        a, b = p[src], p[tgt]
        if len(a) <= cfg['max_translate'] and len(b) <= cfg['max_translate']: cands = [(a, b)]
        else:
            pa, pb = paras(a), paras(b)
            if len(pa) != len(pb): continue
            cands = [(x, y) for x, y in zip(pa, pb) if len(x) <= cfg['max_translate'] and len(y) <= cfg['max_translate']]
        for k, (x, y) in enumerate(cands):
            if x == y or min(D.n_letters(x), D.n_letters(y)) < cfg['min_translate_letters'] or not lo <= len(x) / len(y) <= hi: continue
            s, t = (src, tgt) if rng.random() < 0.5 else (tgt, src)
            xs, ys = (x, y) if s == src else (y, x)
            out.append(conv(f"{p['id']}:{k}:{s}-{t}", f'translate_{s}_{t}', TRANSLATE[(s, t)].format(text=xs), ys))
    return out

def copy_candidates(docs, cfg, skip_first=False):
    "Paragraphs (fortunes are one paragraph or a few lines) short enough to repeat; man pages without their title"
    out = []
    for d in docs:
        ps = paras(d['text'])[1:] if skip_first else [d['text']]
        for k, t in enumerate(ps):
            if len(t) <= cfg['copy_max'] and D.n_letters(t) >= cfg['copy_min_letters']: out.append((f"{d['id']}:{k}", t))
    return out

def copy_items(docs, n, lang, cfg, rng, skip_first=False):
    cands = copy_candidates(docs, cfg, skip_first)
    seen, out = set(), []
    for i in rng.sample(range(len(cands)), len(cands)):
        id, t = cands[i]
        if D.text_key(t) in seen: continue
        seen.add(D.text_key(t)); out.append(conv(f'{id}:copy', 'copy', COPY[lang].format(text=t), t))
        if len(out) == n: break
    return sorted(out, key=lambda c: c['id'])

def command_items(docs, cfg, lang='ru'):
    "Что делает команда X? -> the first paragraph of the ОПИСАНИЕ (description) section of a command's man page"
    out = []
    for d in docs:
        pkg, rest = d['id'].split(':', 1)
        page, _, sec = rest.partition('#')
        if sec != 'ОПИСАНИЕ' or page.split('/')[0] not in cfg['command_sections']: continue
        ps = paras(d['text'])
        if len(ps) < 2 or not cfg['min_answer'] <= len(ps[1]) <= cfg['command_max'] or '\n' in ps[1]: continue
        name = page.split('/')[-1].rsplit('.', 1)[0]
        out.append(conv(f"{d['id']}:command", 'command', COMMAND[lang].format(name=name), ps[1]))
    return out

# ------------------------------------------------------------------ isolation

def norm(s): return ' '.join(unicodedata.normalize('NFKC', s).casefold().split())

class Training:
    "All training text of a language, to test held-out answers against (normalized substring, word n-gram share)"
    def __init__(self, texts, n):
        self.blob = '\n'.join(norm(t) for t in texts); self.n = n
        self.grams = set().union(*(D.word_ngrams(t, n) for t in texts))
    def contains(self, t, max_share):
        if norm(t) in self.blob: return True
        g = D.word_ngrams(t, self.n)
        return bool(g) and len(g & self.grams) / len(g) >= max_share

def texts_of(it):
    "The request without its instruction line, and the answer"
    return [m['content'].split('\n\n', 1)[-1] if m['role'] == 'user' else m['content'] for m in it['messages']]

def isolate(items, training, cfg, stats, name):
    "Drop held-out items whose answer (or request text) occurs in training text"
    c = cfg['heldout_contain']
    keep = [it for it in items if not any(training.contains(t, c['max_share']) for t in texts_of(it) if len(t) >= cfg['min_answer'])]
    stats[name] = len(items) - len(keep)
    return keep

# ------------------------------------------------------------------ building

def counts(rows):
    "Counts as `vikhr_nb.data.verify_manifest` makes them over FIELDS, plus the message text by role"
    c = {'documents': len(rows), 'characters': 0, 'words': 0}
    for r in rows:
        for f in FIELDS:
            for t in D._strs(r[f]): c['characters'] += len(t); c['words'] += len(t.split())
    by = {role: {'characters': sum(len(m['content']) for r in rows for m in r['messages'] if m['role'] == role),
                 'words': sum(len(m['content'].split()) for r in rows for m in r['messages'] if m['role'] == role)}
          for role in ('user', 'assistant')}
    tasks = {}
    for r in rows: tasks[r['task']] = tasks.get(r['task'], 0) + 1
    return {**c, 'by_role': by, 'tasks': dict(sorted(tasks.items()))}

def build(data, out, cfg=INSTRUCTIONS):
    "Read the corpus in `data`, write the instruction files and `out/manifest.json` (the corpus manifest plus their entries)"
    m, rows = read_inputs(data)
    rng = lambda name: random.Random(f"{cfg['seed']}:{name}")  # one generator per file: a change in one file moves no other
    report = {f: {} for f in OUTPUTS}
    files = {}
    files['ru_instructions.jsonl'] = faq_items(rows['ru_tech.jsonl'], cfg)
    files['en_instructions.jsonl'] = faq_items(rows['en_tech.jsonl'], cfg)
    for f, n in cfg['copy_train'].items():
        files[f[:2] + '_instructions.jsonl'] += copy_items(rows[f], n, f[:2], cfg, rng(f))
    files['ru_en_instructions.jsonl'] = translate_items(rows['ru_en_parallel.jsonl'], cfg, rng('ru_en_parallel'))

    train_texts = {'ru': [], 'en': []}
    for e in m['files']:
        if e['split'] != 'train' or e['path'] in OUTPUTS: continue
        rs = rows.get(e['path']) or [json.loads(l) for l in open(data/e['path'], encoding='utf-8')]
        for lang in ('ru', 'en'):
            if e['lang'] == lang: train_texts[lang] += [r['text'] for r in rs]
            elif e['lang'] == 'ru-en': train_texts[lang] += [r[lang] for r in rs]
    training = {lang: Training(t, cfg['heldout_contain']['n']) for lang, t in train_texts.items()}

    ru_h = faq_items(rows['ru_faq_heldout.jsonl'], cfg) + command_items(rows['ru_heldout_manpages.jsonl'], cfg)
    ru_h += copy_items(rows['ru_heldout_manpages.jsonl'], cfg['copy_heldout']['ru_heldout_manpages.jsonl'], 'ru', cfg,
                       rng('ru_heldout_manpages.jsonl'), skip_first=True)
    en_h = faq_items(rows['en_faq_heldout.jsonl'], cfg)
    en_h += copy_items(rows['en_heldout_fortunes.jsonl'], cfg['copy_heldout']['en_heldout_fortunes.jsonl'], 'en', cfg,
                       rng('en_heldout_fortunes.jsonl'))
    files['ru_instructions_heldout.jsonl'] = isolate(ru_h, training['ru'], cfg, report['ru_instructions_heldout.jsonl'], 'in_train')
    files['en_instructions_heldout.jsonl'] = isolate(en_h, training['en'], cfg, report['en_instructions_heldout.jsonl'], 'in_train')
    rh = translate_items(rows['ru_en_faq_heldout.jsonl'], cfg, rng('ru_en_faq_heldout'))
    # a translation item holds both languages: check each side against its own language's training text
    c = cfg['heldout_contain']
    keep = [it for it in rh if not any(training[l].contains(t, c['max_share']) for t in texts_of(it) for l in ('ru', 'en')
                                       if len(t) >= cfg['min_answer'])]
    report['ru_en_instructions_heldout.jsonl']['in_train'] = len(rh) - len(keep)
    files['ru_en_instructions_heldout.jsonl'] = keep

    by = {e['path']: e for e in m['files']}
    entries = [e for e in m['files'] if e['path'] not in OUTPUTS]
    out.mkdir(parents=True, exist_ok=True)
    for fname, (lang, split, inputs) in OUTPUTS.items():
        with open(out/fname, 'w', encoding='utf-8', newline='\n') as f:
            for r in files[fname]: f.write(json.dumps(r, ensure_ascii=False) + '\n')
        srcs = [s for i in inputs for s in by[i]['sources']]
        srcs = [s for k, s in enumerate(srcs) if s not in srcs[:k]]
        lic_files = list(dict.fromkeys(l for i in inputs for l in by[i]['licence_files']))
        lics = sorted({x for i in inputs for x in by[i]['licence'].split('; ')})
        entries.append({'path': fname, 'lang': lang, 'split': split, 'kind': 'instructions', 'fields': FIELDS,
                        'source': ', '.join(f"{s['package']} {s['version']}" for s in srcs), 'sources': srcs,
                        'licence': '; '.join(lics), 'licence_files': lic_files, 'from': inputs,
                        'sha256': sha256_file(out/fname), 'bytes': (out/fname).stat().st_size,
                        **counts(files[fname]), 'build': report[fname]})
    m = {**m, 'settings': {**m['settings'], 'instructions': cfg}, 'files': entries}
    (out/'manifest.json').write_text(json.dumps(m, ensure_ascii=False, indent=1) + '\n', encoding='utf-8')
    for fname in OUTPUTS: log(f"{fname}: {len(files[fname])} conversations {counts(files[fname])['tasks']}")
    return m

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', type=Path, default=HERE, help='the corpus folder to read (default: this data/ folder)')
    ap.add_argument('--out', type=Path, default=None, help='where to write (default: --data, in place)')
    ap.add_argument('--check', action='store_true', help='build into a temp dir and compare with the files in --data')
    a = ap.parse_args(argv)
    out = a.out or a.data
    with tempfile.TemporaryDirectory(prefix='.instr-', dir=None if a.check else out) as tmp:
        tmp = Path(tmp)
        build(a.data, tmp)
        names = list(OUTPUTS) + ['manifest.json']
        if a.check:
            diff = [n for n in names if not (a.data/n).exists() or (tmp/n).read_bytes() != (a.data/n).read_bytes()]
            if diff: sys.exit(f'--check: rebuilt instruction files differ from {a.data} in: {", ".join(diff)}')
            print(f'--check: rebuilt instruction files are byte-identical to {a.data}')
        else:
            for n in names: shutil.move(str(tmp/n), str(out/n))  # same filesystem: one rename per file
            print(f'wrote {len(OUTPUTS)} instruction files and manifest.json to {out}')

if __name__ == '__main__': main()
