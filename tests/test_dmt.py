"""train_dmt.py: the RNN learns on its own states, one step per label; the teacher never moves; runs resume
exactly."""
import json
from pathlib import Path

import pytest
import torch

from conftest import TINY, run, tiny_models, train_losses, user_error
from encoder import DMTObjective
from model import BACKBONES, to_state
# train_dmt.py on the tiny SMT checkpoints below: the architecture comes from the checkpoint
DMT = ['tests/tiny_dmt.py', '--rollout_len=24', '--label_every=4', '--batch_size=8', '--eval_seq_len=48', '--eval_seqs=4',
       '--drift_steps=1,8,24,32', '--log_interval=1', '--device=cpu']


def smt_then_dmt(tiny_data, out, smt_iters, dmt_args):
    """The recipe on the tiny data: SMT into out/smt, then DMT from its checkpoint into out/dmt."""
    run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={out / "smt"}', f'--max_iters={smt_iters}',
         '--eval_interval=1000'] + TINY + ['--eval_seq_len=48', '--drift_steps=1,8,24,32'])
    return run(['train_dmt.py', f'--init_from={out / "smt" / "ckpt.pt"}', f'--out_dir={out / "dmt"}'] + DMT + dmt_args)


def rollout_inputs(rnn, B=4, Td=12, k=4):
    """A start memory, a rollout's inputs and targets, and labels in the backbone's state space every k steps."""
    torch.manual_seed(0)
    x, y = torch.randint(0, 16, (B, Td)), torch.randint(0, 16, (B, Td))
    steps = torch.arange(k - 1, Td, k)
    labels = to_state(torch.randn(B, len(steps), 3, 16), rnn.cfg.backbone)
    return rnn.initial_memory(B).detach(), x, y, steps, labels


@pytest.mark.parametrize('rollout', ['parallel', 'sequential'])
def test_detached_rollout_trains_one_step_per_label(rollout):
    """The batched one-step gradient over the visited states equals one step per label taken from the state the
    rollout had reached, each step its own backward."""
    _, rnn = tiny_models()
    m0, x, y, steps, labels = rollout_inputs(rnn)
    loss, (mse, ce, sweeps) = DMTObjective(rnn, w_mse=1.0, w_ce=0.0, rollout=rollout, tol=0.0)(m0, x, y, steps, labels)
    loss.backward()
    got = [p.grad.clone() for p in rnn.updater.parameters()]
    assert 1 <= sweeps <= x.size(1)
    rnn.zero_grad()
    with torch.no_grad():
        ms = rnn.run(m0, x)
    total = 0
    for j, s in enumerate(steps.tolist()):
        prev = m0 if s == 0 else ms[:, s - 1]
        step_loss = torch.nn.functional.mse_loss(rnn.step(prev, x[:, s]), labels[:, j], reduction='sum')
        (step_loss / labels.numel()).backward()
        total += step_loss.item() / labels.numel()
    assert abs(total - mse.item()) < 1e-5
    for a, b in zip(got, [p.grad for p in rnn.updater.parameters()]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    # with bptt=True the gradient also flows back through earlier steps, so it differs
    rnn.zero_grad()
    DMTObjective(rnn, w_mse=1.0, w_ce=0.0, bptt=True)(m0, x, y, steps, labels)[0].backward()
    assert any(not torch.allclose(a, p.grad) for a, p in zip(got, rnn.updater.parameters()))


@pytest.mark.parametrize('backbone', list(BACKBONES))
@pytest.mark.parametrize('ce_through_state', [False, True])
def test_parallel_rollout_trains_like_the_sequential_one(backbone, ce_through_state):
    """Converged sweeps visit the states of the step loop: the same loss terms and the same gradient, for every
    backbone, with and without the readout's CE reaching the updater."""
    _, rnn = tiny_models(backbone=backbone)
    m0, x, y, steps, labels = rollout_inputs(rnn, Td=16, k=1)
    labels = labels + 0.1 * torch.randn_like(labels)  # a guess near, not at, the states
    result = {}
    for rollout in ('parallel', 'sequential'):
        rnn.zero_grad()
        loss, terms = DMTObjective(rnn, rollout=rollout, tol=1e-7, ce_through_state=ce_through_state)(
            m0, x, y, steps, labels)
        loss.backward()
        result[rollout] = loss.item(), terms[:2], [p.grad.clone() for p in rnn.parameters() if p.grad is not None]
    (a, ta, ga), (b, tb, gb) = result['parallel'], result['sequential']
    assert abs(a - b) < 1e-5 and len(ga) == len(gb)
    torch.testing.assert_close(ta, tb, atol=1e-6, rtol=1e-5)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, atol=1e-6, rtol=1e-4)


