"""SIGINT and SIGTERM stop a trainer without losing work: it finishes its step, saves it, releases the
out_dir lock, says so in one line and exits 128 + the signal number; resuming then gives exactly the losses and the
parameters of an uninterrupted run. Each interrupted run is a fresh interpreter sent a real signal."""
import os
import re
import signal

import pytest
import torch

from checkpoint import StopSignals
from conftest import TINY, TINY_BPTT, TINY_DMT, messages, run, signal_when, start, train_losses

RESUME = 'resume with --init_from=resume'


def interrupted(rc, stderr, sig, out_dir, said='saved {path}'):
    """Check an interrupted run's end (exit code, its one line, no traceback, nothing but ckpt.pt left in out_dir:
    no lock, no temp file); returns the iteration it saved."""
    assert rc == 128 + sig and 'Traceback' not in stderr, stderr
    (line,) = messages(stderr)
    path = f'{out_dir}/ckpt.pt'
    m = re.fullmatch(rf"interrupted by {sig.name} at iter (\d+): {re.escape(said.format(path=path))}; {RESUME}", line)
    assert m, line
    assert sorted(os.listdir(out_dir)) == ['ckpt.pt']
    n = int(m.group(1))
    assert torch.load(path, weights_only=True)['iter_num'] == n
    return n


def test_sigterm_saves_the_last_step_and_the_resume_is_exact(tiny_data, tmp_path):
    # warmup_frac=0 and a constant rate: the schedule does not depend on max_iters, which the resume changes
    common = [f'--dataset={tiny_data}', '--eval_interval=1000', '--lr_decay=constant', '--warmup_frac=0'] + TINY
    cut = tmp_path / 'cut'
    rc, out, err = signal_when(start(['train_smt.py', f'--out_dir={cut}', '--max_iters=100000'] + common), r'^iter 3:',
                               signal.SIGTERM)
    n = interrupted(rc, err, signal.SIGTERM, cut)
    resumed = run(['train_smt.py', f'--out_dir={cut}', f'--max_iters={n + 2}', '--init_from=resume'] + common)
    assert f'resuming from iter {n}' in resumed.stdout and f'note: max_iters 100000 -> {n + 2}' in resumed.stdout
    full = run(['train_smt.py', f'--out_dir={tmp_path / "full"}', f'--max_iters={n + 2}'] + common)
    a, before, after = train_losses(full.stdout), train_losses(out), train_losses(resumed.stdout)
    assert sorted(after) == [n + 1, n + 2] and all(a[i] == after[i] for i in after), (a, after)
    assert all(a[i] == before[i] for i in range(1, n + 1)), (a, before)
    ck_a = torch.load(tmp_path / 'full' / 'ckpt.pt', weights_only=True)
    ck_b = torch.load(cut / 'ckpt.pt', weights_only=True)
    for part in ('rnn', 'teacher'):
        assert all(torch.equal(ck_a[part][k], v) for k, v in ck_b[part].items()), part


def test_sigint_saves_stateful_bptt_lanes_and_the_resume_is_exact(tiny_data, tmp_path):
    """Stateful BPTT: the signal's checkpoint carries each lane's position and memory, gathered as at an eval."""
    common = [f'--dataset={tiny_data}', '--eval_interval=1000', '--backbone=mingru', '--stateful=True',
              '--lr_decay=constant', '--warmup_frac=0', '--reset_prob=0.2'] + TINY_BPTT
    cut = tmp_path / 'cut'
    rc, out, err = signal_when(start(['train_bptt.py', f'--out_dir={cut}', '--max_iters=100000'] + common),
                               r'^iter 3:', signal.SIGINT)
    n = interrupted(rc, err, signal.SIGINT, cut)
    resumed = run(['train_bptt.py', f'--out_dir={cut}', f'--max_iters={n + 3}', '--init_from=resume'] + common)
    full = run(['train_bptt.py', f'--out_dir={tmp_path / "full"}', f'--max_iters={n + 3}'] + common)
    a, b = train_losses(full.stdout), train_losses(resumed.stdout)
    assert sorted(b) == [n + 1, n + 2, n + 3] and all(a[i] == b[i] for i in b), (a, b)
    ck_a = torch.load(tmp_path / 'full' / 'ckpt.pt', weights_only=True)
    ck_b = torch.load(cut / 'ckpt.pt', weights_only=True)
    assert all(torch.equal(ck_a['rnn'][k], v) for k, v in ck_b['rnn'].items())
    assert torch.equal(ck_a['lanes']['pos'], ck_b['lanes']['pos']) and torch.equal(ck_a['lanes']['mem'],
                                                                                    ck_b['lanes']['mem'])


def test_dmt_signal_during_its_first_eval_keeps_the_starting_point(tiny_ckpt, tmp_path):
    """A signal before the first step (here while DMT evaluates and saves its starting point) ends cleanly too: the
    evaluation finishes, the checkpoint it wrote is the one named, nothing is saved twice."""
    out = tmp_path / 'dmt'
    p = start(['train_dmt.py', f'--init_from={tiny_ckpt}/ckpt.pt', f'--out_dir={out}', '--max_iters=100000',
               '--eval_interval=1000'] + TINY_DMT)
    rc, stdout, err = signal_when(p, r'^starting from', signal.SIGTERM)
    assert interrupted(rc, err, signal.SIGTERM, out, said='{path} holds it') == 0
    assert 'eval 0 (dmt' in stdout and 'iter 1:' not in stdout


@pytest.mark.parametrize('resumed, said', [(False, 'interrupted by SIGINT before the first step: nothing was trained '
                                                   'or saved'),
                                           (True, 'interrupted by SIGINT at iter 5, before its first step: {path} is '
                                                  'unchanged; resume with --init_from=resume')])
def test_a_signal_before_the_first_step_saves_nothing(tmp_path, capsys, resumed, said):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = StopSignals(str(tmp_path), resumed)
        os.kill(os.getpid(), signal.SIGINT)  # the handler notes it: no KeyboardInterrupt
        assert stop.requested({'ddp': False})
        with pytest.raises(SystemExit) as e:
            stop.stop(5, 5, lambda: pytest.fail('saved a step that was not trained'), {'ddp': False, 'master': True})
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert e.value.code == 130
    assert capsys.readouterr().err.strip() == said.format(path=tmp_path / 'ckpt.pt')
