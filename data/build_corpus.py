#!/usr/bin/env python
"""Rebuild the corpus in `data/` from pinned Debian packages, byte for byte.

    python data/build_corpus.py             # fetch the pinned .debs, verify them, rebuild data/
    python data/build_corpus.py --check     # rebuild into a temp dir and compare with the shipped files
    python data/build_corpus.py --debs DIR  # look for (and cache) the .deb files in DIR
    python data/build_corpus.py --lang ja   # the Japanese corpus instead (data/ja/; add --check to compare)

Each .deb is fetched with `apt-get download NAME=VERSION` (run `apt-get update` once first) and
checked against the sha256 recorded below before anything is read from it. The .deb archives
are read in Python (ar + tar.xz), so `dpkg` is not needed when the .debs are already in DIR.
All cleaning, filtering and deduplication comes from `vikhr_nb.data`: this script only says
which files of which package become which corpus file.
"""
import argparse, gzip, hashlib, io, json, os, platform, shutil, subprocess, sys, tarfile, tempfile, time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # use the repo's vikhr_nb even when it is not installed
from vikhr_nb import data as D

# name: (version, sha256 of the .deb, licence as the package's copyright file states it)
PACKAGES = {
    'fortunes-ru':             ('1.52-3.1',    '2dc76af9c0e02e2926d36f88dcb685bb171fab8677e553a6def41efe8a551cc6', 'GPL-2'),
    'fortunes-min':            ('1:1.99.1-7.3', '9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07', 'BSD-3-Clause'),
    'fortunes':                ('1:1.99.1-7.3', '41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5', 'BSD-3-Clause'),
    'debian-faq':              ('11.1',        '427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0', 'verbatim-copying (SPI, see copyright)'),
    'debian-faq-ru':           ('11.1',        'aaaae7a409c5cf5f5b8c26991f6ef484297e0cd2dee74c8d675cfa6613bce541', 'verbatim-copying (SPI, see copyright)'),
    'maint-guide':             ('1.2.53',      '762c8a400a36668d2eb814a3ba356b06488fd889dfce478eb11d5cfb189a47b5', 'GPL-2+'),
    'maint-guide-ru':          ('1.2.53',      '41b69743c45f0a931edca9ab19232e226cebce393cbafdd582f0d000499a0d19', 'GPL-2+'),
    'developers-reference':    ('12.18',       '0dba82f6fa16e373f2a84ad07e7971aa9264ad2e7d2ae46b37edbc9c5fd57e2e', 'GPL-2+'),
    'developers-reference-ru': ('12.18',       'a618bfa826e2436fa73d5bf4eaac7170ff9d25a5d1bdd86b1c25a196a2b886c6', 'GPL-2+'),
    'manpages-ru':             ('4.18.1-1',    '5d5821dad5840652ba9c1c6b85bdc785c1fc52148a71c18fab6658c9659244c0', 'GPL-3+ (translations); original pages under their own free licences, see copyright'),
}

# The Japanese corpus (`--lang ja`: its own folder `data/ja/` with its own manifest, so the Russian build, its files
# and its manifest are untouched; the licence files join the shared `data/licences/`): Debian's Japanese translations of the same manuals. Japanese is written without spaces between words.
JA_PACKAGES = {
    'debian-faq-ja':           ('11.1',        '7e2a2f200a963e41dead4dd8645e0dd6550e2eda4cd88041b8e880046ca924a2', 'verbatim-copying (SPI, see copyright)'),
    'maint-guide-ja':          ('1.2.53',      '67e9020818b7664b465239d96316a13af5f8cbd9a8bed5e8773c74e31ca24c97', 'GPL-2+'),
    'developers-reference-ja': ('12.18',       'fdcd6ac4ade8b3a68449c7ba881195e37f429c64b8067ee7269404d1b86fa229', 'GPL-2+'),
}
# (package, dir, file suffix): the training text is the two manuals; the held-out text is the held-out FAQ sections
JA_TRAIN_DOCS = [('maint-guide-ja', 'usr/share/doc/maint-guide-ja/html/', '.ja.html'),
                 ('developers-reference-ja', 'usr/share/developers-reference/ja/', '.html')]
JA_HELDOUT_DOCS = [('debian-faq-ja', 'usr/share/doc/debian/FAQ/ja/', '.ja.html')]