def test_a_subset_of_labels_trains_and_reads_out_only_there():
    """dyn_labels: with ce_at_labels the readout's CE is the mean over the label steps' visited states alone, and the
    regression is the same one-step loss on those steps."""
    _, rnn = tiny_models()
    m0, x, y, steps, labels = rollout_inputs(rnn, Td=12, k=1)
    keep = torch.tensor([1, 4, 5, 10])
    loss, (mse, ce, _) = DMTObjective(rnn, w_mse=1.0, w_ce=1.0, ce_at_labels=True)(m0, x, y, keep, labels[:, keep])
    with torch.no_grad():
        ms = rnn.run(m0, x)
        prev = torch.cat([m0[:, None], ms[:, :-1]], dim=1)[:, keep]
        want_mse = torch.nn.functional.mse_loss(rnn.step(prev.flatten(0, 1), x[:, keep].flatten()),
                                                labels[:, keep].flatten(0, 1))
        want_ce = torch.nn.functional.cross_entropy(rnn.logits(ms[:, keep]).flatten(0, 1), y[:, keep].flatten())
        every_ce = torch.nn.functional.cross_entropy(rnn.logits(ms).flatten(0, 1), y.flatten())
    torch.testing.assert_close(mse, want_mse)
    torch.testing.assert_close(ce, want_ce)
    assert abs(ce - every_ce) > 1e-4  # not the CE over every step
    torch.testing.assert_close(loss, want_mse + want_ce)


def test_rollouts_without_a_target_train_the_regression_alone():
    """A sparse task's rollouts can hold no target (a retrieval episode has one, at its end): the readout's CE is then
    0, not nan, and the loss is the regression's; with one real target it is that target's CE."""
    _, rnn = tiny_models()
    m0, x, y, steps, labels = rollout_inputs(rnn)
    objective = DMTObjective(rnn, w_mse=1.0, w_ce=1.0)
    loss, (mse, ce, _) = objective(m0, x, torch.full_like(y, -1), steps, labels)
    loss.backward()
    assert ce.item() == 0 and torch.isfinite(loss) and abs(loss.item() - mse.item()) < 1e-6
    assert all(torch.isfinite(p.grad).all() for p in rnn.parameters() if p.grad is not None)
    one = torch.full_like(y, -1)
    one[2, 5] = y[2, 5]
    with torch.no_grad():
        want = torch.nn.functional.cross_entropy(rnn.logits(rnn.run(m0, x)[2, 5][None]), y[2, 5][None])
    torch.testing.assert_close(objective(m0, x, one, steps, labels)[1][1], want)


def test_readout_ce_does_not_reach_the_updater():
    _, rnn = tiny_models()
    loss, _ = DMTObjective(rnn, w_mse=0.0, w_ce=1.0)(*rollout_inputs(rnn))
    loss.backward()
    assert rnn.readout.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None or not p.grad.any() for p in rnn.updater.parameters())


