"""compare.py: trains each backbone x method under one time budget, scores each run with eval.py, and writes the
table and the JSON; the iteration count comes from eval.py's JSON."""
import json

import pytest

from conftest import TINY_BPTT, run, user_error

TINY_ARGS = ' '.join(a for a in TINY_BPTT if 'block' not in a)


def test_compare_one_run(tiny_data, tmp_path):
    p = run(['compare.py', '--max_time=1', '--backbones=mingru', '--methods=bptt', f'--out_dir={tmp_path}',
             '--eval_seqs=4', '--eval_L=32', f"--args=--dataset={tiny_data} {TINY_ARGS}", '--device=cpu'])
    assert '[1/1] mingru-bptt' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | BPTT |') and 'failed' not in table, table
    (r,) = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert r['iters'] == r['eval']['iter_num'] >= 1 and f"{r['iters']} it)" in table
    assert r['eval']['L'] == 32 and r['eval']['trainer'] == 'bptt'


def test_compare_mistakes_give_one_line_errors(tmp_path):
    assert 'unknown backbone or method' in user_error(['compare.py', '--backbones=rwkv', f'--out_dir={tmp_path}'])
    assert 'max_time must be > 0' in user_error(['compare.py', '--max_time=0', f'--out_dir={tmp_path}'])
    assert 'sweep must look like' in user_error(['compare.py', '--sweep=n_mem', f'--out_dir={tmp_path}'])


@pytest.mark.slow
def test_compare_writes_the_table(tiny_data, tmp_path):
    p = run(['compare.py', '--max_time=1', '--backbones=mlp,mingru', f'--out_dir={tmp_path}', '--eval_seqs=4',
             '--eval_L=32', f"--args=--dataset={tiny_data} {TINY_ARGS}",
             '--device=cpu'])
    assert '[4/4] mingru-bptt' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | SMT | BPTT |') and 'failed' not in table, table
    runs = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert len(runs) == 4 and all(r['eval']['L'] == 32 for r in runs)
