"""Plumbing: the split of a global batch over processes, the lr schedule, the n-gram baselines, the out_dir lock,
progress lines; rnn_nll in time chunks; need_tokens."""
import math

import numpy as np
import pytest
import torch

from common import batch_plan, lr_at
from data.stream import ngram_baselines


@pytest.mark.parametrize('accum, batch, world', [(4, 8, 2), (1, 8, 2), (3, 4, 4), (2, 6, 1)])
def test_batch_plan_covers_the_global_batch_once(accum, batch, world):
    seen = []
    for rank in range(world):
        for index, rows in batch_plan(accum, batch, rank, world):
            seen += [(index, r) for r in range(batch)[rows]]
    assert sorted(seen) == [(i, r) for i in range(accum) for r in range(batch)]


def test_batch_plan_that_cannot_split():
    with pytest.raises(SystemExit, match='does not split over 2 processes'):
        batch_plan(1, 3, 0, 2)


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, 0.1, 'constant') == pytest.approx(0.1)
    assert lr_at(50, 100, 1.0, 0.1, 'constant') == 1.0
    assert lr_at(10, 100, 1.0, 0.1, 'cosine') == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 0.1, 'cosine', min_lr=0.1) == pytest.approx(0.1)


def test_time_budget_schedule_anneals_to_min_lr_at_max_time():
    """With max_time the schedule follows the elapsed share of the budget: warm up over warmup_frac of it, reach
    min_lr when it is spent, whatever max_iters says (a time-budgeted run is never cut off at a high lr)."""
    at = lambda elapsed: lr_at(7, 10 ** 6, 1.0, 0.1, 'cosine', 0.05, elapsed, 100.0)
    assert at(5.0) == pytest.approx(0.5, abs=1e-4)  # half-way through the warmup
    assert at(10.0) == pytest.approx(1.0, abs=1e-4)
    assert at(55.0) == pytest.approx(0.05 + 0.5 * 0.95, abs=1e-4)  # cosine half-way
    assert at(100.0) == pytest.approx(0.05) and at(120.0) == pytest.approx(0.05)
    # iterations still count: max_iters reached first ends the schedule too
    assert lr_at(100, 100, 1.0, 0.1, 'cosine', 0.05, 1.0, 100.0) == pytest.approx(0.05)
    # no time budget: the iteration schedule, unchanged
    assert lr_at(50, 100, 1.0, 0.1, 'cosine', 0.0, 99.0, 0.0) == lr_at(50, 100, 1.0, 0.1, 'cosine')


def test_ngram_baselines_on_a_deterministic_stream():
    train = np.array([0, 1, 2, 3] * 1000, dtype=np.uint16)
    x = torch.tensor([[0, 1, 2]])
    y = torch.tensor([[1, 2, -1]])  # -1 is ignored
    unigram, bigram = ngram_baselines(train, x, y, vocab_size=4)
    assert unigram == pytest.approx(2.0, abs=1e-3)  # four equally frequent symbols
    assert bigram == pytest.approx(-math.log2(1001 / 1004), abs=1e-6)  # add-one smoothed certainty


@pytest.mark.parametrize('backbone', ['transformer', 'lstm', 'mingru'])
def test_rnn_nll_in_time_chunks_equals_one_pass(backbone):
    """eval.py runs long sequences in chunks of time, the memory carried over: the same numbers as one pass."""
    from contextlib import nullcontext
    from conftest import tiny_models
    from metrics import rnn_nll
    _, rnn = tiny_models(backbone=backbone)
    x, y = torch.randint(0, 16, (3, 40)), torch.randint(-1, 16, (3, 40))
    a, hits_a = rnn_nll(rnn, x, y, nullcontext(), with_correct=True)
    b, hits_b = rnn_nll(rnn, x, y, nullcontext(), with_correct=True, chunk=7)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert torch.equal(hits_a, hits_b)


def test_progress_prints_an_eta(capsys):
    from common import Progress
    p = Progress(100, 'tokens', every=0.0)
    p.update(25)
    p.update(75)  # done: no line
    err = capsys.readouterr().err
    assert 'tokens: 25% (25/100), eta' in err and err.count('\n') == 1


def test_lock_and_stale_temps(tmp_path):
    import os
    import subprocess
    import sys
    from checkpoint import LOCK_NAME, clean_stale_temps, lock_out_dir
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    (tmp_path / LOCK_NAME).write_text(f'{gone.pid}\n')
    (tmp_path / f'ckpt.pt.tmp{gone.pid}').write_bytes(b'x')
    (tmp_path / f'ckpt.pt.tmp{os.getpid()}').write_bytes(b'x')  # a live process's: kept
    lock_out_dir(str(tmp_path))
    assert (tmp_path / LOCK_NAME).read_text().split() == [str(os.getpid())]
    clean_stale_temps(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [f'ckpt.pt.tmp{os.getpid()}', LOCK_NAME]
    (tmp_path / LOCK_NAME).write_text('1\n')  # pid 1 lives
    with pytest.raises(SystemExit, match='is in use by process 1'):
        lock_out_dir(str(tmp_path))


def test_need_tokens_names_the_split_and_the_key():
    from data import need_tokens
    from data.stream import TokenStream
    data = TokenStream(np.zeros(100, dtype=np.uint16), np.zeros(10, dtype=np.uint16), {'vocab_size': 4})
    need_tokens(data, 'train', 64, 'block_size')
    with pytest.raises(ValueError, match=r'the val split of the data has 10 tokens, fewer than one window of 64 '
                                         r'\(eval_seq_len\); lower eval_seq_len'):
        need_tokens(data, 'val', 64, 'eval_seq_len')


@pytest.mark.parametrize('fast', [True, False])
def test_bf16_on_a_cpu_autocasts_and_warns_where_it_would_be_slow(fast, monkeypatch, capsys):
    """bf16 on the CPU: the step autocasts to bf16, and a CPU without fast bf16 matrix products says it would be slower
    than float32 (the run goes on); 'auto' (train_smt.py's default) takes bf16 only where it is fast."""
    import common
    monkeypatch.setattr(common, 'cpu_has_fast_bf16', lambda: fast)
    sys_ = common.setup_system('cpu', 'bfloat16', 0)
    with sys_['ctx']:
        y = torch.randn(4, 8) @ torch.randn(8, 4)
    assert sys_['dtype'] == 'bfloat16' and y.dtype == torch.bfloat16
    assert ('likely slower than --dtype=float32' in capsys.readouterr().err) == (not fast)
    assert common.setup_system('cpu', 'auto', 0)['dtype'] == ('bfloat16' if fast else 'float32')  # bf16 where fast
