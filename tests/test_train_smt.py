"""train_smt.py end to end on a tiny dataset: the loss falls, checkpoints round-trip, resume is exact, DDP on two
processes equals one process with the same global batch, and user mistakes give a one-line error."""
import re
import pytest
import torch

from conftest import TINY, run, train_losses, user_error


def test_loss_falls_and_checkpoint_is_plain_data(tiny_data, tmp_path):
    p = run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', '--max_iters=40',
             '--eval_interval=40'] + TINY)
    losses = train_losses(p.stdout)
    first, last = sum(losses[i] for i in range(1, 6)) / 5, sum(losses[i] for i in range(36, 41)) / 5
    assert last < first - 0.5, losses
    assert 'bigram' in p.stdout and re.search(r'eval 40 \(smt, [\d.]+ s\): rnn', p.stdout)
    ck = torch.load(tmp_path / 'ckpt.pt', map_location='cpu', weights_only=True)
    assert ck['iter_num'] == 40 and ck['trainer'] == 'smt'
    assert not any(k.startswith(('_orig_mod', 'module')) for k in list(ck['rnn']) + list(ck['teacher']))
    # the saved RNN is usable alone: its readout is the teacher's decoder
    for k, v in ck['teacher'].items():
        if k.startswith('decoder.'):
            assert torch.equal(ck['rnn']['readout.' + k[len('decoder.'):]], v)
    assert not list(tmp_path.glob('*.tmp*'))  # the atomic write left no temp file


def test_many_labels_train_and_log_transitions(tiny_data, tmp_path):
    p = run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', '--max_iters=30', '--eval_interval=30',
             '--encoder_type=causal', '--labels_per_window=8', '--short_ctx_frac=0.0'] + TINY)
    losses = train_losses(p.stdout)
    assert sum(losses[i] for i in range(26, 31)) < sum(losses[i] for i in range(1, 6)) - 2.5, losses
    assert re.search(r'causal encoder reaching \d+ tokens, 8 label\(s\) per window', p.stdout) and re.search(r'eval 30 \(smt, [\d.]+ s\): rnn', p.stdout)
    # every window is full, so each of the 8 windows gives 8 transitions: trans/s = 8 * windows/s = tok/s * 8 / 20
    for line in p.stdout.splitlines():
        if line.startswith('iter '):
            tok, trans = (float(line.split(f' {u}/s')[0].split()[-1].replace(',', '')) for u in ('tok', 'trans'))
            assert abs(trans / tok - 8 / 20) < 0.01, line
    ck = torch.load(tmp_path / 'ckpt.pt', map_location='cpu', weights_only=True)
    assert ck['teacher_args']['encoder_type'] == 'causal' and ck['config']['labels_per_window'] == 8


def test_resume_continues_exactly(tiny_data, tmp_path):
    common = [f'--dataset={tiny_data}', '--eval_interval=4', '--lr_decay=constant'] + TINY
    full = run(['train_smt.py', f'--out_dir={tmp_path / "full"}', '--max_iters=8'] + common)
    run(['train_smt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=4'] + common)
    resumed = run(['train_smt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=8', '--init_from=resume'] + common)
    a, b = train_losses(full.stdout), train_losses(resumed.stdout)
    assert sorted(b) == [5, 6, 7, 8] and all(a[i] == b[i] for i in b), (a, b)
    ck_a = torch.load(tmp_path / 'full' / 'ckpt.pt', weights_only=True)
    ck_b = torch.load(tmp_path / 'cut' / 'ckpt.pt', weights_only=True)
    for part in ('rnn', 'teacher'):
        for k in ck_a[part]:
            assert torch.equal(ck_a[part][k], ck_b[part][k]), k


def test_two_processes_equal_one(tiny_data, tmp_path):
    """Same global batch (gradient_accumulation_steps=2 split over 2 gloo processes) -> same parameters, up to
    float summation order: all-reduce adds the two halves' gradients in another order than accumulation does."""
    common = [f'--dataset={tiny_data}', '--max_iters=5', '--eval_interval=5', '--gradient_accumulation_steps=2'] + TINY
    run(['train_smt.py', f'--out_dir={tmp_path / "one"}'] + common)
    run(['torchrun', '--standalone', '--nproc_per_node=2', 'train_smt.py', f'--out_dir={tmp_path / "two"}'] + common)
    a = torch.load(tmp_path / 'one' / 'ckpt.pt', weights_only=True)
    b = torch.load(tmp_path / 'two' / 'ckpt.pt', weights_only=True)
    for part in ('rnn', 'teacher'):
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], atol=1e-5, rtol=1e-4, msg=k)


def test_user_mistakes_give_one_line_errors(tiny_data, tmp_path):
    base = ['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}'] + TINY
    assert "unknown config key 'bach_size'" in user_error(base + ['--bach_size=3'])
    assert "must be int" in user_error(base + ['--max_iters=ten'])
    assert "n_head=3" in user_error(base + ['--n_head=3'])
    assert "needs --encoder_type=causal" in user_error(base + ['--labels_per_window=4'])
    assert "labels_per_window=17: must be in [1, context_len=16]" in user_error(
        base + ['--encoder_type=causal', '--labels_per_window=17'])
    assert "dataset 'nope' not found" in user_error(base + ['--dataset=nope'])
    assert "fewer than one window" in user_error(base + ['--context_len=100000', '--max_iters=1'])
    # checkpoints (missing, corrupt, foreign, mismatched), data files and the other values: tests/test_errors.py


def test_wandb_offline(tiny_data, tmp_path):
    pytest.importorskip('wandb')
    run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', '--max_iters=4', '--eval_interval=4',
         '--wandb_log=True'] + TINY, env={'WANDB_MODE': 'offline', 'WANDB_DIR': str(tmp_path), 'WANDB_SILENT': 'true'})
    runs = list((tmp_path / 'wandb').glob('offline-run-*'))
    assert len(runs) == 1 and list(runs[0].glob('*.wandb'))
