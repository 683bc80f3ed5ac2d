"""bench.py: a smoke run at tiny lengths times the three modes and prints their rows, the classic mode times the
classic cells beside plain PyTorch models at the configs' sizes; mistakes give one line."""
import ast
import os

import pytest

import configurator
from conftest import ROOT, run, user_error


def test_bench_times_every_mode():
    p = run(['bench.py', '--lengths=8,16', '--labels_per_window=4', '--warmup=0', '--iters=1', '--device=cpu',
             '--backbone=gru', '--label_batch=64', '--bptt_tokens=64'])
    rows = [l.split() for l in p.stdout.splitlines() if l.split()[:1] in (['8'], ['16'])]
    timed = [(r[0], r[1]) for r in rows if 'transitions/s' not in r]
    assert timed == [(T, m) for T in ('8', '16') for m in ('smt-ref', 'smt-many', 'bptt')], p.stdout
    # labels_per_window means what it means in train_smt.py: L labels per window (capped at Tc)
    assert [r[2] for r in rows if r[1] == 'smt-many' and 'transitions/s' not in r] == ['16x4', '16x4']


def test_bench_mistakes_give_one_line_errors():
    assert 'labels_per_window' in user_error(['bench.py', '--labels_per_window=0'])
    assert 'sizes must be one of' in user_error(['bench.py', '--sizes=huge'])


def test_bench_times_the_classic_cells_beside_plain_models():
    """--modes=classic: the project's lstm and gru BPTT steps, each beside the plain nn.LSTM / nn.GRU model of the
    same sizes, and the ratio of their step times."""
    p = run(['bench.py', '--modes=classic', '--lengths=8', '--classic_hidden=16', '--classic_embd=8',
             '--classic_batch=2', '--warmup=0', '--iters=1', '--device=cpu'])
    rows = [l.split() for l in p.stdout.splitlines() if l.split()[:1] == ['8']]
    assert [r[1] for r in rows] == ['lstm', 'nn.LSTM', 'lstm', 'gru', 'nn.GRU', 'gru'], p.stdout
    assert all(r[2:4] == ['2', 'seqs'] and float(r[5]) > 0 for r in rows if r[2] != 'ms/step')
    ratios = [r for r in rows if r[2] == 'ms/step']
    assert [r[5] for r in ratios] == ["nn.LSTM's", "nn.GRU's"] and all(float(r[4][:-1]) > 0 for r in ratios)
    assert 'classic_embd=5' in user_error(['bench.py', '--modes=classic', '--classic_embd=5'])



def test_bench_times_dmt_beside_its_step_loop():
    """--modes=dmt: train_dmt.py's step (dmt_labels of T steps labelled) and the step loop before it (every step),
    taking turns on the same rollouts; both count the rollout's B*T transitions, and the ratio line compares them."""
    p = run(['bench.py', '--modes=dmt', '--lengths=8', '--dmt_batch=2', '--dmt_labels=3', '--warmup=0', '--iters=1',
             '--device=cpu'])
    rows = [l.split() for l in p.stdout.splitlines() if l.split()[:1] == ['8']]
    assert [(r[1], r[2]) for r in rows[:3]] == [('dmt', '2x8'), ('dmt-loop', '2x8'), ('dmt-visit', '2x8')], p.stdout
    assert rows[0][3] == 'r3' and len(rows) == 4 and rows[3][-1] == "8", p.stdout  # ... sweeps 8-8 of 8
    # the bound: the loop's ms/step over the visit's
    assert float(rows[3][10][:-1]) == pytest.approx(float(rows[1][-4]) / float(rows[2][-4]), rel=0.02, abs=0.01), p.stdout
    for r in rows[:3]:  # ... ms/step tokens/s trans/s MFU: trans/s = 16 transitions / (ms/step)
        assert float(r[-2].replace(',', '')) == pytest.approx(16 / float(r[-4]) * 1000, rel=0.02, abs=1)
    assert 'dmt_labels' in user_error(['bench.py', '--modes=dmt', '--dmt_labels=0'])
    assert 'dmt_rollout' in user_error(['bench.py', '--modes=dmt', '--dmt_rollout=jacobi'])

def test_bench_classic_sizes_are_the_configs():
    """The classic rows time config/shakespeare_lstm.py's and config/shakespeare_gru.py's models (at the LSTM's
    batch)."""
    with open(os.path.join(ROOT, 'bench.py')) as f:
        bench = {t.id: n.value.value for n in ast.parse(f.read()).body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    for cell in ('lstm', 'gru'):
        cfg = configurator.load(configurator.defaults_of('train_bptt.py'), [f'config/shakespeare_{cell}.py'])
        assert (cfg['backbone'], cfg['n_rnn_layer'], cfg['readout']) == (cell, 1, 'linear')
        assert (cfg['hidden'], cfg['d_model'], cfg['block_size']) == (bench['classic_hidden'], bench['classic_embd'],
                                                                      256)
        assert cell == 'gru' or cfg['batch_size'] == bench['classic_batch']
