"""The rendered site (tools/make_site.py), opened page by page in headless Chromium.

Builds the site into a temporary directory with the real command, serves it on 127.0.0.1 and
opens every page in Debian's Chromium through Playwright (its Python package only: the browser is
the system's, `playwright install` is never run). Each page must load, carry its notebook's title,
render every image, have no internal link to a missing page or anchor, and show no Python
traceback in an output. The module docstrings' `Docs: .../NAME.html.md` links must exist.
"""
import ast, functools, http.server, json, os, re, shutil, subprocess, sys, threading, time
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import urlopen

import pytest
from nbdev.config import get_config, nbpath2html

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('VIKHR_CHROMIUM', '/usr/bin/chromium')
# what works on a closed network: nothing phones home, no QUIC, no GPU
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
INSTALL_HINT = ("run ./tools/install.sh (as root with apt-get it installs Debian's chromium; CI does this), "
                "or set VIKHR_CHROMIUM to a Chromium or Chrome binary")

# -- what the site must hold, read from the sources (not from make_site.py) --------------------

def expected_pages():
    "{site path: title} for every notebook (nbdev's page names) and one API page per module."
    nbs = ROOT / 'nbs'
    pages = {}
    for p in nbs.rglob('*.ipynb'):
        rel = p.relative_to(nbs)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        cells = json.loads(p.read_text(encoding='utf-8'))['cells']
        md = next(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')
        pages[nbpath2html(rel).as_posix()] = re.search(r'^#\s+(.+?)\s*$', md, re.M).group(1)
    for f in (ROOT / 'vikhr_nb').glob('*.py'):
        if not f.name.startswith('_'): pages[f'api/{f.stem}.html'] = f'vikhr_nb.{f.stem}'
    return pages

def module_info():
    "{module: (its Docs URL, its __all__)} read statically from each module's source."
    out = {}
    for f in sorted((ROOT / 'vikhr_nb').glob('*.py')):
        if f.name.startswith('_'): continue
        tree = ast.parse(f.read_text(encoding='utf-8'))
        m = re.search(r'^Docs: (\S+)', ast.get_docstring(tree) or '', re.M)
        names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                      and any(getattr(t, 'id', None) == '__all__' for t in n.targets)), [])
        out[f.stem] = (m.group(1) if m else None, [n for n in names if not n.startswith('_')])
    return out

