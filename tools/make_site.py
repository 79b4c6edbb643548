"""Render the notebooks and the package's API into a static site: `python tools/make_site.py [--out DIR]`.

nbdev renders its docs with Quarto, which cannot be installed on offline machines; this does the
same job with `jupyter nbconvert`. Every notebook under `nbs/` (subfolders included; names starting
with `_` are scratch and skipped) becomes a page named the way nbdev names it (`00_core.ipynb` ->
`core.html`, `tutorials/20_x.ipynb` -> `tutorials/x.html`) from its committed outputs (nothing is
executed), with `NAME.html.md` beside it: the markdown form that the modules' docstrings link to
(`Docs: .../core.html.md`). Each module of the package gets an API page (`api/core.html`) with the
signature, docstring and parameter comments of every public name, linked to the lesson cell that
defines it. Every page has the same sidebar; links are relative, so the site works from disk and
over http. The site is built in a temporary directory beside `--out` and renamed into place, so a
failed build leaves the previous site as it was.
"""
import argparse, ast, copy, dataclasses, html, importlib, inspect, os, re, shutil, sys, tempfile, time
from pathlib import Path, PurePosixPath

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter, MarkdownExporter
from nbdev.config import get_config, nbpath2html
from fastcore.docments import docments

ROOT = Path(__file__).resolve().parents[1]
COLAB_BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'

# -- the pages ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Page:
    path: str            # site-relative, posix: 'core.html', 'tutorials/x.html', 'api/core.html'
    title: str
    group: str           # sidebar section
    nb: object = None    # the notebook (for API pages: built here)
    src: Path = None     # the .ipynb it comes from (None for API pages)

def _directives(src):
    "nbdev's `#| key: value` lines at the top of a cell, as {key: value}."
    d = {}
    for l in src.splitlines():
        if not l.strip(): continue
        if not l.startswith('#|'): break
        k, _, v = l[2:].strip().partition(':') if ':' in l else (l[2:].strip(), '', '')
        parts = k.split(None, 1)
        if not parts: continue
        d[parts[0].strip()] = (v.strip() or (parts[1].strip() if len(parts) > 1 else ''))
    return d

def _strip_directives(src):
    lines = src.splitlines()
    while lines and (lines[0].startswith('#|') or not lines[0].strip()): lines.pop(0)
    return '\n'.join(lines)

def nb_title(nb, default):
    "The notebook's `# Title` (first markdown cell), else `default`."
    for c in nb.cells:
        if c.cell_type != 'markdown': continue
        m = re.search(r'^#\s+(.+?)\s*#*\s*$', c.source, re.M)
        return m.group(1).strip() if m else default
    return default

def find_notebooks(nbs):
    "Every notebook under `nbs` in reading order: index, then the numbered lessons, then each subfolder's."
    nbs = Path(nbs)
    found = [p for p in nbs.rglob('*.ipynb')
             if not any(part.startswith(('_', '.')) for part in p.relative_to(nbs).parts)]
    def key(p):
        rel = p.relative_to(nbs)
        return (len(rel.parts) > 1, str(rel.parent), p.name != 'index.ipynb', p.name)
    return sorted(found, key=key)

def _read_nb(p, root):
    try: return nbformat.read(p, as_version=4)
    except Exception as e:
        raise SystemExit(f'make_site.py: cannot read {Path(p).relative_to(root)}: {type(e).__name__}: {e}') from e

def _group(rel):
    return 'Lessons' if len(rel.parts) == 1 else ' / '.join(s.replace('_', ' ').title() for s in rel.parts[:-1])

# -- notebook cells: nbdev's directives, anchors, links ----------------------------------------

