"""Nothing lost, nothing silent: every bad value, file or checkpoint is one line of error and a non-zero exit before
anything in out_dir changes; a diverging run stops and keeps the last good checkpoint; two runs cannot share an
out_dir. Each case runs the script as a user would, in a subprocess. (Longer than the other test files: every user
mistake the scripts answer is listed here, one table, so that a new one is added beside its kind.)"""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import TINY, TINY_BPTT, TINY_DMT, run

SMT, BPTT, DMT = 'smt', 'bptt', 'dmt'  # which checkpoint the case's out_dir holds before the run (None: empty)


@pytest.fixture(scope='module')
def bptt_small(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('bptt_small')
    run(['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=2', '--eval_interval=2']
        + TINY_BPTT)
    return str(out)


@pytest.fixture(scope='module')
def dmt_small(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp('dmt_small')
    run(['train_dmt.py', f'--init_from={tiny_ckpt}/ckpt.pt', f'--out_dir={out}', '--max_iters=2', '--eval_interval=2']
        + TINY_DMT)
    return str(out)


def snapshot(folder):
    """Every file in folder with its size, mtime and content hash."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, 'rb') as f:
            out[name] = (os.path.getsize(path), os.stat(path).st_mtime_ns, hashlib.sha1(f.read()).hexdigest())
    return out


def one_line_error(args):
    """Run args; the run must fail with exactly one 'error: ' line (the last line of stderr) and no traceback."""
    p = run(args, check=False)
    assert p.returncode != 0, p.stdout[-2000:]
    assert 'Traceback' not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert lines and lines[-1].startswith('error: '), p.stderr
    assert sum(l.startswith('error: ') for l in lines) == 1, p.stderr
    return lines[-1]


class _Slow(tuple):
    pass


def slow(*case):
    """A case that repeats a kind of rule another case already covers: run with `pytest -m slow`."""
    return _Slow(case)


class RunsAShellCommand:
    """Unpickling this runs `touch PATH`: what a hostile checkpoint or metadata file does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


def out_dir_with(kind, tmp_path, tiny_ckpt, bptt_small, dmt_small=None):
    """tmp_path/out holding a checkpoint of a kind; 'code': one whose loading would create tmp_path/ran."""
    out = tmp_path / 'out'
    out.mkdir()
    if kind == 'code':
        torch.save({'iter_num': 6, 'config': {}, 'rnn': RunsAShellCommand(tmp_path / 'ran')}, out / 'ckpt.pt')
    elif kind in (SMT, BPTT, DMT):
        shutil.copy(os.path.join({SMT: tiny_ckpt, BPTT: bptt_small, DMT: dmt_small}[kind], 'ckpt.pt'), out / 'ckpt.pt')
    elif kind == 'empty':
        (out / 'ckpt.pt').write_bytes(b'')
    elif kind == 'random':
        (out / 'ckpt.pt').write_bytes(os.urandom(3000))
    return out


CASES = [  # (script, extra args, what the out_dir holds, a part of the message); slow(...): a repeated kind of rule
    # values that ended in a traceback or were reported as something else
    ('train_smt.py', ['--learning_rate=-1'], SMT, 'learning_rate=-1.0: must be >= 0.0'),
    slow('train_smt.py', ['--n_head=0'], SMT, 'n_head=0: must be >= 1'),
    slow('train_smt.py', ['--eval_interval=0'], SMT, 'eval_interval=0: must be >= 1'),
    slow('train_smt.py', ['--log_interval=0'], SMT, 'log_interval=0: must be >= 1'),
    ('train_smt.py', ['--lr_decay=linear'], SMT, 'lr_decay=linear: not a valid choice; use one of constant, cosine'),
    slow('train_smt.py', ['--dtype=float64'], SMT, 'dtype=float64: not a valid choice'),
    ('train_smt.py', ['--device=gpu'], SMT, 'device=gpu: not a device'),
    ('train_smt.py', ['--drift_steps=1,x'], SMT, 'drift_steps=1,x: must be comma-separated integers'),
    slow('train_smt.py', ['--eval_windows=0'], SMT, 'eval_windows=0: must be >= 1'),
    slow('train_smt.py', ['--eval_seq_len=0'], SMT, 'eval_seq_len=0: must be >= 1'),
    slow('train_smt.py', ['--batch_size=-2'], SMT, 'batch_size=-2: must be >= 1'),
    ('train_bptt.py', ['--batch_size=-2'], BPTT, 'batch_size=-2: must be >= 1'),
    slow('train_bptt.py', ['--n_head=0'], BPTT, 'n_head=0: must be >= 1'),
    # values that silently did nothing or the wrong thing
    slow('train_smt.py', ['--gradient_accumulation_steps=0'], SMT, 'gradient_accumulation_steps=0: must be >= 1'),
    ('train_smt.py', ['--max_iters=0'], SMT, 'max_iters=0: nothing to train'),
    ('train_bptt.py', ['--max_iters=0'], BPTT, 'max_iters=0: nothing to train'),
    slow('train_smt.py', ['--compile=maybe'], SMT, 'compile=maybe: not a valid choice; use one of auto, True, False'),
    slow('train_smt.py', ['--LOG2E=1.0'], SMT, "unknown config key 'LOG2E'"),
    slow('train_smt.py', ['--init_from='], SMT, 'init_from=: not a valid choice; use one of scratch, resume, auto'),
    # the keys of the banded teacher, decoded labels, stateful BPTT and the linear readout
    slow('train_smt.py', ['--band=-1'], SMT, 'band=-1: must be >= 0'),
    ('train_smt.py', ['--band=4'], SMT, 'band=4: needs --encoder_type=causal'),
    slow('train_smt.py', ['--decoded_labels=1'], SMT, 'decoded_labels=1: needs --encoder_type=causal'),
    ('train_smt.py', ['--encoder_type=causal', '--labels_per_window=4', '--decoded_labels=5'], SMT,
     'decoded_labels=5: must be in [0, labels_per_window=4]'),
    ('train_smt.py', ['--encoder_type=causal', '--labels_per_window=4', '--dyn_labels=5'], SMT,
     'dyn_labels=5: must be in [0, labels_per_window=4]'),
    slow('train_smt.py', ['--dyn_labels=1'], SMT, 'dyn_labels=1: needs --encoder_type=causal'),
    ('train_bptt.py', ['--reset_prob=1.5'], BPTT, 'reset_prob=1.5: must be in [0.0, 1.0]'),
    ('train_bptt.py', ['--readout=mlp'], BPTT, 'readout=mlp: not a valid choice; use one of decoder, linear'),
    ('train_bptt.py', ['--hidden=64'], None, "hidden=64: sizes a recurrent cell (gru, lstm, mingru), not backbone "
                                             "'transformer'"),
    slow('train_bptt.py', ['--hidden=5', '--backbone=gru'], None, 'hidden=5: gru\'s 5 state numbers do not fill whole '
                                                                 'memory tokens of d_model=32'),
    slow('train_bptt.py', ['--stateful=maybe'], BPTT, "config key 'stateful'"),
    ('train_bptt.py', ['--init_from=resume', '--stateful=True'], BPTT, 'stateful: False in the checkpoint, True given'),
    # train_dmt.py (its own table)
    slow('train_dmt.py', ['--max_iters=-1'], None, 'max_iters=-1: must be >= 0'),
    ('train_dmt.py', ['--max_iters=0'], None, 'max_iters=0: nothing to train'),
    ('train_dmt.py', ['--label_every=0'], None, 'label_every=0: must be in [1, rollout_len=24]'),
    slow('train_dmt.py', ['--start=middle'], None, 'start=middle: not a valid choice; use one of encoder, initial, '
                                                   'both'),
    slow('train_dmt.py', ['--w_mse=-1'], None, 'w_mse=-1.0: must be >= 0.0'),
    slow('train_dmt.py', ['--learning_rate=-1'], DMT, 'learning_rate=-1.0: must be >= 0.0'),
    slow('train_dmt.py', ['--init_from='], None, 'init_from=: is empty'),
    ('train_dmt.py', ['--overwrite=False'], DMT, 'already holds a checkpoint (iteration 2 of train_dmt.py); continue '
                                                 'it with --init_from=resume, replace it with --overwrite=True'),
    ('train_dmt.py', ['--init_from=resume'], SMT, 'was made by train_smt.py (smt checkpoint); resume it with '
                                                  'train_smt.py'),
    ('train_dmt.py', ['--init_from=resume', '--max_iters=1'], DMT, 'max_iters=1 is below the iteration of'),
    slow('train_dmt.py', ['--init_from=resume'], 'random', 'is corrupted or not a checkpoint'),
    ('train_dmt.py', ['--rollout_len=100000', '--label_every=1'], None, 'the train split of the data has'),
    ('train_bptt.py', ['--init_from=scratc'], BPTT, 'init_from=scratc: not a valid choice'),
    # two runs, one out_dir; checkpoints
    ('train_smt.py', ['--init_from=scratch'], SMT, 'already holds a checkpoint (iteration 6 of train_smt.py); continue '
                                                   'it with --init_from=resume, replace it with --overwrite=True'),
    slow('train_bptt.py', ['--init_from=scratch'], BPTT, 'already holds a checkpoint (iteration 2 of train_bptt.py)'),
    ('train_smt.py', ['--init_from=resume'], BPTT, 'was made by train_bptt.py (bptt checkpoint); resume it with '
                                                   'train_bptt.py'),
    slow('train_bptt.py', ['--init_from=resume'], SMT, 'was made by train_smt.py (smt checkpoint); resume it '
                                                       'with train_smt.py'),
    ('train_smt.py', ['--init_from=resume'], DMT, 'was made by train_dmt.py (dmt checkpoint); resume it with '
                                                  'train_dmt.py'),
    ('train_smt.py', ['--init_from=resume', '--d_model=64'], SMT, 'd_model: 32 in the checkpoint, 64 given; resume '
                                                                  'with --d_model=32'),
    slow('train_bptt.py', ['--init_from=resume', '--n_mem=4'], BPTT, 'n_mem: 2 in the checkpoint, 4 given'),
    ('train_smt.py', ['--init_from=resume'], 'empty', 'is empty (0 bytes): corrupted or not a checkpoint'),
    ('train_smt.py', ['--init_from=resume'], 'random', 'is corrupted or not a checkpoint'),
    ('train_smt.py', ['--init_from=resume', '--max_iters=3'], SMT, 'max_iters=3 is below the iteration of'),
    ('train_smt.py', ['--init_from=resume'], None, 'no checkpoint at'),
    # data too short for a window: the split and the key are named
    ('train_smt.py', ['--eval_seq_len=100000'], None, 'fewer than one window of 100000 (eval_seq_len); lower '
                                                      'eval_seq_len'),
    slow('train_bptt.py', ['--block_size=100000'], None, 'the train split of the data has'),
    # sample.py
    ('sample.py', ['--num_samples=0'], SMT, 'num_samples=0: must be >= 1'),
    slow('sample.py', ['--top_k=-1'], SMT, 'top_k=-1: must be >= 0'),
    slow('sample.py', ['--max_new_tokens=-1'], SMT, 'max_new_tokens=-1: must be >= 0'),
    ('sample.py', ['--start=FILE:no/such/prompt.txt'], SMT, 'start=FILE:no/such/prompt.txt: no such file'),
    slow('sample.py', [], 'random', 'is corrupted or not a checkpoint'),
    # a resume that would not continue exactly: the key is named, --allow_changes=True overrides
    ('train_smt.py', ['--init_from=resume', '--learning_rate=0.5'], SMT, 'ckpt.pt was trained with '
     'learning_rate=0.003, 0.5 given; resume with --learning_rate=0.003, or pass --allow_changes=True to change it'),
    ('train_bptt.py', ['--init_from=resume', '--seed=2', '--batch_size=4'], BPTT, 'ckpt.pt was trained with '
     'batch_size=8 (4 given), seed=1337 (2 given); resume with --batch_size=8 --seed=1337, or pass --allow_changes'),
    ('train_dmt.py', ['--init_from=resume', '--lr_decay=constant'], DMT, 'ckpt.pt was trained with lr_decay=cosine, '
     'constant given; resume with --lr_decay=cosine'),
    # a checkpoint that holds code is not loaded, whichever script reads it
    ('train_smt.py', ['--init_from=resume'], 'code', 'ckpt.pt holds code (it names posix.system), not plain data: it '
                                                     'was not loaded'),
    ('eval.py', [], 'code', 'ckpt.pt holds code (it names posix.system), not plain data: it was not loaded'),
    slow('sample.py', [], 'code', 'ckpt.pt holds code (it names posix.system)'),
    # eval.py
    ('eval.py', ['--LOG2E=1.0'], SMT, "unknown config key 'LOG2E'"),
    slow('eval.py', ['--n_seqs=0'], SMT, 'n_seqs=0: must be >= 1'),
    ('eval.py', ['--json=no/such/folder/e.json'], SMT, 'json=no/such/folder/e.json: its folder does not exist'),
]


@pytest.mark.parametrize('script, extra, holds, message', [
    pytest.param(*c, id=f"{c[0][:-3]}{''.join(c[1]) or '-' + str(c[2])}",
                 marks=[pytest.mark.slow] if isinstance(c, _Slow) else []) for c in CASES])
def test_one_line_error_and_nothing_changed(script, extra, holds, message, tiny_data, tiny_ckpt, bptt_small,
                                           dmt_small, tmp_path):
    out = out_dir_with(holds, tmp_path, tiny_ckpt, bptt_small, dmt_small)
    before = snapshot(out)
    if script == 'train_smt.py':
        args = [f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=8', '--eval_interval=4'] + TINY
    elif script == 'train_bptt.py':
        args = [f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=8', '--eval_interval=4'] + TINY_BPTT
    elif script == 'train_dmt.py':
        args = [f'--init_from={tiny_ckpt}/ckpt.pt', f'--out_dir={out}', '--max_iters=8', '--eval_interval=4'] + TINY_DMT
    else:
        args = [f'--out_dir={out}', '--device=cpu']
    msg = one_line_error([script] + args + extra)
    assert message in msg, msg
    assert snapshot(out) == before and not (tmp_path / 'ran').exists()


def test_config_file_with_a_syntax_error_or_that_raises(tmp_path):
    for text, message in (("max_iters = (\n", "line 1: syntax error"),
                          ("max_iters = 10\nimport nope_module\n", "line 2 raised ModuleNotFoundError")):
        f = tmp_path / 'bad.py'
        f.write_text(text)
        assert message in one_line_error(['train_smt.py', str(f), f'--out_dir={tmp_path / "out"}'])
    assert not (tmp_path / 'out').exists()


def test_eval_checks_every_checkpoint_first(tiny_ckpt, tmp_path):
    msg = one_line_error(['eval.py', f'--ckpt={tiny_ckpt}/ckpt.pt,{tmp_path}/missing.pt', '--device=cpu'])
    assert f'no checkpoint at {tmp_path}/missing.pt' in msg


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny_data, tiny_ckpt, tmp_path):
    out = out_dir_with(SMT, tmp_path, tiny_ckpt, None)
    before = snapshot(out)
    p = run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--init_from=resume', '--max_iters=30',
             '--eval_interval=1000'] + TINY + ['--learning_rate=1e6', '--allow_changes=True'], check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr
    assert 'resuming from iter 6' in p.stdout
    assert 'allow_changes=True: learning_rate 0.003 -> 1000000.0 (the resumed run no longer continues exactly)' in (
        p.stdout)
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith('error: the train loss at iteration') and 'is not finite' in err, p.stderr
    assert 'learning_rate=1000000.0' in err and f'the last good checkpoint {out}/ckpt.pt is kept' in err
    assert snapshot(out) == before  # bitwise the same file, and no other file (no lock left behind)
    # a fresh diverging run writes no checkpoint at all
    fresh = tmp_path / 'fresh'
    p = run(['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={fresh}', '--max_iters=30', '--eval_interval=5']
            + TINY_BPTT + ['--learning_rate=1e6'], check=False)
    assert p.returncode != 0 and 'no checkpoint was written' in p.stderr.strip().splitlines()[-1], p.stderr
    assert not fresh.exists() or not list(fresh.iterdir())


def test_dmt_divergence_stops_and_keeps_its_last_good_checkpoint(tiny_ckpt, tmp_path):
    """DMT saves its starting point (iteration 0) first; a diverging run then stops without replacing it."""
    out = tmp_path / 'dmt'
    p = run(['train_dmt.py', f'--init_from={tiny_ckpt}/ckpt.pt', f'--out_dir={out}', '--max_iters=30',
             '--eval_interval=1000'] + TINY_DMT + ['--learning_rate=1e6'], check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith('error: the train loss at iteration') and 'is not finite' in err, p.stderr
    assert 'learning_rate=1000000.0' in err and f'the last good checkpoint {out}/ckpt.pt is kept' in err
    assert torch.load(out / 'ckpt.pt', weights_only=True)['iter_num'] == 0
    assert sorted(os.listdir(out)) == ['ckpt.pt']


def test_greedy_at_temperature_zero(tiny_ckpt):
    args = ['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=2', '--max_new_tokens=20', '--temperature=0']
    a, b = run(args + ['--seed=1']).stdout, run(args + ['--seed=2']).stdout
    assert a == b and a.split('---------------\n')[0] == a.split('---------------\n')[1]


def test_lock_refuses_a_live_run_and_takes_over_a_dead_one(tiny_data, tiny_ckpt, tmp_path):
    out = out_dir_with(SMT, tmp_path, tiny_ckpt, None)
    args = ['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=7', '--eval_interval=7',
            '--init_from=resume'] + TINY
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (out / 'run.lock').write_text(f'{live.pid}\n')
        before = snapshot(out)
        msg = one_line_error(args)
        assert f"is in use by process {live.pid}" in msg and 'use another --out_dir' in msg
        assert snapshot(out) == before
    finally:
        live.kill()
        live.wait()
    # the holder is gone (as after a SIGKILL): its lock is taken over, its half-written checkpoint removed
    (out / f'ckpt.pt.tmp{live.pid}').write_bytes(b'half a checkpoint')
    p = run(args)
    assert f'taking over {out}/run.lock from process {live.pid}' in p.stdout and 'resuming from iter 6' in p.stdout
    assert f'removed {out}/ckpt.pt.tmp{live.pid}' in p.stdout
    assert sorted(os.listdir(out)) == ['ckpt.pt']  # the run released its lock
    assert torch.load(out / 'ckpt.pt', weights_only=True)['iter_num'] == 7


def test_second_default_run_resumes_and_overwrite_starts_over(tiny_data, tmp_path):
    """`python train_smt.py` runs with init_from='auto': a second run continues the first one's checkpoint;
    --overwrite=True starts over."""
    args = ['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}',
            '--max_iters=3', '--eval_interval=3', '--max_time=0', '--labels_per_window=8', '--decoded_labels=4', '--dyn_labels=4',
            '--band=4'] + [a for a in TINY if a.startswith('--')]  # the recipe, tiny
    run(args)
    p = run(args)
    assert 'resuming from iter 3' in p.stdout and 'nothing to train' in p.stdout
    p = run(args + ['--overwrite=True'])
    assert 'will be replaced' in p.stdout and 'iter 1:' in p.stdout
    assert torch.load(tmp_path / 'ckpt.pt', weights_only=True)['iter_num'] == 3


def test_second_run_after_the_time_budget_says_there_is_nothing_to_train(tiny_data, tmp_path):
    """A time-budgeted run keeps its training seconds in the checkpoint: run again, it says the budget is spent and
    leaves the checkpoint as it is."""
    args = ['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', '--max_iters=100000', '--max_time=1',
            '--eval_interval=100000', '--init_from=auto'] + TINY_BPTT
    run(args)
    before = (tmp_path / 'ckpt.pt').read_bytes()
    p = run(args)
    assert 'already spend max_time=1, nothing to train' in p.stdout, p.stdout
    assert (tmp_path / 'ckpt.pt').read_bytes() == before


def test_folder_dataset_messages_name_the_folder(tiny_data, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(tiny_data, bad)
    with open(bad / 'train.bin', 'ab') as f:
        f.write(b'x')
    msg = one_line_error(['train_bptt.py', f'--dataset={bad}/', f'--out_dir={tmp_path / "out"}'] + TINY_BPTT)
    assert f'{bad}/train.bin is empty or truncated' in msg and f'write the files in {bad}/ again' in msg
    assert '//' not in msg and not (tmp_path / 'out').exists()  # nothing left behind, not even an empty out_dir


@pytest.fixture
def read_only(tmp_path):
    """A folder in which no file can be created, even by root (whom permission bits do not stop)."""
    if os.geteuid() != 0:
        folder = tmp_path / 'read-only'
        folder.mkdir(mode=0o555)
        yield str(folder)
        folder.chmod(0o755)
        return
    try:
        open('/sys/kernel/.smt-probe', 'w').close()
    except OSError:
        yield '/sys/kernel'
        return
    pytest.skip('no read-only folder for root here')


def test_out_dir_that_is_a_file_or_read_only_and_json_into_a_read_only_folder(tiny_data, tiny_ckpt, tmp_path,
                                                                               read_only):
    """Each is one line naming the path, before any work (these were tracebacks, eval.py's after the evaluation)."""
    f = tmp_path / 'a file'
    f.write_text('notes')
    msg = one_line_error(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={f}'] + TINY)
    assert f"out_dir '{f}' is a file, not a folder" in msg and f.read_text() == 'notes'
    msg = one_line_error(['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={read_only}'] + TINY_BPTT)
    assert f"out_dir '{read_only}' is not writable (creating {read_only}/run.lock: " in msg
    msg = one_line_error(['train_dmt.py', f'--init_from={tiny_ckpt}/ckpt.pt', f'--out_dir={read_only}/dmt'] + TINY_DMT)
    assert f"cannot create out_dir '{read_only}/dmt'" in msg
    p = run(['eval.py', f'--ckpt={tiny_ckpt}/ckpt.pt', f'--json={read_only}/e.json', '--device=cpu'], check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and 'RNN alone' not in p.stdout  # nothing evaluated
    assert p.stderr.strip().splitlines()[-1].startswith(f"error: json={read_only}/e.json: {read_only} is not "
                                                        f"writable"), p.stderr


def test_a_full_disk_during_a_save_keeps_the_old_checkpoint(tiny_data, tiny_ckpt, tmp_path):
    """A save that cannot be written (here a file size limit, as `ulimit -f`) is one line; the previous checkpoint
    stays bitwise as it was, and no temp file or lock is left."""
    out = out_dir_with(SMT, tmp_path, tiny_ckpt, None)
    before = snapshot(out)
    p = run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--init_from=resume', '--max_iters=7',
             '--eval_interval=7'] + TINY, check=False, limit_file_size=200_000)
    assert p.returncode != 0 and 'Traceback' not in p.stderr, p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith(f'error: writing {out}/ckpt.pt failed (') and 'is the disk full' in err, p.stderr
    assert f'the previous {out}/ckpt.pt is kept; resume from it with --init_from=resume' in err
    assert snapshot(out) == before