# English fortune files left out. The package is BSD-licensed as a whole, but these files are
# mostly excerpts of identifiable copyrighted works (a comic strip, a TV series, novels, song
# lyrics), kept only under a "fair use" note (usr/share/doc/fortunes/Notes.gz): not DFSG-free
# text we can relicense. `ascii-art` is pictures, `translate-me` is not English.
EN_FORTUNES_EXCLUDED = {'zippy': 'Zippy the Pinhead comic strip quotes', 'startrek': 'Star Trek script quotes',
                        'pratchett': 'Terry Pratchett novel excerpts', 'songs-poems': 'song lyrics and poems',
                        'ascii-art': 'pictures, not prose', 'translate-me': 'not English'}

# (English package, Russian package, English dir, Russian dir, file suffix en, file suffix ru)
TECH_DOCS = [
    ('debian-faq', 'debian-faq-ru', 'usr/share/doc/debian/FAQ/', 'usr/share/doc/debian/FAQ/ru/', '.en.html', '.ru.html'),
    ('maint-guide', 'maint-guide-ru', 'usr/share/doc/maint-guide/html/', 'usr/share/doc/maint-guide-ru/html/', '.en.html', '.ru.html'),
    ('developers-reference', 'developers-reference-ru', 'usr/share/developers-reference/',
     'usr/share/developers-reference/ru/', '.html', '.html'),
]
TECH_SKIP = {'developers-reference.html', 'search.html', 'genindex.html'}  # one-page copy of the book, search page

# man page sections that hold no prose: name line, synopsis (code), cross references, translation credits
MAN_SKIP_SECTIONS = {'ИМЯ', 'СИНТАКСИС', 'СМ. ТАКЖЕ', 'ПЕРЕВОД'}

NEAR_DUP = dict(threshold=0.8, num_perm=128, seed=1, ngram=5)   # MinHash over character 5-grams
CONTAIN = dict(n=8, max_share=0.5)  # held-out doc dropped if half of its word 8-grams occur in training text
MIN_CHARS = {'fortune': 10, 'tech': 100, 'man': 200}
EN_HELDOUT = dict(every=20, salt='en-heldout')  # 1 English fortune in 20 (by a hash of its text) is held out
MC_TASK = dict(n_items=200, n_choices=4, seed=0, min_query=60, max_query=600, min_end=20, max_end=200)
# 25 FAQ sections in 100 (by a salted hash of the section id, so the same ones in both languages) leave every training
# file: they are the source of the held-out FAQ questions of data/build_instructions.py
FAQ_HELDOUT = dict(packages=['debian-faq', 'debian-faq-ru'], share=25, salt='faq-heldout')
JA_FAQ_HELDOUT = dict(FAQ_HELDOUT, packages=['debian-faq-ja'])  # the same sections in Japanese (the rest of the FAQ is not used)

def log(*a): print(*a, file=sys.stderr, flush=True)

# ------------------------------------------------------------------ fetching .debs

def deb_name(name, version): return f"{name}_{version.replace(':', '%3a')}_all.deb"

def sha256_file(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''): h.update(b)
    return h.hexdigest()

def fetch_deb(name, debs_dir):
    "Path of the verified .deb for `name`, downloading it with apt-get if it is not in `debs_dir`"
    version, sha, _ = PACKAGES[name] if name in PACKAGES else JA_PACKAGES[name]
    p = debs_dir / deb_name(name, version)
    if not p.exists():
        debs_dir.mkdir(parents=True, exist_ok=True)
        log(f'apt-get download {name}={version}')
        try: r = subprocess.run(['apt-get', 'download', f'{name}={version}'], cwd=debs_dir, capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit(f"error: {p.name} is not in {debs_dir} and apt-get is not available here.\n"
                     f"Download it by hand (e.g. from https://snapshot.debian.org/package/{name}/) into {debs_dir} "
                     f"or pass --debs DIR.")
        if r.returncode != 0 or not p.exists():
            sys.exit(f"error: could not download {name}={version} with apt-get:\n{r.stderr.strip()}\n"
                     f"The corpus is pinned to this exact version. Run `apt-get update` first; if the mirror no longer "
                     f"has {version}, fetch {p.name} from https://snapshot.debian.org/package/{name}/{version}/ "
                     f"into {debs_dir} and rerun with --debs {debs_dir}.")
    got = sha256_file(p)
    if got != sha:
        sys.exit(f"error: {p} has sha256 {got}, expected {sha}.\n"
                 f"The file is not the pinned {name} {version}: delete it and rerun, or fetch it from snapshot.debian.org.")
    return p

def deb_files(deb):
    "{path: bytes} for the regular files in a .deb (an ar archive holding data.tar.xz)"
    b = Path(deb).read_bytes()
    assert b[:8] == b'!<arch>\n', f'{deb} is not a Debian package'
    i, members = 8, {}
    while i < len(b):
        hdr = b[i:i + 60]; name = hdr[:16].decode().strip().rstrip('/'); size = int(hdr[48:58])
        members[name] = b[i + 60:i + 60 + size]; i += 60 + size + (size & 1)
    data = next(v for k, v in members.items() if k.startswith('data.tar'))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.removeprefix('./'): tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}

