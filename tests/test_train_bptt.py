"""train_bptt.py and eval.py end to end on a tiny dataset: the BPTT loss falls, its checkpoint has the SMT format
(sample.py and eval.py read it), resume is exact, eval.py is deterministic and refuses bad input in one line."""
import json

import pytest
import torch

from conftest import TINY_BPTT, run, train_losses, user_error, write_tokens


@pytest.fixture(scope='module')
def bptt_ckpt(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('bptt')
    p = run(['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=40', '--eval_interval=40',
             '--backbone=gru'] + TINY_BPTT)
    return out, p.stdout


def test_bptt_loss_falls_and_checkpoint_has_the_common_format(bptt_ckpt):
    out, stdout = bptt_ckpt
    losses = train_losses(stdout)
    first, last = sum(losses[i] for i in range(1, 6)) / 5, sum(losses[i] for i in range(36, 41)) / 5
    assert last < first - 0.5, losses
    assert 'bigram' in stdout and 'eval 40: rnn' in stdout and 'tok/s' in stdout
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


def evaluate(ckpt, tmp_path, name, extra=()):
    path = tmp_path / f'{name}.json'
    p = run(['eval.py', f'--ckpt={ckpt}', '--n_seqs=8', f'--json={path}'] + list(extra))
    return json.loads(path.read_text()), p.stdout


def test_eval_is_deterministic_for_either_trainer(bptt_ckpt, tiny_ckpt, tmp_path):
    out, _ = bptt_ckpt
    a, text = evaluate(out / 'ckpt.pt', tmp_path, 'a')
    assert a['trainer'] == 'bptt' and a['backbone'] == 'gru' and a['L'] == 64  # 4x block_size=16
    assert a['teacher'] is None and a['rnn_encoder_seeded'] is None
    buckets = a['rnn']['by_position']
    assert buckets[0]['start'] == 0 and buckets[-1]['end'] == 64 and len(buckets) == 8
    assert 0 < a['rnn']['acc'] < 1 and 0 < a['rnn']['bits'] < 8 and a['baselines']['bigram'] > 0
    assert 'bits/token' in text
    # an SMT checkpoint, twice: the same numbers; the teacher and the encoder-seeded protocol too
    s1, _ = evaluate(f'{tiny_ckpt}/ckpt.pt', tmp_path, 's1')
    s2, _ = evaluate(f'{tiny_ckpt}/ckpt.pt', tmp_path, 's2')
    assert s1 == s2 and s1['trainer'] == 'smt' and s1['L'] == 64  # 4x context_len=16
    assert s1['teacher']['bits'] > 0 and s1['rnn_encoder_seeded']['start'] == 16
    assert set(s1) >= {'checkpoint', 'trainer', 'backbone', 'dataset', 'L', 'rnn', 'baselines', 'teacher',
                       'rnn_encoder_seeded'}
    assert s1['baselines'] == a['baselines']  # the same val tokens for every checkpoint at the same L


def test_bad_input_gives_one_line_errors(tiny_data, bptt_ckpt, tmp_path):
    out, _ = bptt_ckpt
    for script in ('train_bptt.py', 'train_smt.py'):
        msg = user_error([script, f'--dataset={tiny_data}', '--backbone=rwkv', f'--out_dir={tmp_path}', '--device=cpu'])
        assert "unknown backbone 'rwkv'" in msg and 'transformer, mlp, gru, lstm, mingru' in msg
    other = write_tokens(tmp_path / 'other', list(range(200)) * 50, 200)
    assert 'vocabulary of 128' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', f'--dataset={other}'])
    assert 'longer than the validation data' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', '--L=100000'])


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


@pytest.mark.slow
def test_compare_writes_the_table(tiny_data, tmp_path):
    p = run(['compare.py', '--max_time=1', '--backbones=mlp,mingru', f'--out_dir={tmp_path}', '--eval_seqs=4',
             '--eval_L=32', f"--args=--dataset={tiny_data} {' '.join(a for a in TINY_BPTT if 'block' not in a)}",
             '--device=cpu'])
    assert '[4/4] mingru-bptt' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | SMT | BPTT |') and 'failed' not in table, table
    runs = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert len(runs) == 4 and all(r['eval']['L'] == 32 for r in runs)