def _defined_names(src):
    "Anchors nbdev gives what a cell defines (`core.html#cache_dir`, `#trainconfig.method`)."
    try: tree = ast.parse(src)
    except SyntaxError: return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            cls = None
            if any(getattr(d, 'id', getattr(getattr(d, 'func', None), 'id', None)) == 'patch' for d in node.decorator_list):
                ann = node.args.args[0].annotation if node.args.args else None
                cls = getattr(ann, 'id', None)
            names.append(f'{cls}.{node.name}' if cls else node.name)
        elif isinstance(node, ast.ClassDef):
            names.append(node.name)
            names += [f'{node.name}.{n.name}' for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [n.lower() for n in names]

_MD_LINK = re.compile(r'(!?)\[((?:[^\]\\]|\\.)*)\]\(\s*<?([^)\s>]+)>?(\s+"[^"]*")?\s*\)')
_HTML_LINK = re.compile(r'\b(href|src)=(["\'])([^"\']+)\2')

class Site:
    def __init__(self, root=ROOT, out=None):
        self.root = Path(root)
        self.cfg = get_config(path=self.root)
        self.nbs = Path(self.cfg.nbs_path)
        self.lib = Path(self.cfg.lib_path)
        self.out = out
        self.pages, self.by_src, self.warnings, self.copied = [], {}, [], set()
        self.anchors = {}  # page path -> set of anchors made for defined names

    def warn(self, msg):
        self.warnings.append(msg)
        print(f'make_site.py: warning: {msg}', file=sys.stderr)

    def collect(self):
        for p in find_notebooks(self.nbs):
            rel = p.relative_to(self.nbs)
            nb = _read_nb(p, self.root)
            page = Page(nbpath2html(rel).as_posix(), nb_title(nb, p.stem), _group(rel), nb, p)
            if page.path in [q.path for q in self.pages]:
                raise SystemExit(f'make_site.py: {rel} and another notebook both become {page.path}: rename one')
            if page.title == p.stem: self.warn(f'{rel} has no "# Title" in its first markdown cell')
            self.pages.append(page); self.by_src[p.resolve()] = page
        for mod, nb_path in self.modules():
            self.pages.append(Page(f'api/{mod}.html', f'{self.cfg.lib_name}.{mod}', 'API', None, None))
            self.pages[-1].module, self.pages[-1].lesson = mod, self.by_src.get(nb_path)

    def modules(self):
        "(module, its notebook) for every module of the package, in notebook order."
        exp = {}
        for p in find_notebooks(self.nbs):
            for c in _read_nb(p, self.root).cells:
                m = re.search(r'^#\|\s*default_exp\s+(\S+)', c.source, re.M) if c.cell_type == 'code' else None
                if m: exp.setdefault(m.group(1), p.resolve())
        mods = [f.stem for f in sorted(self.lib.glob('*.py')) if not f.name.startswith('_')]
        order = {m: i for i, m in enumerate(exp)}
        return [(m, exp.get(m)) for m in sorted(mods, key=lambda m: (order.get(m, len(order)), m))]

    # links and images inside markdown, relative to the notebook they are in
    def _rewrite_url(self, url, page, is_img, md):
        if url == COLAB_BADGE: return self._rel('assets/colab-badge.svg', page)
        if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:', url) or url.startswith(('#', '/')): return url
        path, _, anchor = url.partition('#')
        target = (page.src.parent / path).resolve()
        if target in self.by_src:
            new = self._rel(self.by_src[target].path + ('.md' if md else ''), page)
            return new + (f'#{anchor}' if anchor else '')
        if not target.exists():
            self.warn(f'{page.src.relative_to(self.nbs)}: link to {url}, which does not exist'); return url
        try: repo_rel = target.relative_to(self.root).as_posix()
        except ValueError:
            self.warn(f'{page.src.relative_to(self.nbs)}: link to {url}, outside the repository'); return url
        if is_img or target.suffix.lower() in ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'):
            dest = f'files/{repo_rel}'
            if dest not in self.copied:
                (self.out / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(target, self.out / dest); self.copied.add(dest)
            return self._rel(dest, page) + (f'#{anchor}' if anchor else '')
        # any other file of the repository (a README, a config): its page on the forge
        kind = 'tree' if target.is_dir() else 'blob'
        return f'{self.cfg.git_url}/{kind}/{self.cfg.branch}/{repo_rel}' + (f'#{anchor}' if anchor else '')

    def _rewrite_links(self, src, page, md):
        src = _MD_LINK.sub(lambda m: f'{m[1]}[{m[2]}]({self._rewrite_url(m[3], page, bool(m[1]), md)}{m[4] or ""})', src)
        return _HTML_LINK.sub(lambda m: f'{m[1]}={m[2]}{self._rewrite_url(m[3], page, m[1] == "src", md)}{m[2]}', src)

    @staticmethod
    def _rel(target, page):
        "`target` (site-relative) as a link from `page`."
        return os.path.relpath(target, PurePosixPath(page.path).parent.as_posix() or '.').replace(os.sep, '/')

    def prepare(self, page, md=False):
        "The notebook as the site shows it: nbdev's hide/echo/output directives applied, links rewritten."
        nb = copy.deepcopy(page.nb)
        cells, anchors = [], self.anchors.setdefault(page.path, set())
        for c in nb.cells:
            d = _directives(c.source) if c.cell_type == 'code' else {}
            if 'hide' in d or d.get('include', '').lower() == 'false': continue
            if c.cell_type == 'markdown' and page.src is not None:
                c.source = self._rewrite_links(c.source, page, md)
            if c.cell_type == 'code':
                if d.get('echo', '').lower() == 'false': c.metadata['transient'] = {'remove_source': True}
                if d.get('output', '').lower() == 'false': c.outputs = []
                if {'export', 'exports'} & set(d):
                    names = [n for n in _defined_names(_strip_directives(c.source)) if n not in anchors]
                    c.metadata['site_anchors'] = names; anchors.update(names)
                c.source = _strip_directives(c.source)
                if not c.source.strip() and not c.outputs: continue  # a cell of directives only (`#| default_exp`)
            cells.append(c)
        nb.cells = cells
        nb.metadata['title'] = page.title
        nb.metadata.pop('widgets', None)  # widget state is not saved (nbdev-clean): show the text fallback
        return nb

    # -- API pages ---------------------------------------------------------------------------------
    def api_notebook(self, page):
        try: mod = importlib.import_module(f'{self.cfg.lib_name}.{page.module}')
        except Exception as e:
            raise SystemExit(f'make_site.py: cannot import {self.cfg.lib_name}.{page.module} for its API page: '
                             f'{type(e).__name__}: {e}') from e
        lesson = page.lesson
        doc = inspect.getdoc(mod) or ''
        summary = re.sub(r'\n*Docs: \S+\s*$', '', doc).strip()
        src_url = f'{self.cfg.git_url}/blob/{self.cfg.branch}/{self.cfg.lib_name}/{page.module}.py'
        head = [f'# {page.title}', '', f'> {summary}' if summary else '', '']
        links = [f'The lesson: [{html.escape(lesson.title)}]({self._rel(lesson.path, page)})'] if lesson else []
        links.append(f'Source: [{self.cfg.lib_name}/{page.module}.py]({src_url})')
        head.append(' · '.join(links))
        cells = [nbformat.v4.new_markdown_cell('\n'.join(head))]
        names = [n for n in getattr(mod, '__all__', []) if not n.startswith('_')]
        if not names: self.warn(f'{self.cfg.lib_name}.{page.module} exports nothing (__all__ is empty)')
        for name in names:
            obj = getattr(mod, name)
            cells.append(nbformat.v4.new_markdown_cell(self.symbol_md(name, obj, page, src_url, mod)))
        return nbformat.v4.new_notebook(cells=cells, metadata={'title': page.title})

    def _lesson_link(self, name, page):
        lesson = page.lesson
        if lesson is None: return ''
        a = name.lower()
        anchor = f'#{a}' if a in self.anchors.get(lesson.path, ()) else ''
        return f'[in the lesson]({self._rel(lesson.path, page)}{anchor})'

    def symbol_md(self, name, obj, page, src_url, mod, level=3):
        out = [f'{"#" * level} {_md_escape(name)}', '']
        links = [self._lesson_link(name, page)]
        if inspect.isfunction(obj) or inspect.isclass(obj):
            try: links.append(f'[source]({src_url}#L{inspect.getsourcelines(obj)[1]})')
            except (OSError, TypeError): pass
        links = [l for l in links if l]
        if not (inspect.isroutine(obj) or inspect.isclass(obj)):
            r = repr(obj)
            out += [f'```python\n{name} = {r if len(r) <= 300 else r[:300] + " ..."}\n```', '']
            if links: out.append(' · '.join(links))
            return '\n'.join(out)
        out += [f'```python\n{_signature(name, obj)}\n```', '']
        doc = inspect.getdoc(obj) if (inspect.isclass(obj) or obj.__doc__) else None
        if doc and not (inspect.isclass(obj) and doc == inspect.getdoc(obj.__mro__[1]) and obj.__doc__ is None):
            out += [_prose(doc), '']
        table = _param_table(obj)
        if table: out += [table, '']
        if links: out.append(' · '.join(links))
        if inspect.isclass(obj) and level == 3:
            for mname, m in vars(obj).items():
                if mname.startswith('_') or not (inspect.isfunction(m) or isinstance(m, (staticmethod, classmethod, property))): continue
                f = m.fget if isinstance(m, property) else getattr(m, '__func__', m)
                if getattr(f, '__module__', None) != mod.__name__: continue
                if isinstance(m, property):
                    out += ['', f'#### {_md_escape(name)}.{_md_escape(mname)} (property)', '', _prose(inspect.getdoc(f) or '')]
                else:
                    out += ['', self.symbol_md(f'{name}.{mname}', f, page, src_url, mod, level=4)]
        return '\n'.join(out)

    # -- writing ---------------------------------------------------------------------------------
    def nav(self, page):
        parts, group = ['<nav class="site-nav">',
                        f'<a class="site-home" href="{self._rel("index.html", page)}">{html.escape(self.cfg.lib_name)}</a>'], None
        for p in self.pages:
            if p.group != group:
                if group is not None: parts.append('</ul>')
                parts.append(f'<h4>{html.escape(p.group)}</h4><ul>'); group = p.group
            cur = ' class="current" aria-current="page"' if p is page else ''
            label = p.title if p.group != 'API' else p.module
            parts.append(f'<li><a href="{self._rel(p.path, page)}"{cur}>{html.escape(label)}</a></li>')
        parts.append('</ul></nav>')
        return '\n'.join(parts)

    def write_page(self, page, html_exp, md_exp):
        dest = self.out / page.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        nb_html, nb_md = (self.prepare(page), self.prepare(page, md=True)) if page.src else (self.api_notebook(page),) * 2
        footer = (f'Generated from <a href="{self.cfg.git_url}/blob/{self.cfg.branch}/{page.src.relative_to(self.root).as_posix()}">'
                  f'{html.escape(page.src.relative_to(self.root).as_posix())}</a>' if page.src else
                  f'Generated from the docstrings of {html.escape(page.title)}')
        body, _ = html_exp.from_notebook_node(nb_html, resources={'site_nav': self.nav(page), 'site_css': SITE_CSS,
                                                                  'site_footer': footer})
        dest.write_text(body, encoding='utf-8')
        stem = PurePosixPath(page.path).stem
        md, res = md_exp.from_notebook_node(nb_md, resources={'output_files_dir': f'{stem}_files', 'unique_key': stem})
        for name, data in res.get('outputs', {}).items():
            (dest.parent / name).parent.mkdir(parents=True, exist_ok=True)
            (dest.parent / name).write_bytes(data)
        Path(f'{dest}.md').write_text(md, encoding='utf-8')

    def build(self):
        self.collect()
        (self.out / 'assets').mkdir(parents=True, exist_ok=True)
        (self.out / 'assets' / 'colab-badge.svg').write_text(COLAB_SVG, encoding='utf-8')
        (self.out / '.nojekyll').write_text('')
        html_exp = HTMLExporter(template_name='lab', extra_loaders=[DictLoader({'site.html.j2': TEMPLATE})],
                                exclude_input_prompt=True, exclude_output_prompt=True)
        html_exp.template_file = 'site.html.j2'
        md_exp = MarkdownExporter()
        # lessons first: the API pages link to the anchors the lessons made
        for page in sorted(self.pages, key=lambda p: p.group == 'API'):
            t = time.time(); self.write_page(page, html_exp, md_exp)
            if os.environ.get('MAKE_SITE_TIMES'): print(f'{page.path}: {time.time() - t:.1f} s', file=sys.stderr)
        return self.pages

# -- API page helpers ------------------------------------------------------------------------------

def _md_escape(s): return re.sub(r'([_*\\`\[\]<>])', r'\\\1', s)

def _prose(doc):
    "A docstring as markdown: `<` outside code spans escaped so it is not read as HTML."
    return ''.join(p if p.startswith('`') else p.replace('<', '&lt;') for p in re.split(r'(`[^`]*`)', doc))

def _anno(a):
    if a in (None, inspect.Parameter.empty): return ''
    return a if isinstance(a, str) else inspect.formatannotation(a)

class _Shown:
    "A default value shown as the expression that makes it."
    def __init__(self, r): self.r = r
    def __repr__(self): return self.r

def _factory_default(obj, p):
    "A dataclass field's `default_factory` default shown by value (`[]`), where inspect shows `<factory>`."
    f = {f.name: f for f in dataclasses.fields(obj)}.get(p.name) if inspect.isclass(obj) and dataclasses.is_dataclass(obj) else None
    if f is None or f.default_factory is dataclasses.MISSING: return p.default
    try: return _Shown(repr(f.default_factory()))
    except Exception: return p.default

def _param(p):
    "One parameter as it reads in source: `name: anno = default` (string annotations unquoted)."
    s = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '') + p.name
    anno = _anno(p.annotation)
    if anno: s += f': {anno}'
    if p.default is not p.empty: s += (' = ' if anno else '=') + repr(p.default)
    return s

def _signature(name, obj):
    kind = 'class' if inspect.isclass(obj) else ('async def' if inspect.iscoroutinefunction(obj) else 'def')
    bases = ', '.join(b.__name__ for b in getattr(obj, '__bases__', ()) if b is not object)
    if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) and all('__init__' not in vars(c) for c in obj.__mro__ if c.__module__ != 'builtins'):
        return f'class {name}({bases})' if bases else f'class {name}'  # no constructor of its own to show
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return f'{kind} {name}(...)'
    params, ps = [], [p.replace(default=_factory_default(obj, p)) for p in sig.parameters.values()]
    for i, p in enumerate(ps):
        if p.kind is p.KEYWORD_ONLY and (i == 0 or ps[i - 1].kind not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)): params.append('*')
        params.append(_param(p))
        if p.kind is p.POSITIONAL_ONLY and (i == len(ps) - 1 or ps[i + 1].kind is not p.POSITIONAL_ONLY): params.append('/')
    ret = '' if sig.return_annotation is inspect.Signature.empty else f' -> {_anno(sig.return_annotation)}'
    one = f'{kind} {name}({", ".join(params)}){ret}'
    return one if len(one) <= 88 else f'{kind} {name}(\n' + ''.join(f'    {p},\n' for p in params) + f'){ret}'