# ------------------------------------------------------------------ readers

def read_fortune_docs(files, prefix, pkg, exclude=()):
    "One document per fortune: entries separated by lines holding `%`"
    docs = []
    for path in sorted(files):
        if not path.startswith(prefix): continue
        name = path[len(prefix):]
        if '/' in name or name.endswith(('.dat', '.u8')) or name in exclude: continue
        text = files[path].decode('utf-8', errors='strict')
        for k, entry in enumerate(D.split_fortunes(text)):
            docs.append(dict(id=f'{pkg}:{name}:{k}', text=D.clean_text(entry, markup=None)))
    return docs

def html_docs(files, d, suffix, skip=TECH_SKIP):
    "{file stem: [sections]} for the HTML files directly in `d`"
    out = {}
    for path in sorted(files):
        if not path.startswith(d) or '/' in path[len(d):] or not path.endswith(suffix): continue
        name = path[len(d):]
        if name in skip: continue
        out[name[:-len(suffix)]] = D.html_sections(files[path].decode('utf-8'))
    return out

def man_docs(files, pkg, prefix='usr/share/man/'):
    docs = []
    for path in sorted(files):
        if not (path.startswith(prefix) and path.endswith('.gz')): continue
        src = gzip.decompress(files[path]).decode('utf-8')
        page = path[len(prefix):-3].split('/', 1)[-1]          # ru/man7/pipe.7 -> man7/pipe.7
        for sec in D.roff_sections(src):
            if sec['title'] in MAN_SKIP_SECTIONS: continue
            docs.append(dict(id=f"{pkg}:{page}#{sec['title']}", text=sec['title'] + '\n\n' + sec['text']))
    return docs

# ------------------------------------------------------------------ filters

def keep(docs, pred, what, stats):
    out = [d for d in docs if pred(d)]
    stats[what] = len(docs) - len(out)
    return out

def lang_filter(docs, lang, stats, key='text'):
    got = D.detect_lang([d[key] for d in docs])
    stats[f'not_{lang}'] = sum(g != lang for g in got)
    return [d for d, g in zip(docs, got) if g == lang]

def dedup(docs, stats, seen_keys=None, prior=()):
    "Drop exact duplicates (also of `seen_keys`) and near duplicates (also of the `prior` documents)"
    seen = set() if seen_keys is None else seen_keys
    out = []
    for d in docs:
        k = D.text_key(d['text'])
        if k not in seen: seen.add(k); out.append(d)
    stats['exact_dups'] = len(docs) - len(out)
    p = dict(NEAR_DUP); thr = p.pop('threshold')
    sigs = [D.minhash(d['text'], **p) for d in list(prior) + out]
    dup_of = D.near_dup_of(sigs, threshold=thr)[len(prior):]
    res = [d for d, j in zip(out, dup_of) if j is None]
    stats['near_dups'] = len(out) - len(res)
    return res

# ------------------------------------------------------------------ the corpus

def build_fortunes(files, lang, pkgs, prefix, exclude=()):
    stats, docs = {}, []
    for pkg in pkgs: docs += read_fortune_docs(files[pkg], prefix, pkg, exclude)
    stats['read'] = len(docs)
    docs = keep(docs, lambda d: D.n_letters(d['text']) >= MIN_CHARS['fortune'], 'too_short', stats)
    docs = lang_filter(docs, lang, stats)
    return docs, stats

def build_tech(files, lang):
    "Russian or English sections of the three Debian manuals; untranslated paragraphs dropped"
    stats, docs = {}, []
    for en_pkg, ru_pkg, en_dir, ru_dir, en_suf, ru_suf in TECH_DOCS:
        pkg, d, suf = (en_pkg, en_dir, en_suf) if lang == 'en' else (ru_pkg, ru_dir, ru_suf)
        for stem, secs in html_docs(files[pkg], d, suf).items():
            for s in secs:
                docs.append(dict(id=f"{pkg}:{stem}#{s['id']}", text=D.clean_text(s['text'], markup=None)))
    stats['read'] = len(docs)
    for d in docs: d['text'] = D.keep_lang_paragraphs(d['text'], lang)
    docs = keep(docs, lambda d: len(d['text']) >= MIN_CHARS['tech'], 'too_short', stats)
    docs = lang_filter(docs, lang, stats)
    return docs, stats

