"""scripts/needle.py: the needle's value reaches the memories only from the step that reads it, in the teacher and
in the RNN; a checkpoint of another dataset, a missing one or a needle with no room before the query get a one-line
error."""
from conftest import TINY, run, user_error


def table(out):
    """The rows of needle.py's table: {t: (teacher sep, rnn sep, teacher flag, rnn flag)}."""
    rows = [l.split() for l in out.splitlines()]
    return {int(r[0]): tuple(map(float, r[1:])) for r in rows if len(r) == 5 and r[0].isdigit()}


def test_needle_reports_where_the_value_enters(tmp_path):
    run(['train_smt.py'] + TINY + ['--dataset=synthetic:retrieval:12', '--context_len=13', '--labels_per_window=13',
                                   '--encoder_type=causal', '--max_iters=2', f'--out_dir={tmp_path}',
                                   '--eval_interval=1000'])
    p = run(['scripts/needle.py', f'--ckpt={tmp_path}/ckpt.pt', '--position=4', '--n_episodes=8'])
    rows = table(p.stdout)
    assert sorted(rows) == [0, 3, 4, 5, 6, 8, 10, 11], p.stdout
    for t in (0, 3, 4):  # before the value is read, nothing depends on it (causal teacher, RNN)
        assert rows[t][:2] == (0.0, 0.0), (t, p.stdout)
    for t in (5, 6, 11):  # from the step that reads it on, both depend on it (untrained models forget nothing)
        assert rows[t][0] > 0 and rows[t][1] > 0, (t, p.stdout)
    assert rows[3][2:] == (0.0, 0.0) and rows[4][2] > 0 and rows[4][3] > 0, p.stdout  # the flag appears at NEEDLE
    assert 'the readout at the query' in p.stdout and 'the write' in p.stdout
    assert 'position' in user_error(['scripts/needle.py', f'--ckpt={tmp_path}/ckpt.pt', '--position=10'])


def test_needle_refuses_other_checkpoints(tmp_path):
    run(['train_smt.py'] + TINY + ['--dataset=synthetic:copy:12', '--context_len=13', '--labels_per_window=13',
                                   '--encoder_type=causal', '--max_iters=1', f'--out_dir={tmp_path}',
                                   '--eval_interval=1000'])
    assert 'retrieval' in user_error(['scripts/needle.py', f'--ckpt={tmp_path}/ckpt.pt'])
    assert 'nope.pt' in user_error(['scripts/needle.py', f'--ckpt={tmp_path}/nope.pt'])
