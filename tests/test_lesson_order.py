"A lesson uses only the lessons before it: no notebook reaches into a module whose lesson comes later (a short, named list of exceptions)."
import json, re
from conftest import ROOT

# (lesson, later module): why it may
ALLOWED = {
    ('01_data', 'models'): "the hub check (`hub_reachable`) before streaming a hub dataset, imported where it is called",
    ('07_lep', 'sft'): "propagation needs a second model, and on CPU only the SFT stage (lesson 08) makes one",
    ('05_embeddings', 'focus'): "the error message that says to import the module that registers 'focus'",
    ('06_pretrain', 'sft'): "an error message naming `vikhr_nb.sft.copy_task`",
}
LATER_OK = {'cli'}  # lessons show their own command's --help through the one parser (lesson 12 collects every command)

def lessons():
    nbs = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
    mods = {}
    for p in nbs:
        for c in json.loads(p.read_text())['cells']:
            if m := re.search(r'#\| default_exp (\w+)', ''.join(c['source'])): mods[m.group(1)] = p.stem
    return nbs, mods

def test_lessons_use_only_earlier_lessons():
    nbs, mods = lessons()
    order = {p.stem: i for i, p in enumerate(nbs)}
    bad = set()
    for p in nbs:
        for c in json.loads(p.read_text())['cells']:
            for m in re.finditer(r'(?:from vikhr_nb\.(\w+) import|import vikhr_nb\.(\w+)|vikhr_nb\.(\w+)\.)', ''.join(c['source'])):
                x = next(g for g in m.groups() if g)
                if x in mods and order[mods[x]] > order[p.stem] and x not in LATER_OK and (p.stem, x) not in ALLOWED: bad.add((p.stem, x, mods[x]))
    assert not bad, f'lessons that use a later lesson: {sorted(bad)}'
    assert len(mods) >= 16 and {'spm', 'bpc', 'focus', 'head_fit'} <= set(mods)  # the check sees the lettered lessons too