def build_parallel(files, src='ru', tgt='en'):
    "Section pairs with the same id, nesting and block structure; paragraph by paragraph, translated ones only"
    stats = Counter(); pairs = []
    for en_pkg, ru_pkg, en_dir, ru_dir, en_suf, ru_suf in TECH_DOCS:
        en = html_docs(files[en_pkg], en_dir, en_suf); ru = html_docs(files[ru_pkg], ru_dir, ru_suf)
        for stem in sorted(set(en) & set(ru)):
            en_by = {s['id']: s for s in en[stem]}; ids = Counter(s['id'] for s in ru[stem])
            for r in ru[stem]:
                stats['sections'] += 1
                e = en_by.get(r['id'])
                if r['id'] is None or ids[r['id']] > 1 or e is None: stats['no_id_match'] += 1; continue
                if (r['path'], r['sig']) != (e['path'], e['sig']): stats['structure_differs'] += 1; continue
                rp = [D.clean_text(p, markup=None) for p in r['text'].split('\n\n')]
                ep = [D.clean_text(p, markup=None) for p in e['text'].split('\n\n')]
                if len(rp) != len(ep): stats['paragraph_count_differs'] += 1; continue
                pairs.append(dict(id=f'{en_pkg}:{stem}#{r["id"]}', paras=list(zip(rp, ep))))
    # judge every long-enough paragraph's language in one batch
    todo = [(p, l) for x in pairs for pr in x['paras'] for p, l in zip(pr, (src, tgt)) if D.n_letters(p) >= 30]
    got = dict(zip(todo, D.detect_lang([p for p, _ in todo])))
    out = []
    for x in pairs:
        kept = [(r, e) for r, e in x['paras'] if r != e and got.get((r, src), src) == src and got.get((e, tgt), tgt) == tgt]
        r_txt, e_txt = '\n\n'.join(r for r, _ in kept), '\n\n'.join(e for _, e in kept)
        if D.n_letters(r_txt) < 30: stats['untranslated_or_empty'] += 1; continue
        ratio = len(r_txt) / max(1, len(e_txt))
        if not 0.5 <= ratio <= 2.5: stats['length_ratio'] += 1; continue
        out.append({'id': x['id'], src: r_txt, tgt: e_txt})
    stats['kept'] = len(out)
    return out, dict(stats)

def build_heldout(files, lang, train_texts, script):
    stats = {}
    docs = man_docs(files['manpages-ru'], 'manpages-ru')
    stats['read'] = len(docs)
    for d in docs:
        d['text'] = D.keep_lang_paragraphs(D.clean_text(d['text'], markup=None), lang, script=script)
    docs = keep(docs, lambda d: len(d['text'].split('\n\n', 1)[-1]) >= MIN_CHARS['man'], 'too_short', stats)
    docs = lang_filter(docs, lang, stats)
    # no document shared with training text, exactly or nearly, and none contained in a training document
    train_keys = {D.text_key(t) for t in train_texts}
    n = len(docs); docs = [d for d in docs if D.text_key(d['text']) not in train_keys]
    stats['in_train_exact'] = n - len(docs)
    ov = D.corpus_overlap([d['text'] for d in docs], train_texts, threshold=NEAR_DUP['threshold'],
                          ngram=NEAR_DUP['ngram'], contain_n=CONTAIN['n'], contain_share=CONTAIN['max_share'])
    bad = {i for i, _, _ in ov['near']} | {i for i, _ in ov['contained']}
    stats['in_train_near'] = len(bad)
    docs = [d for i, d in enumerate(docs) if i not in bad]
    docs = dedup(docs, stats)
    return docs, stats

def split_heldout(docs, every, salt):
    "Deterministically move one document in `every` (by a hash of its normalized text) to a held-out list"
    pick = lambda d: int(hashlib.sha256((salt + D.text_key(d['text'])).encode()).hexdigest(), 16) % every == 0
    return [d for d in docs if not pick(d)], [d for d in docs if pick(d)]

def sentences(p):
    "Split a paragraph after . ! ? or … followed by a space and an upper-case letter (any script)"
    out, start = [], 0
    for i, ch in enumerate(p):
        if ch in '.!?…' and i + 2 < len(p) and p[i + 1] == ' ' and p[i + 2].isupper():
            out.append(p[start:i + 1]); start = i + 2
    out.append(p[start:])
    return [x for x in out if x]