def _cell(s): return str(s).replace('|', '\\|').replace('\n', ' ')

def _param_table(obj):
    "Parameters with their trailing-comment docs (fastcore's docments), as a markdown table."
    try: docs = docments(obj, full=True)
    except Exception: return ''
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): sig = None
    # types as written in the signature (docments guesses one from the default when there is none)
    params = {p.name: p.replace(default=_factory_default(obj, p)) for p in sig.parameters.values()} if sig else {}
    annos = {n: p.annotation for n, p in params.items()}
    if sig: annos['return'] = sig.return_annotation
    rows = []
    for p, d in docs.items():
        if p in ('self', 'cls'): continue
        doc, default = d.get('docment'), d.get('default', inspect.Parameter.empty)
        if p == 'return':
            if doc: rows.append(('**returns**', _anno(annos.get('return', d.get('anno'))), '', doc))
            continue
        if p in params: default = params[p].default
        dflt = '' if default is inspect.Parameter.empty else repr(default)
        rows.append((f'`{p}`', _anno(annos.get(p, d.get('anno'))), f'`{dflt}`' if dflt else '', doc or ''))
    if not rows or not any(r[3] for r in rows): return ''
    lines = ['| Parameter | Type | Default | Details |', '|---|---|---|---|']
    lines += ['| ' + ' | '.join([_cell(r[0]), f'`{_cell(r[1])}`' if r[1] else '', _cell(r[2]), _cell(_prose(r[3]))]) + ' |' for r in rows]
    return '\n'.join(lines)

