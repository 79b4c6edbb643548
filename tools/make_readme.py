"""Generate README.md from nbs/index.ipynb.

nbdev's own `nbdev-readme` needs Quarto, which cannot be installed on offline machines, so this
does the same job in a few lines: cells marked `#| hide` are dropped, `#|` directive lines are
removed, code cells become fenced Python blocks followed by their text output (stdout and results;
stderr such as progress bars is left out).
"""
import sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]

def _directives(src):
    return [l.strip().replace(' ', '') for l in src.splitlines() if l.strip().startswith('#|')]

def _output_text(o):
    if o.get('output_type') == 'stream' and o.get('name') == 'stdout': return o.get('text', '')
    if o.get('output_type') == 'execute_result': return o.get('data', {}).get('text/plain', '')
    return ''

def render(nb) -> str:
    "Markdown for a notebook, README style."
    parts = []
    for c in nb.cells:
        d = _directives(c.source)
        if '#|hide' in d or '#|include:false' in d: continue
        if c.cell_type == 'markdown': parts.append(c.source.strip()); continue
        if c.cell_type != 'code': continue
        src = '\n'.join(l for l in c.source.splitlines() if not l.strip().startswith('#|')).strip('\n')
        if src and '#|echo:false' not in d: parts.append(f'```python\n{src}\n```')
        out = ''.join(_output_text(o) for o in c.get('outputs', [])).rstrip()
        if out: parts.append(f'```\n{out}\n```')
    return '\n\n'.join(parts) + '\n'

def make_readme(nb_path=ROOT/'nbs'/'index.ipynb', out=ROOT/'README.md'):
    nb = nbformat.read(nb_path, as_version=4)
    Path(out).write_text('<!-- Generated from nbs/index.ipynb by tools/make_readme.py: do not edit. -->\n\n' + render(nb), encoding='utf-8')
    return out

if __name__ == '__main__': print(make_readme(*sys.argv[1:2]))