def build_mc_task(docs, n_items, n_choices, seed, min_query, max_query, min_end, max_end):
    """Sentence completion on held-out prose: the query is a paragraph without its last sentence, the gold
    choice is that sentence, the others are last sentences of paragraphs of *other* documents of similar length"""
    import random
    cands, seen = [], set()
    for d in docs:
        for k, para in enumerate(d['text'].split('\n\n')[1:]):   # the first paragraph is the section title
            ss = sentences(para)
            if len(ss) < 2 or '\n' in para: continue
            q, end = ' '.join(ss[:-1]), ss[-1]
            if D.text_key(q) in seen: continue  # boilerplate paragraphs repeat across man pages
            if min_query <= len(q) <= max_query and min_end <= len(end) <= max_end and D.n_letters(end) >= min_end // 2:
                seen.add(D.text_key(q))
                cands.append(dict(doc=d['id'], id=f"{d['id']}:{k}", query=q, end=end)); break  # one item per document
    rng = random.Random(seed)
    rng.shuffle(cands)
    items, ends = [], [c['end'] for c in cands]
    for c in cands[:n_items]:
        pool = [e for e, o in zip(ends, cands) if o['doc'] != c['doc'] and 0.5 <= len(e) / len(c['end']) <= 2 and e != c['end']]
        if len(pool) < n_choices - 1: continue
        choices = rng.sample(pool, n_choices - 1) + [c['end']]
        rng.shuffle(choices)
        items.append(dict(id=c['id'], query=c['query'], choices=choices, gold=choices.index(c['end'])))
    return items, {'candidates': len(cands), 'items': len(items)}

def faq_heldout(doc_id, packages, share, salt):
    "Whether a section (id `package:file#section`) is one of the held-out FAQ sections"
    pkg, _, key = doc_id.partition(':')
    return pkg in packages and int(hashlib.sha256(f'{salt}:{key}'.encode()).hexdigest(), 16) % 100 < share

def split_faq(docs, stats, **kw):
    "(training documents, held-out FAQ sections)"
    held = [d for d in docs if faq_heldout(d['id'], **kw)]
    stats['faq_heldout'] = len(held)
    return [d for d in docs if not faq_heldout(d['id'], **kw)], held

# ------------------------------------------------------------------ writing

def write_jsonl(path, rows):
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        for r in rows: f.write(json.dumps(r, ensure_ascii=False) + '\n')

