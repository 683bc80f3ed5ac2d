"""sample.py generates from a checkpoint with the RNN alone, prints text as it is made, stops cleanly on Ctrl-C, and
rejects bad prompts and metadata clearly."""
import signal
import threading
from dataclasses import asdict

import torch

from conftest import messages, run, start, user_error


def test_sample_from_initial_memory_from_a_prompt_and_seeded_by_the_encoder(tiny_ckpt):
    p = run(['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=2', '--max_new_tokens=40'])
    samples = p.stdout.split('---------------\n')[:-1]
    assert len(samples) == 2 and all(len(s.encode()) >= 40 for s in samples)
    # with a prompt, by the RNN reading it and by the encoder: the prompt (printed as given) and 20 new bytes
    for extra in ([], ['--seed_with_encoder=True']):
        p = run(['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=1', '--max_new_tokens=20', '--start=abc ab']
                + extra)
        assert len(p.stdout.split('\n---------------\n')[0]) == len('abc ab') + 20, p.stdout


def test_sample_is_reproducible(tiny_ckpt):
    args = ['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=1', '--max_new_tokens=30', '--seed=7']
    assert run(args).stdout == run(args).stdout


def test_sample_bad_input(tiny_ckpt, tmp_path):
    # the tiny dataset's vocabulary is ASCII (128): 'é' is two bytes outside it
    assert 'outside this model' in user_error(['sample.py', f'--out_dir={tiny_ckpt}', '--start=caf\u00e9'])
    assert 'no checkpoint' in user_error(['sample.py', f'--out_dir={tmp_path}'])


def test_sample_streams_and_stops_cleanly_on_ctrl_c(tiny_ckpt):
    """Text appears as it is made (a million tokens would take minutes), and Ctrl-C keeps it: one line, exit 130."""
    p = start(['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=2', '--max_new_tokens=1000000'])
    watchdog = threading.Timer(60, p.kill)  # a sample.py that prints only at the end never gets past read()
    watchdog.start()
    try:
        first = p.stdout.read(30)
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate()
    finally:
        watchdog.cancel()
    assert p.returncode == 130 and 'Traceback' not in err, err
    (line,) = messages(err)
    assert line.startswith('interrupted: stopped in sample 1 of 2 after ') and line.endswith(' of 1000000 tokens '
                                                                                           '(printed above)'), line
    assert len(first) == 30 and '---------------' not in first + rest


def test_sample_refuses_metadata_it_cannot_decode(tiny_ckpt, tmp_path):
    """An unknown tokenizer, gpt2 with the wrong vocabulary, or gpt2 offline without a tiktoken cache: one line
    each, nothing decoded as something it is not, no traceback."""
    ck = torch.load(f'{tiny_ckpt}/ckpt.pt', weights_only=True)
    for tokenizer, message in (('klingon', "tokenizer='klingon' is unknown"),
                               ('gpt2', "vocab_size=128 does not fit tokenizer 'gpt2' (exactly 50257)")):
        ck['meta']['tokenizer'] = tokenizer
        torch.save(ck, tmp_path / f'{tokenizer}.pt')
        assert message in user_error(['sample.py', f'--ckpt={tmp_path / tokenizer}.pt'])
    from model import RNN, RNNConfig
    cfg = RNNConfig(vocab_size=50257, n_mem=2, d_model=8, n_head=2, n_rnn_layer=1, n_dec_layer=1, max_pos=8)
    torch.save({'rnn': RNN(cfg).state_dict(), 'rnn_args': asdict(cfg), 'config': {}, 'iter_num': 0,
                'meta': {'dataset': 'shakespeare_gpt2', 'vocab_size': 50257, 'tokenizer': 'gpt2'}}, tmp_path / 'g.pt')
    offline = {'TIKTOKEN_CACHE_DIR': str(tmp_path / 'no-cache'), 'HTTPS_PROXY': 'http://127.0.0.1:9',
               'HTTP_PROXY': 'http://127.0.0.1:9'}  # any download fails at once
    assert 'tiktoken could not load the gpt2 vocabulary' in user_error(['sample.py', f'--ckpt={tmp_path}/g.pt'],
                                                                       env=offline)