# -- look ------------------------------------------------------------------------------------------

TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_css -%}<style type="text/css">{{ resources.site_css }}</style>{%- endblock html_head_css -%}
{%- block body_header -%}
<body class="jp-Notebook site-page" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.site_nav }}
<main class="site-main">
{%- endblock body_header -%}
{% block codecell %}{% for a in cell.metadata.get('site_anchors', []) %}<a class="site-anchor" id="{{ a }}"></a>{% endfor %}{{ super() }}{% endblock codecell %}
{% block error %}<div class="site-error-output">{{ super() }}</div>{% endblock error %}
{% block body_footer %}
<footer class="site-footer">{{ resources.site_footer }}</footer>
</main>
</body>
{% endblock body_footer %}
"""

SITE_CSS = """
body.site-page { margin: 0; }
.site-nav { position: fixed; top: 0; left: 0; bottom: 0; width: 240px; overflow-y: auto; box-sizing: border-box;
  padding: 1rem 1rem 2rem; background: #f6f7f9; border-right: 1px solid #dde1e6;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
.site-nav .site-home { display: block; font-size: 1.25rem; font-weight: 700; color: #1f2328; text-decoration: none; margin-bottom: .5rem; }
.site-nav h4 { margin: 1rem 0 .3rem; font-size: .75rem; text-transform: uppercase; letter-spacing: .06em; color: #6a737d; }
.site-nav ul { list-style: none; margin: 0; padding: 0; }
.site-nav li a { display: block; padding: .15rem .5rem; border-radius: 4px; color: #0b57d0; text-decoration: none; }
.site-nav li a:hover { background: #e8ebef; }
.site-nav li a.current { background: #dbe7fb; color: #1f2328; font-weight: 600; }
main.site-main { margin-left: 240px; max-width: 1100px; padding: 1rem 2rem 3rem; box-sizing: border-box; }
.site-anchor { display: block; position: relative; top: -1rem; visibility: hidden; }
.site-footer { margin-top: 3rem; padding-top: .5rem; border-top: 1px solid #dde1e6; color: #6a737d; font-size: .85rem; }
.jp-RenderedMarkdown table { border-collapse: collapse; margin-left: 0; }
.jp-RenderedMarkdown .highlight pre { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px; padding: .5rem .75rem;
  overflow-x: auto; margin-bottom: .75rem; }
.jp-RenderedMarkdown td, .jp-RenderedMarkdown th { vertical-align: top; }
@media (max-width: 800px) {
  .site-nav { position: static; width: auto; border-right: 0; border-bottom: 1px solid #dde1e6; }
  main.site-main { margin-left: 0; padding: 1rem; }
}
"""

# An "Open in Colab" badge drawn here, so that pages show it offline too (the link still goes to Colab).
COLAB_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<title>Open in Colab</title><rect width="117" height="20" rx="3" fill="#555"/><rect x="22" width="95" height="20" rx="3" fill="#f9ab00"/>
<rect x="22" width="6" height="20" fill="#f9ab00"/><circle cx="8" cy="10" r="4.5" fill="none" stroke="#f9ab00" stroke-width="2.2"/>
<circle cx="15" cy="10" r="4.5" fill="none" stroke="#e8710a" stroke-width="2.2"/>
<text x="69" y="14" fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">Open in Colab</text></svg>
"""

# -- atomic build ----------------------------------------------------------------------------------

def make_site(out=ROOT / '_site', root=ROOT):
    "Build the site into `out`, replacing what is there only once the whole build has succeeded."
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.tmp-', dir=out.parent))
    try:
        tmp.chmod(0o755)
        site = Site(root, tmp)
        pages = site.build()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True); raise
    old = None
    if out.exists():
        old = out.with_name(f'.{out.name}.old-{os.getpid()}')
        os.rename(out, old)
    try: os.rename(tmp, out)
    except BaseException:
        if old: os.rename(old, out)
        shutil.rmtree(tmp, ignore_errors=True); raise
    if old: shutil.rmtree(old, ignore_errors=True)
    return pages, site.warnings

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=str(ROOT / '_site'), help='where the site goes (default: _site/ in the repository)')
    args = ap.parse_args(argv)
    t = time.time()
    pages, warnings = make_site(args.out)
    n_api = sum(p.group == 'API' for p in pages)
    print(f'make_site.py: {len(pages)} pages ({len(pages) - n_api} notebooks, {n_api} API) in {args.out} '
          f'in {time.time() - t:.1f} s' + (f', {len(warnings)} warnings' if warnings else ''))

if __name__ == '__main__': main()