def counts(rows, fields):
    c = {'documents': len(rows), 'characters': 0, 'words': 0}
    by = {}
    strs = lambda v: [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
    for f in fields:
        ch = sum(len(x) for r in rows for x in strs(r[f])); w = sum(len(x.split()) for r in rows for x in strs(r[f]))
        c['characters'] += ch; c['words'] += w; by[f] = {'characters': ch, 'words': w}
    if len(fields) > 1: c['by_field'] = by
    return c

def tool_versions():
    from importlib.metadata import version
    return {'python': platform.python_version(), **{p: version(p) for p in ('datasketch', 'lingua-language-detector', 'numpy')}}

def build(out, debs_dir):
    t0 = time.time()
    debs = {name: fetch_deb(name, debs_dir) for name in PACKAGES}
    files = {name: deb_files(p) for name, p in debs.items()}
    log(f'read {len(debs)} packages in {time.time() - t0:.1f}s')
    ver = lambda *ps: ', '.join(f'{p} {PACKAGES[p][0]}' for p in ps)
    lic = lambda *ps: '; '.join(sorted({PACKAGES[p][2] for p in ps}))
    srcs = lambda *ps: [{'package': p, 'version': PACKAGES[p][0]} for p in ps]
    report = {}

    ru_f, report['ru_fortunes'] = build_fortunes(files, 'ru', ['fortunes-ru'], 'usr/share/games/fortunes/ru/')
    ru_t, report['ru_tech'] = build_tech(files, 'ru')
    en_f, report['en_fortunes'] = build_fortunes(files, 'en', ['fortunes-min', 'fortunes'], 'usr/share/games/fortunes/',
                                                 exclude=EN_FORTUNES_EXCLUDED)
    en_t, report['en_tech'] = build_tech(files, 'en')
    # dedup within each language across its files: fortunes first, then technical sections
    ru_keys, en_keys = set(), set()
    ru_f = dedup(ru_f, report['ru_fortunes'], ru_keys); ru_t = dedup(ru_t, report['ru_tech'], ru_keys, prior=ru_f)
    en_f = dedup(en_f, report['en_fortunes'], en_keys); en_t = dedup(en_t, report['en_tech'], en_keys, prior=en_f)
    en_f_all = en_f
    en_f, en_held = split_heldout(en_f, **EN_HELDOUT)  # an English held-out set: 'nothing lost in English' is measured on it
    report['en_heldout_fortunes'] = {'from': 'en_fortunes', 'held_out': len(en_held), 'every': EN_HELDOUT['every']}
    log(f'training text done at {time.time() - t0:.1f}s')
    par, report['ru_en_parallel'] = build_parallel(files)
    train_texts = [d['text'] for d in ru_f + ru_t + en_f + en_t] + [p[k] for p in par for k in ('ru', 'en')]
    held, report['ru_heldout_manpages'] = build_heldout(files, 'ru', train_texts, script='Cyrillic')
    # the English held-out fortunes must not be contained in any English training text either: those go back to training
    en_train = [d['text'] for d in en_f + en_t] + [p['en'] for p in par]
    ov = D.corpus_overlap([d['text'] for d in en_held], en_train, threshold=NEAR_DUP['threshold'], ngram=NEAR_DUP['ngram'],
                          contain_n=CONTAIN['n'], contain_share=CONTAIN['max_share'])
    back = {en_held[i]['id'] for i, *_ in ov['exact'] + ov['near'] + ov['contained']}
    en_f = [d for d in en_f_all if d['id'] not in {h['id'] for h in en_held} or d['id'] in back]
    en_held = [d for d in en_held if d['id'] not in back]
    report['en_heldout_fortunes']['back_to_train'] = len(back)
    mc, report['ru_mc_manpages'] = build_mc_task(held, **MC_TASK)
    # the held-out FAQ sections leave the training files last, so nothing above depends on them
    ru_t, ru_fh = split_faq(ru_t, report['ru_tech'], **FAQ_HELDOUT)
    en_t, en_fh = split_faq(en_t, report['en_tech'], **FAQ_HELDOUT)
    par, par_fh = split_faq(par, report['ru_en_parallel'], **FAQ_HELDOUT)
    for name, src in (('ru_faq_heldout', 'ru_tech'), ('en_faq_heldout', 'en_tech'), ('ru_en_faq_heldout', 'ru_en_parallel')):
        report[name] = {'from': src, 'rule': 'faq_heldout'}
    log(f'held-out done at {time.time() - t0:.1f}s')

    outputs = [  # file, rows, fields, lang, split, kind, packages
        ('ru_fortunes.jsonl', ru_f, ['text'], 'ru', 'train', 'text', ['fortunes-ru']),
        ('ru_tech.jsonl', ru_t, ['text'], 'ru', 'train', 'text', [t[1] for t in TECH_DOCS]),
        ('en_fortunes.jsonl', en_f, ['text'], 'en', 'train', 'text', ['fortunes-min', 'fortunes']),
        ('en_tech.jsonl', en_t, ['text'], 'en', 'train', 'text', [t[0] for t in TECH_DOCS]),
        ('ru_en_parallel.jsonl', par, ['ru', 'en'], 'ru-en', 'train', 'parallel', [p for t in TECH_DOCS for p in t[:2]]),
        ('ru_heldout_manpages.jsonl', held, ['text'], 'ru', 'heldout', 'text', ['manpages-ru']),
        ('en_heldout_fortunes.jsonl', en_held, ['text'], 'en', 'heldout', 'text', ['fortunes-min', 'fortunes']),
        ('ru_mc_manpages.jsonl', mc, ['query', 'choices', 'gold'], 'ru', 'heldout', 'task', ['manpages-ru']),
        # held-out FAQ sections: kind 'sections', so no text or parallel spec (training or evaluation) selects them
        ('ru_faq_heldout.jsonl', ru_fh, ['text'], 'ru', 'heldout', 'sections', ['debian-faq-ru']),
        ('en_faq_heldout.jsonl', en_fh, ['text'], 'en', 'heldout', 'sections', ['debian-faq']),
        ('ru_en_faq_heldout.jsonl', par_fh, ['ru', 'en'], 'ru-en', 'heldout', 'sections', ['debian-faq', 'debian-faq-ru']),
    ]
    out.mkdir(parents=True, exist_ok=True); (out / 'licences').mkdir(exist_ok=True)
    entries = []
    for fname, rows, fields, lang, split, kind, pkgs in outputs:
        write_jsonl(out / fname, rows)
        entries.append({'path': fname, 'lang': lang, 'split': split, 'kind': kind, 'fields': fields,
                        'source': ver(*pkgs), 'sources': srcs(*pkgs), 'licence': lic(*pkgs),
                        'licence_files': [f'licences/{p}.copyright' for p in pkgs],
                        'sha256': sha256_file(out / fname), 'bytes': (out / fname).stat().st_size,
                        **counts(rows, fields), 'build': report[fname[:-6]]})
    sources = []
    for name, p in debs.items():
        version, sha, licence = PACKAGES[name]
        cp = next(v for k, v in files[name].items() if k == f'usr/share/doc/{name}/copyright')
        (out / 'licences' / f'{name}.copyright').write_bytes(cp)
        sources.append({'package': name, 'version': version, 'deb': p.name, 'sha256': sha,
                        'bytes': p.stat().st_size, 'licence': licence, 'copyright': f'licences/{name}.copyright'})
    manifest = {'name': 'vikhr_nb corpus', 'builder': 'data/build_corpus.py', 'tools': tool_versions(),
                'settings': {'near_dup': NEAR_DUP, 'heldout_containment': CONTAIN, 'min_chars': MIN_CHARS,
                             'en_heldout': EN_HELDOUT, 'mc_task': MC_TASK, 'faq_heldout': FAQ_HELDOUT,
                             'en_fortunes_excluded': EN_FORTUNES_EXCLUDED},
                'sources': sources, 'files': entries}
    (out / 'manifest.json').write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + '\n', encoding='utf-8')
    sys.path.insert(0, str(HERE)); import build_instructions  # the instruction files are made from the corpus just written, and join its manifest
    manifest = build_instructions.build(out, out)
    log(f'built in {time.time() - t0:.1f}s')
    return manifest

