"""train_bptt.py end to end on a tiny dataset: the BPTT loss falls, its checkpoint has the SMT format (sample.py
reads it; eval.py too, tests/test_eval.py), resume is exact, DDP equals one process, mistakes give one line."""
import re
import pytest
import torch

from conftest import TINY_BPTT, run, script_class, tiny_models, train_losses, user_error

BPTTObjective = script_class('train_bptt.py', 'BPTTObjective')


def test_bptt_loss_falls_and_checkpoint_has_the_common_format(bptt_ckpt):
    out, stdout = bptt_ckpt
    losses = train_losses(stdout)
    first, last = sum(losses[i] for i in range(1, 6)) / 5, sum(losses[i] for i in range(36, 41)) / 5
    assert last < first - 0.5, losses
    assert 'bigram' in stdout and re.search(r'eval 40 \(bptt, [\d.]+ s\): rnn', stdout) and 'tok/s' in stdout
    ck = torch.load(out / 'ckpt.pt', map_location='cpu', weights_only=True)
    assert ck['trainer'] == 'bptt' and ck['iter_num'] == 40 and ck['rnn_args']['backbone'] == 'gru'
    assert not any(k.startswith(('_orig_mod', 'module')) for k in ck['rnn'])
    assert 'teacher' not in ck and not list(out.glob('*.tmp*'))
    # sample.py reads a BPTT checkpoint: the RNN alone draws the 20 asked-for bytes (one character each)
    sample = run(['sample.py', f'--out_dir={out}', '--num_samples=1', '--max_new_tokens=20']).stdout
    assert len(sample.split('\n---------------\n')[0]) == 20, sample


@pytest.mark.slow  # the shared resume path is tested by default in test_train_smt.py
def test_bptt_resume_continues_exactly(tiny_data, tmp_path):
    common = [f'--dataset={tiny_data}', '--eval_interval=4', '--lr_decay=constant', '--backbone=mingru'] + TINY_BPTT
    full = run(['train_bptt.py', f'--out_dir={tmp_path / "full"}', '--max_iters=8'] + common)
    run(['train_bptt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=4'] + common)
    resumed = run(['train_bptt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=8', '--init_from=resume'] + common)
    a, b = train_losses(full.stdout), train_losses(resumed.stdout)
    assert sorted(b) == [5, 6, 7, 8] and all(a[i] == b[i] for i in b), (a, b)
    ck_a = torch.load(tmp_path / 'full' / 'ckpt.pt', weights_only=True)['rnn']
    ck_b = torch.load(tmp_path / 'cut' / 'ckpt.pt', weights_only=True)['rnn']
    assert all(torch.equal(ck_a[k], ck_b[k]) for k in ck_a)


def test_unknown_backbone_gives_one_line_errors(tiny_data, tmp_path):
    for script in ('train_bptt.py', 'train_smt.py'):
        msg = user_error([script, f'--dataset={tiny_data}', '--backbone=rwkv', f'--out_dir={tmp_path}', '--device=cpu'])
        assert "backbone=rwkv: not a valid choice" in msg and 'transformer, mlp, gru, lstm, mingru' in msg


@pytest.mark.slow
def test_bptt_two_processes_equal_one(tiny_data, tmp_path):
    common = [f'--dataset={tiny_data}', '--max_iters=5', '--eval_interval=5', '--gradient_accumulation_steps=2',
              '--backbone=lstm'] + TINY_BPTT
    run(['train_bptt.py', f'--out_dir={tmp_path / "one"}'] + common)
    run(['torchrun', '--standalone', '--nproc_per_node=2', 'train_bptt.py', f'--out_dir={tmp_path / "two"}'] + common)
    a = torch.load(tmp_path / 'one' / 'ckpt.pt', weights_only=True)['rnn']
    b = torch.load(tmp_path / 'two' / 'ckpt.pt', weights_only=True)['rnn']
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.parametrize('backbone, readout', [('gru', 'decoder'), ('lstm', 'linear')])  # lstm: cuDNN's (h, c)
def test_stateful_window_starts_from_the_carried_memory(backbone, readout):
    """Stateful BPTT: the second window starts from the memory the first ended in (detached), which is the step
    loop's memory after the first window. Its loss equals a hand-unrolled step loop from that memory, differs from a
    fresh start, and no gradient crosses the boundary."""
    _, rnn = tiny_models(backbone=backbone, readout=readout)
    objective = BPTTObjective(rnn)
    torch.manual_seed(0)
    x, y = torch.randint(0, 16, (3, 10)), torch.randint(0, 16, (3, 10))
    no_mem, fresh = torch.zeros(3, 3, 16), torch.ones(3, dtype=torch.bool)
    _, m_carried = objective(x[:, :5], y[:, :5], no_mem, fresh)
    m = rnn.initial_memory(3)
    for t in range(5):
        m = rnn.step(m, x[:, t])
    torch.testing.assert_close(m_carried, m)
    loss, _ = objective(x[:, 5:], y[:, 5:], m_carried, ~fresh)
    m, logits = m_carried, []
    for t in range(5, 10):  # the reference: rnn.step from the carried memory
        m = rnn.step(m, x[:, t])
        logits.append(rnn.logits(m))
    want = torch.nn.functional.cross_entropy(torch.stack(logits, 1).flatten(0, 1), y[:, 5:].flatten())
    torch.testing.assert_close(loss, want)
    restart, _ = objective(x[:, 5:], y[:, 5:], m_carried, fresh)
    assert abs(restart.item() - loss.item()) > 1e-4
    assert not m_carried.requires_grad
    loss.backward()
    assert rnn.m0.grad is None or rnn.m0.grad.abs().sum() == 0  # the carried rows never read m0


