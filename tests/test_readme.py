"The README's quick start is what CI runs, and README.md is generated from nbs/index.ipynb."
import re, subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]

def _commands(md):
    return [b.strip() for b in re.findall(r'```bash\n(.*?)```', md, flags=re.S)]

def test_ci_runs_the_readme_test_command():
    readme = (ROOT/'README.md').read_text()
    ci = [l.strip() for l in (ROOT/'.ci'/'run').read_text().splitlines() if l.strip() and not l.startswith(('#', 'set ', 'cd '))]
    cmds = _commands(readme)
    assert len(cmds) >= 2, 'the quick start needs two commands'
    assert ci == [cmds[1]], f'.ci/run runs {ci}, the README says {cmds[1]!r}'
    assert cmds[0].endswith('vikhr demo')

def test_readme_is_generated_from_index():
    sys.path.insert(0, str(ROOT/'tools'))
    import nbformat, make_readme
    expected = make_readme.render(nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4))
    assert (ROOT/'README.md').read_text().endswith(expected), 'README.md is stale: run python tools/make_readme.py'

def test_every_lesson_opens_in_colab_with_a_setup_cell():
    "Each numbered lesson starts with a Colab badge for its own path and a setup cell the tests skip (it clones and installs)."
    import json, tomllib
    repo = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['urls']['Repository'].removeprefix('https://github.com/')
    for p in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        head = [''.join(c['source']) for c in cells[:4]]
        assert any(f'colab.research.google.com/github/{repo}/blob/main/nbs/{p.name})' in s for s in head), f'{p.name}: no Colab badge for its own path'
        setup = next((s for s in head if 'google.colab' in s), '')
        assert setup.startswith('#| eval: false') and f'github.com/{repo}' in setup and 'pip install' in setup, f'{p.name}: no Colab setup cell'