def build_ja(out, debs_dir):
    """The Japanese corpus: sections of two Debian manuals for training, the held-out Debian FAQ sections for
    evaluation, in `out/ja/` with their own manifest. The same cleaning, language filter (lingua, all its
    languages), deduplication and held-out isolation as the Russian corpus; nothing here knows a Russian detail."""
    t0 = time.time()
    debs = {name: fetch_deb(name, debs_dir) for name in JA_PACKAGES}
    files = {name: deb_files(p) for name, p in debs.items()}
    ver = lambda *ps: ', '.join(f'{p} {JA_PACKAGES[p][0]}' for p in ps)
    lic = lambda *ps: '; '.join(sorted({JA_PACKAGES[p][2] for p in ps}))
    srcs = lambda *ps: [{'package': p, 'version': JA_PACKAGES[p][0]} for p in ps]
    report = {}

    def sections(docs_spec, stats):
        docs = []
        for pkg, d, suf in docs_spec:
            for stem, secs in html_docs(files[pkg], d, suf).items():
                docs += [dict(id=f"{pkg}:{stem}#{x['id']}", text=D.clean_text(x['text'], markup=None)) for x in secs]
        stats['read'] = len(docs)
        for x in docs: x['text'] = D.keep_lang_paragraphs(x['text'], 'ja')  # untranslated (English) paragraphs out
        docs = keep(docs, lambda x: len(x['text']) >= MIN_CHARS['tech'], 'too_short', stats)
        return lang_filter(docs, 'ja', stats)

    train = dedup(sections(JA_TRAIN_DOCS, report.setdefault('ja_tech', {})), report['ja_tech'])
    faq = sections(JA_HELDOUT_DOCS, st := {})
    _, held = split_faq(faq, st, **JA_FAQ_HELDOUT)
    # isolation: no held-out section equal to, nearly equal to or contained in a training section
    train_keys = {D.text_key(x['text']) for x in train}
    n = len(held); held = [x for x in held if D.text_key(x['text']) not in train_keys]
    ov = D.corpus_overlap([x['text'] for x in held], [x['text'] for x in train], threshold=NEAR_DUP['threshold'],
                          ngram=NEAR_DUP['ngram'], contain_n=CONTAIN['n'], contain_share=CONTAIN['max_share'])
    bad = {i for i, _, _ in ov['near']} | {i for i, _ in ov['contained']}
    report['ja_faq_heldout'] = dict(st, in_train_exact=n - len(held), in_train_near=len(bad))
    held = dedup([x for i, x in enumerate(held) if i not in bad], report['ja_faq_heldout'])
    log(f'Japanese corpus built in {time.time() - t0:.1f}s')

    outputs = [('ja_tech.jsonl', train, 'train', [p for p, *_ in JA_TRAIN_DOCS]),
               ('ja_faq_heldout.jsonl', held, 'heldout', [p for p, *_ in JA_HELDOUT_DOCS])]
    sub = out / JA_DIR  # paths in its manifest are relative to it; the licences are the shared ../licences/
    sub.mkdir(parents=True, exist_ok=True); (out / 'licences').mkdir(exist_ok=True)
    entries = []
    for fname, rows, split, pkgs in outputs:
        write_jsonl(sub / fname, rows)
        entries.append({'path': fname, 'lang': 'ja', 'split': split, 'kind': 'text', 'fields': ['text'],
                        'source': ver(*pkgs), 'sources': srcs(*pkgs), 'licence': lic(*pkgs),
                        'licence_files': [f'../licences/{p}.copyright' for p in pkgs],
                        'sha256': sha256_file(sub / fname), 'bytes': (sub / fname).stat().st_size,
                        **counts(rows, ['text']), 'build': report[fname[:-6]]})
    sources = []
    for name, p in debs.items():
        version, sha, licence = JA_PACKAGES[name]
        (out / 'licences' / f'{name}.copyright').write_bytes(files[name][f'usr/share/doc/{name}/copyright'])
        sources.append({'package': name, 'version': version, 'deb': p.name, 'sha256': sha,
                        'bytes': p.stat().st_size, 'licence': licence, 'copyright': f'../licences/{name}.copyright'})
    manifest = {'name': 'vikhr_nb Japanese corpus', 'builder': 'data/build_corpus.py --lang ja', 'tools': tool_versions(),
                'settings': {'near_dup': NEAR_DUP, 'heldout_containment': CONTAIN, 'min_chars': {'tech': MIN_CHARS['tech']},
                             'faq_heldout': JA_FAQ_HELDOUT,
                             'words': 'whitespace-separated, as for every corpus file; Japanese is written without spaces, '
                                      'so these are not words (measure Japanese in characters)'},
                'sources': sources, 'files': entries}
    (out / MANIFESTS['ja']).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + '\n', encoding='utf-8')
    return manifest

