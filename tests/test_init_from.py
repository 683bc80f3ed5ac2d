"""init_from=<a checkpoint's path>: a new run from another run's weights, on this run's data and lengths (a length
curriculum: short episodes first, then long ones). The weights arrive unchanged, the iterations and the optimizer
start afresh, only the lengths may differ, and a checkpoint of another model or trainer is refused in one line."""
import pytest
import torch

from conftest import TINY, TINY_BPTT, run, user_error


def load(folder):
    return torch.load(folder / 'ckpt.pt', map_location='cpu', weights_only=True)


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_smt_starts_from_the_weights_at_another_length(tiny_ckpt, tiny_data, tmp_path):
    # learning_rate=0 (AdamW's decay is scaled by it too): the step changes nothing, so the saved weights are the
    # ones loaded; another seed, so a run that ignored init_from would have other weights
    p = run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', f'--init_from={tiny_ckpt}/ckpt.pt',
             '--max_iters=1', '--eval_interval=1', '--seed=7'] + TINY + ['--context_len=24', '--learning_rate=0'])
    assert 'starting from the weights of' in p.stdout
    src, new = torch.load(f'{tiny_ckpt}/ckpt.pt', map_location='cpu', weights_only=True), load(tmp_path)
    assert same(src['teacher'], new['teacher']) and same(src['rnn'], new['rnn'])
    assert new['iter_num'] == 1 and src['iter_num'] == 6  # a new run: its own iterations
    assert new['teacher_args']['context_len'] == 24 and src['teacher_args']['context_len'] == 16
    assert new['optimizer']['state'][0]['step'] == 1  # a fresh optimizer, not the source's


def test_bptt_starts_from_a_bptt_or_an_smt_rnn(tiny_ckpt, tiny_data, tmp_path):
    base = ['train_bptt.py', f'--dataset={tiny_data}', '--max_iters=1', '--eval_interval=1', '--seed=7'] + TINY_BPTT
    run(base + [f'--out_dir={tmp_path / "a"}'])
    run(base + [f'--out_dir={tmp_path / "b"}', f'--init_from={tmp_path / "a" / "ckpt.pt"}', '--block_size=24',
                '--learning_rate=0'])
    assert same(load(tmp_path / 'a')['rnn'], load(tmp_path / 'b')['rnn'])
    # BPTT fine-tuning of an SMT-trained RNN: the same RNN config, its readout the teacher's decoder
    run(base + [f'--out_dir={tmp_path / "c"}', f'--init_from={tiny_ckpt}/ckpt.pt', '--learning_rate=0'])
    src = torch.load(f'{tiny_ckpt}/ckpt.pt', map_location='cpu', weights_only=True)
    assert same(src['rnn'], load(tmp_path / 'c')['rnn'])


def test_another_model_or_trainer_is_refused(tiny_ckpt, bptt_ckpt, tiny_data, tmp_path):
    smt = ['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={tmp_path}', '--max_iters=1'] + TINY
    assert 'd_model: 32 in the checkpoint, 64 given (rnn)' in user_error(
        smt + [f'--init_from={tiny_ckpt}/ckpt.pt', '--d_model=64'])
    assert 'starts from the weights of one made by train_smt.py or train_dmt.py' in user_error(
        smt + [f'--init_from={bptt_ckpt[0]}/ckpt.pt'])
    assert 'no checkpoint at' in user_error(smt + [f'--init_from={tmp_path}/nope.pt'])
    assert 'init_from=scracth: not a valid choice' in user_error(smt + ['--init_from=scracth'])


@pytest.mark.parametrize('cfg', ['config/shakespeare_ft.py', 'config/fashion_mnist_ft.py'])
def test_fine_tuning_configs_train_the_smt_rnn_by_bptt(cfg, tiny_ckpt, tiny_data, tmp_path):
    """The BPTT fine-tuning configs (SMT as pretraining, BPTT in place of DMT) on the tiny SMT checkpoint: train_bptt.py
    takes their keys, starts from the SMT run's RNN and trains it at the config's learning rate."""
    shrink = [a for a in TINY_BPTT if not a.startswith('--learning_rate')]  # the tiny model; the config's rate
    p = run(['train_bptt.py', shrink[0], cfg] + shrink[1:] + [f'--dataset={tiny_data}', f'--out_dir={tmp_path}',
             f'--init_from={tiny_ckpt}/ckpt.pt', '--max_iters=2', '--eval_interval=2'])
    assert 'starting from the weights of' in p.stdout
    src, new = torch.load(f'{tiny_ckpt}/ckpt.pt', map_location='cpu', weights_only=True), load(tmp_path)
    assert new['trainer'] == 'bptt' and new['iter_num'] == 2 and new['config']['learning_rate'] == 1e-3
    assert new['rnn'].keys() == src['rnn'].keys() and not same(src['rnn'], new['rnn'])  # the same RNN, trained
