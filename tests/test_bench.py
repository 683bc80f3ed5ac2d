"""bench.py: a smoke run at tiny lengths times the three modes and prints their rows; mistakes give one line."""
from conftest import run, user_error


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