def test_ce_through_state_trains_the_updater_by_the_task_loss():
    """ce_through_state: the readout's CE reaches the updater, one step back per state (detached rollout) or through
    the whole rollout (bptt): then it equals the CE of a plain undetached rnn.run, i.e. BPTT of the rollout."""
    _, rnn = tiny_models()
    m0, x, y, steps, labels = rollout_inputs(rnn)
    grads = {}
    for bptt in (False, True):
        rnn.zero_grad()
        DMTObjective(rnn, w_mse=0.0, w_ce=1.0, bptt=bptt, ce_through_state=True)(m0, x, y, steps, labels)[0].backward()
        grads[bptt] = [p.grad.clone() for p in rnn.updater.parameters()]
        assert any(g.abs().sum() > 0 for g in grads[bptt])
    assert any(not torch.allclose(a, b) for a, b in zip(grads[False], grads[True]))
    rnn.zero_grad()
    logits = rnn.logits(rnn.run(m0, x))
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-1).backward()
    for a, p in zip(grads[True], rnn.updater.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_dmt_freezes_the_teacher_and_reduces_drift(tiny_data, tmp_path):
    smt_then_dmt(tiny_data, tmp_path, 60, ['--max_iters=40', '--eval_interval=100', '--learning_rate=3e-3'])
    smt = torch.load(tmp_path / 'smt' / 'ckpt.pt', weights_only=True)
    dmt = torch.load(tmp_path / 'dmt' / 'ckpt.pt', weights_only=True)
    assert smt['trainer'] == 'smt' and dmt['trainer'] == 'dmt' and dmt['iter_num'] == 40 and dmt['smt_iter_num'] == 60
    for k, v in smt['teacher'].items():
        assert torch.equal(v, dmt['teacher'][k]), k  # bitwise: DMT never touches the teacher
    assert any(not torch.equal(v, dmt['rnn'][k]) for k, v in smt['rnn'].items())  # but trains the RNN
    for start in ('init', 'enc'):
        before, after = smt['val'][f'drift_{start}/24'], dmt['val'][f'drift_{start}/24']
        assert after < before, (start, before, after)


def test_dmt_resumes_exactly(tiny_data, tmp_path):
    full = smt_then_dmt(tiny_data, tmp_path, 3, ['--max_iters=4', '--eval_interval=2', '--lr_decay=constant'])
    common = [f'--out_dir={tmp_path / "cut"}', '--eval_interval=2', '--lr_decay=constant'] + DMT
    run(['train_dmt.py', f'--init_from={tmp_path / "smt" / "ckpt.pt"}', '--max_iters=1'] + common)
    resumed = run(['train_dmt.py', '--init_from=resume', '--max_iters=4'] + common)
    a, b = train_losses(full.stdout), train_losses(resumed.stdout)
    assert sorted(b) == [2, 3, 4] and all(a[i] == b[i] for i in b), (a, b)
    ck_a = torch.load(tmp_path / 'dmt' / 'ckpt.pt', weights_only=True)
    ck_b = torch.load(tmp_path / 'cut' / 'ckpt.pt', weights_only=True)
    for k in ck_a['rnn']:
        assert torch.equal(ck_a['rnn'][k], ck_b['rnn'][k]), k


@pytest.fixture(scope='module')
def dmt_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('dmt')
    smt_then_dmt(tiny_data, out, 4, ['--max_iters=2', '--eval_interval=100'])
    return out


def test_sample_from_a_dmt_checkpoint_never_reads_the_encoder(dmt_run, tmp_path):
    args = ['sample.py', '--num_samples=2', '--max_new_tokens=30']
    with_teacher = run(args + [f'--ckpt={dmt_run / "dmt" / "ckpt.pt"}']).stdout
    ck = torch.load(dmt_run / 'dmt' / 'ckpt.pt', weights_only=True)
    del ck['teacher'], ck['teacher_args'], ck['optimizer']  # an RNN-only file: no encoder to read
    torch.save(ck, tmp_path / 'rnn_only.pt')
    assert run(args + [f'--ckpt={tmp_path / "rnn_only.pt"}']).stdout == with_teacher


def test_eval_compares_smt_and_dmt_on_the_same_tokens(dmt_run, tmp_path):
    both = f"--ckpt={dmt_run / 'smt' / 'ckpt.pt'},{dmt_run / 'dmt' / 'ckpt.pt'}"
    p = run(['eval.py', both, '--n_seqs=4', '--L=40', '--drift_steps=1,8,24', f'--json={tmp_path / "e.json"}'])
    assert '| checkpoint | trainer |' in p.stdout and 'from encoder' in p.stdout
    smt, dmt = json.loads((tmp_path / 'e.json').read_text())
    assert (smt['trainer'], dmt['trainer']) == ('smt', 'dmt') and smt['L'] == dmt['L'] == 40
    assert list(smt['drift']['from_initial']) == ['1', '8', '24'] and list(smt['drift']['from_encoder']) == ['1', '8', '24']
    assert smt['baselines'] == dmt['baselines']  # the same tokens


def test_dmt_mistakes_give_one_line_errors(dmt_run, tmp_path):
    base = ['train_dmt.py', f'--init_from={dmt_run / "smt" / "ckpt.pt"}', f'--out_dir={tmp_path}'] + DMT
    assert "label_every=25: must be in [1, rollout_len=24]" in user_error(base + ['--label_every=25'])
    assert "start=middle: not a valid choice" in user_error(base + ['--start=middle'])
    assert "no checkpoint" in user_error(base + ['--init_from=resume'])
    assert "no checkpoint" in user_error(base + [f'--init_from={tmp_path / "nope.pt"}'])
    assert "train_smt.py" in user_error(['train_dmt.py', '--init_from=resume', f'--out_dir={dmt_run / "smt"}'] + DMT)


def test_dmt_refuses_a_bptt_checkpoint(bptt_ckpt, tmp_path):
    out, _ = bptt_ckpt
    assert "holds no teacher" in user_error(['train_dmt.py', f'--init_from={out / "ckpt.pt"}', f'--out_dir={tmp_path}']
                                            + DMT)


COPY = ['--dataset=synthetic:copy:24', '--eval_seqs=4']


@pytest.fixture(scope='module')
def copy_smt(tmp_path_factory):
    """A tiny SMT checkpoint on copy episodes (a banded causal teacher), for the episodic DMT tests."""
    out = tmp_path_factory.mktemp('copy_smt')
    run(['train_smt.py', f'--out_dir={out}', '--max_iters=3', '--eval_interval=100', '--encoder_type=causal',
         '--labels_per_window=8', '--band=4'] + TINY + COPY + ['--eval_seq_len=24'])
    return out


def test_dmt_on_an_episodic_dataset(copy_smt, tmp_path):
    """Episodes start from the empty past: DMT rolls each one out whole from the RNN's initial memory, labelled by
    the (banded) teacher along the episode, and trains the RNN."""
    p = run(['train_dmt.py', f'--init_from={copy_smt / "ckpt.pt"}', f'--out_dir={tmp_path}',
             '--max_iters=3', '--eval_interval=100', '--label_every=1', '--batch_size=4', '--log_interval=1',
             '--device=cpu', '--drift_steps=1,8'] + COPY)
    assert 'rollouts of Td=' in p.stdout and sorted(train_losses(p.stdout)) == [1, 2, 3]
    smt = torch.load(copy_smt / 'ckpt.pt', weights_only=True)
    dmt = torch.load(tmp_path / 'ckpt.pt', weights_only=True)
    assert any(not torch.equal(v, dmt['rnn'][k]) for k, v in smt['rnn'].items())


def trains_through_time(cfg, smt_out, out, lr, args):
    """train_dmt.py with a DMT-through-time config on an SMT checkpoint: it takes the config's keys, backpropagates
    through the rollout at the config's rate and trains the SMT run's RNN."""
    p = run(['train_dmt.py', cfg, f'--init_from={smt_out / "ckpt.pt"}', f'--out_dir={out}', '--max_iters=2',
             '--max_time=0', '--eval_interval=100', '--log_interval=1', '--device=cpu', '--drift_steps=1,8'] + args)
    assert 'BPTT through the rollout, readout CE through states' in p.stdout
    smt, dmt = (torch.load(f / 'ckpt.pt', weights_only=True) for f in (smt_out, out))
    assert dmt['iter_num'] == 2 and dmt['config']['learning_rate'] == lr and dmt['config']['bptt']
    assert any(not torch.equal(v, dmt['rnn'][k]) for k, v in smt['rnn'].items())


def test_copy_dmt_config_trains_through_time(copy_smt, tmp_path):
    """config/probe_copy_dmt.py on the tiny copy SMT checkpoint (whole episodes)."""
    trains_through_time('config/probe_copy_dmt.py', copy_smt, tmp_path, 2e-3, ['--batch_size=4'] + COPY)


def test_pixel_dmt_config_trains_through_time(tiny_ckpt, tmp_path):
    """config/fashion_mnist_dmt.py on the tiny SMT checkpoint, its lengths shrunk to the tiny data."""
    trains_through_time('config/fashion_mnist_dmt.py', Path(tiny_ckpt), tmp_path, 1e-3,
                        ['--rollout_len=24', '--dyn_labels=4', '--batch_size=8', '--eval_seq_len=48', '--eval_seqs=4'])
