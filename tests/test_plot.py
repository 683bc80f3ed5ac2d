"""plot.py: eval.py results -> a PNG plot and a markdown table, as a function (compare.py) and as a script."""
import json
import os

from conftest import PNG_MAGIC, ROOT, run


def fake_results():
    out = []
    for trainer, acc in (('smt', [1.0, 0.98, 0.97]), ('bptt', [0.9, 0.6, 0.3])):
        for L, a in zip((64, 128, 256), acc):
            out.append({'trainer': trainer, 'backbone': 'gru', 'dataset': f'synthetic:copy:{L}', 'L': L,
                        'rnn': {'bits': 1 - a, 'acc': a}})
    return out


def test_plot_writes_a_png_and_a_table(tmp_path):
    from plot import plot_results
    table = plot_results(fake_results(), str(tmp_path / 'p.png'))
    assert (tmp_path / 'p.png').read_bytes().startswith(PNG_MAGIC)
    assert '| method | L=64 | L=128 | L=256 |' in table and '| bptt (gru) | 0.900 (0.100) | 0.600' in table
    # bits when accuracy is missing (text, pixels); a swept key found in the config
    rows = [dict(r, rnn={'bits': r['rnn']['bits'], 'acc': None}, config={'n_mem': r['L'] // 32}) for r in fake_results()]
    table = plot_results(rows, str(tmp_path / 'q.png'), x_key='n_mem')
    assert 'bits per target token' in table and 'n_mem=2' in table


def test_plot_script(tmp_path):
    path = tmp_path / 'r.jsonl'
    path.write_text('\n'.join(json.dumps(r) for r in fake_results()))
    p = run([os.path.join(ROOT, 'plot.py'), f'--results={path}'])
    assert (tmp_path / 'r.png').read_bytes().startswith(PNG_MAGIC) and '| smt (gru) |' in (tmp_path / 'r.md').read_text()
    assert 'smt (gru)' in p.stdout