# the mingru with the decoder readout; the classic LSTM (config/shakespeare_lstm.py's shape), which reads only h at
# every step and carries cuDNN's last (h, c)
@pytest.mark.parametrize('model', [['--backbone=mingru'], ['--backbone=lstm', '--hidden=16', '--readout=linear']])
def test_stateful_bptt_resumes_exactly(tiny_data, tmp_path, model):
    """The lanes (positions and carried memories) and the time budget's clock are in the checkpoint."""
    common = [f'--dataset={tiny_data}', '--eval_interval=3', '--stateful=True', '--lr_decay=constant',
              '--reset_prob=0.2'] + TINY_BPTT + model
    full = run(['train_bptt.py', f'--out_dir={tmp_path / "full"}', '--max_iters=6'] + common)
    run(['train_bptt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=3'] + common)
    resumed = run(['train_bptt.py', f'--out_dir={tmp_path / "cut"}', '--max_iters=6', '--init_from=resume'] + common)
    a, b = train_losses(full.stdout), train_losses(resumed.stdout)
    assert sorted(b) == [4, 5, 6] and all(a[i] == b[i] for i in b), (a, b)
    ck_a = torch.load(tmp_path / 'full' / 'ckpt.pt', weights_only=True)
    ck_b = torch.load(tmp_path / 'cut' / 'ckpt.pt', weights_only=True)
    assert all(torch.equal(ck_a['rnn'][k], ck_b['rnn'][k]) for k in ck_a['rnn'])
    assert torch.equal(ck_a['lanes']['pos'], ck_b['lanes']['pos']) and ck_a['lanes']['mem'].abs().sum() > 0


def test_a_linear_readout_from_before_the_classic_head_is_refused(bptt_ckpt, tmp_path):
    """A linear readout used to read the RMS-normed state: its checkpoint (no `hidden` key in its config) would be
    misread by the classic head, so eval.py and sample.py refuse it in one line."""
    ck = torch.load(bptt_ckpt[0] / 'ckpt.pt', weights_only=True)
    ck['rnn_args']['readout'] = 'linear'
    del ck['config']['hidden']
    torch.save(ck, tmp_path / 'ckpt.pt')
    for args in (['eval.py', f'--ckpt={tmp_path}/ckpt.pt'], ['sample.py', f'--out_dir={tmp_path}']):
        assert 'linear readout trained on the RMS-normed state' in user_error(args + ['--device=cpu'])


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_the_classic_configs_run(cell, tiny_data, tmp_path):
    """config/shakespeare_lstm.py and config/shakespeare_gru.py (which takes the LSTM's settings) as they are, at
    tiny sizes: one layer of `hidden`, the linear head, stateful windows."""
    p = run(['train_bptt.py', f'config/shakespeare_{cell}.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}',
             '--hidden=16', '--d_model=8', '--batch_size=2', '--block_size=8', '--max_iters=2', '--eval_interval=2',
             '--eval_seqs=2', '--eval_seq_len=16', '--device=cpu'])
    tokens = {'lstm': 4, 'gru': 2}[cell]  # h (and c) of 16 numbers as tokens of 8
    assert f'({cell}, 1 layer of 16, memory {tokens}x8)' in p.stdout, p.stdout
    ck = torch.load(tmp_path / 'ckpt.pt', weights_only=True)
    assert ck['config']['stateful'] and ck['rnn_args']['readout'] == 'linear' and ck['rnn_args']['backbone'] == cell