JA_DIR = 'ja'
MANIFESTS = {'ru': 'manifest.json', 'ja': f'{JA_DIR}/manifest.json'}  # the corpus each --lang builds: its manifest
BUILDERS = {'ru': build, 'ja': build_ja}

def shipped_paths(m, lang='ru'):
    "What one build writes, relative to data/: its manifest, the licence file of each source package and its corpus files (the instruction files too)"
    base = Path(MANIFESTS[lang]).parent  # the manifest's own paths are relative to its folder
    return [MANIFESTS[lang]] + [os.path.normpath(base / x) for x in [s['copyright'] for s in m['sources']] + [e['path'] for e in m['files']]]

def install(tmp, dest, m, lang='ru'):
    "Move the finished build from `tmp` into `dest`, one rename per output (never a half-written file)"
    for d in ('licences', Path(MANIFESTS[lang]).parent): (dest / d).mkdir(exist_ok=True)  # licences/: shared, each build replaces only its own files
    for p in shipped_paths(m, lang): os.replace(tmp / p, dest / p)

def compare(a, b, m, lang='ru'):
    "Paths under `shipped_paths(m, lang)` whose bytes differ between dirs `a` and `b`"
    return [p for p in shipped_paths(m, lang) if not (b / p).exists() or (a / p).read_bytes() != (b / p).read_bytes()]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=HERE, help='where the corpus goes (default: this data/ folder)')
    ap.add_argument('--debs', type=Path, default=Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'vikhr_nb' / 'debs',
                    help='folder of the .deb files; missing ones are downloaded into it')
    ap.add_argument('--check', action='store_true', help='rebuild into a temp dir and compare with the files in --out')
    ap.add_argument('--lang', choices=sorted(MANIFESTS), default='ru',
                    help='ru: the Russian/English corpus (manifest.json, the default); ja: the Japanese one (ja/manifest.json)')
    a = ap.parse_args(argv)
    t0 = time.time()
    if not a.check: a.out.mkdir(parents=True, exist_ok=True)
    # build next to the outputs (same filesystem, so the final renames are atomic); --check builds in /tmp
    with tempfile.TemporaryDirectory(prefix='.build-', dir=None if a.check else a.out) as tmp:
        m = BUILDERS[a.lang](Path(tmp), a.debs)
        if a.check:
            diff = compare(Path(tmp), a.out, m, a.lang)
            if diff:
                mf = a.out / MANIFESTS[a.lang]
                shipped = json.loads(mf.read_text()) if mf.exists() else {}
                hint = ''
                if shipped.get('tools') != m['tools']:
                    hint = f"\nnote: tool versions differ: shipped {shipped.get('tools')}, here {m['tools']}"
                sys.exit(f'--check: rebuilt corpus differs from {a.out} in: {", ".join(diff)}{hint}')
            print(f'--check: rebuilt corpus is byte-identical to {a.out} ({time.time() - t0:.0f}s)')
        else:
            install(Path(tmp), a.out, m, a.lang)
            print(f'wrote {a.out} in {time.time() - t0:.0f}s')

if __name__ == '__main__': main()