# -- serving and the browser ---------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope='module')
def server_for():
    "serve(directory) -> base URL of a server on 127.0.0.1 (stopped at the end)."
    servers = []
    def serve(directory):
        srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(directory)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f'http://127.0.0.1:{srv.server_address[1]}/'
    yield serve
    for s in servers: s.shutdown(); s.server_close()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f'no Chromium at {CHROMIUM}: {INSTALL_HINT}', pytrace=False)
    try: from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the Python package playwright is missing: pip install -e ".[dev]" (or ./tools/install.sh)', pytrace=False)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp_path_factory.mktemp('chromium-profile')),
                                                    executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield ctx
        ctx.close()

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site') / '_site'
    t = time.time()
    r = subprocess.run([sys.executable, 'tools/make_site.py', '--out', str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f'make_site.py failed:\n{r.stdout}\n{r.stderr}'
    print(f'\nmake_site.py: {time.time() - t:.1f} s: {r.stdout.strip()}')
    return out

_PAGE_JS = """() => ({
  title: document.title,
  imgs: [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 120), ok: i.complete && i.naturalWidth > 0})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
  tracebacks: [...document.querySelectorAll('.jp-OutputArea-output')]
      .filter(e => e.innerText.includes('Traceback (most recent call last)')).map(e => e.innerText.slice(0, 300)),
  errors: [...document.querySelectorAll('.site-error-output')].map(e => e.innerText.slice(0, 300)),
})"""

def check_site(ctx, base, site_dir, titles=None):
    """Open every .html page under `site_dir` (served at `base`) and return (problems, pages seen).

    titles: {site path: title each page must have}; every path in it must exist."""
    site_dir, problems, seen, ids, wanted = Path(site_dir), [], {}, {}, []
    pages = sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob('*.html'))
    for path in sorted(set(titles or ()) - set(pages)): problems.append(f'{path}: missing (no such page was built)')
    # the site must work offline: anything not served here is refused at once instead of waited for
    ctx.route('**/*', lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
    page = ctx.new_page()
    js_errors = []
    page.on('pageerror', lambda e: js_errors.append(str(e)))
    for path in pages:
        js_errors.clear()
        resp = page.goto(base + path, wait_until='load')
        if resp is None or resp.status != 200:
            problems.append(f'{path}: HTTP {resp.status if resp else "no response"}'); continue
        info = page.evaluate(_PAGE_JS)
        seen[path] = info['title']; ids[path] = set(info['ids'])
        want = (titles or {}).get(path)
        if not info['title'].strip(): problems.append(f'{path}: no <title>')
        elif want is not None and info['title'] != want: problems.append(f'{path}: title {info["title"]!r}, expected {want!r}')
        for img in info['imgs']:
            if not img['ok']:
                hint = ' (not on this site: the site must work offline, so make_site.py must copy or draw it)' \
                    if re.match(r'^[a-z]+://', img['src']) and not img['src'].startswith(base) else ''
                problems.append(f'{path}: image {img["src"]!r} does not render (naturalWidth 0){hint}')
        for t in info['tracebacks']: problems.append(f'{path}: a Python traceback in an output: {t!r}')
        for t in info['errors']: problems.append(f'{path}: an error output: {t!r}')
        for e in js_errors: problems.append(f'{path}: JavaScript error: {e}')
        for href in info['links']:
            if not href.startswith(base): continue
            u = urlsplit(href)
            target = unquote(u.path[len(urlsplit(base).path):])
            if target == '' or target.endswith('/'): target += 'index.html'
            if not (site_dir / target).is_file(): problems.append(f'{path}: broken link {href[len(base):]!r} (no {target})')
            elif u.fragment and target.endswith('.html'): wanted.append((path, target, unquote(u.fragment), href[len(base):]))
    page.close()
    ctx.unroute('**/*')
    for path, target, anchor, href in wanted:
        if target in ids and anchor not in ids[target]:
            problems.append(f'{path}: link {href!r}: {target} has no element with id {anchor!r}')
    return problems, seen

# -- the tests -----------------------------------------------------------------------------------

def test_every_page_in_browser(browser, site, server_for):
    base, titles = server_for(site), expected_pages()
    t = time.time()
    problems, seen = check_site(browser, base, site, titles)
    print(f'browser: {len(seen)} pages in {time.time() - t:.1f} s')
    assert not problems, f'{len(problems)} problems in the site:\n' + '\n'.join(problems)
    assert set(titles) <= set(seen), 'pages not opened'
    # every notebook is in every page's navigation: the index page links to all of them
    index = (site / 'index.html').read_text(encoding='utf-8')
    nav = index[index.index('<nav'):index.index('</nav>')]
    for path in titles: assert f'href="{path}"' in nav, f'index.html: {path} is not in the navigation'

def test_docs_links_and_api_pages(site, server_for):
    "Each module docstring's `Docs:` URL exists on the site; each API page documents every public name."
    base, cfg = server_for(site), get_config(path=ROOT)
    prefix = cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/'
    titles = expected_pages()
    for mod, (url, names) in module_info().items():
        assert url and url.startswith(prefix), f'vikhr_nb/{mod}.py: its docstring has no "Docs: {prefix}..." line'
        rel = url[len(prefix):]
        with urlopen(base + rel) as r:
            assert r.status == 200, f'{url}: HTTP {r.status} on the site'
            md = r.read().decode('utf-8')
        assert rel.endswith('.html.md') and f'# {titles[rel[:-3]]}' in md, f'{url}: not the markdown of {rel[:-3]}'
        api = (site / 'api' / f'{mod}.html').read_text(encoding='utf-8')
        for n in names: assert f'id="{n}"' in api, f'api/{mod}.html does not document vikhr_nb.{mod}.{n}'

def test_check_site_finds_broken_pages(tmp_path, browser, server_for):
    "The checks above can fail: a hand-made page with each fault is caught, and a clean one is not."
    (tmp_path / 'ok.html').write_text('<title>OK</title><p id="here">fine</p><a href="bad.html">x</a>')
    (tmp_path / 'bad.html').write_text(
        '<title>Bad</title><img src="missing.png"><a href="nowhere.html">a</a><a href="ok.html#gone">b</a>'
        '<a href="ok.html#here">c</a><a href="https://example.org/">external, not checked</a>'
        '<div class="jp-OutputArea-output"><pre>Traceback (most recent call last):\n  File "x"</pre></div>'
        '<div class="site-error-output">ZeroDivisionError</div><script>undefined_function()</script>')
    problems, seen = check_site(browser, server_for(tmp_path), tmp_path, {'ok.html': 'OK', 'bad.html': 'Wrong', 'gone.html': 'X'})
    text = '\n'.join(problems)
    for fault in ["bad.html: title 'Bad', expected 'Wrong'", "image 'missing.png'", "broken link 'nowhere.html'",
                  "ok.html has no element with id 'gone'", 'a Python traceback', 'an error output', 'JavaScript error',
                  'gone.html: missing']:
        assert fault in text, f'check_site missed: {fault}\n{text}'
    assert not [p for p in problems if p.startswith('ok.html')] and 'example.org' not in text, text
    assert len(problems) == 8, text

def test_failed_build_keeps_old_site(tmp_path):
    "The site is swapped in whole: a build that fails leaves the previous one untouched and no temporary directory."
    out = tmp_path / '_site'
    out.mkdir(); (out / 'index.html').write_text('previous')
    bad = tmp_path / 'repo'
    shutil.copytree(ROOT, bad, ignore=shutil.ignore_patterns('.git', '_site', '*.egg-info', '__pycache__', 'runs', 'data', 'benchmarks'))
    (bad / 'nbs' / '99_broken.ipynb').write_text('{not json')
    r = subprocess.run([sys.executable, str(bad / 'tools' / 'make_site.py'), '--out', str(out)], cwd=bad, capture_output=True, text=True)
    assert r.returncode != 0, 'make_site.py accepted an unreadable notebook'
    assert 'cannot read nbs/99_broken.ipynb' in r.stderr, f'the error does not name the notebook:\n{r.stderr}'
    assert (out / 'index.html').read_text() == 'previous' and sorted(p.name for p in tmp_path.iterdir()) == ['_site', 'repo']
