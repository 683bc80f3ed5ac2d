import ast
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# a tiny model and run: seconds on a CPU
TINY = ['tests/tiny_smt.py', '--n_mem=2', '--d_model=32', '--n_head=2', '--n_enc_layer=1', '--n_dec_layer=1', '--n_rnn_layer=1',
        '--context_len=16', '--future_len=4', '--batch_size=8', '--eval_windows=16', '--eval_seqs=4',
        '--eval_seq_len=32', '--log_interval=1', '--compile=False', '--device=cpu', '--learning_rate=3e-3']
# the same RNN for train_bptt.py, on windows of 16
TINY_BPTT = ['tests/tiny_bptt.py', '--n_mem=2', '--d_model=32', '--n_head=2', '--n_dec_layer=1', '--n_rnn_layer=1', '--block_size=16',
             '--batch_size=8', '--eval_seqs=4', '--eval_seq_len=32', '--log_interval=1', '--compile=False',
             '--device=cpu', '--learning_rate=3e-3']


def run(args, timeout=300, env=None, check=True):
    """Run a project script (python or torchrun) in the repo root; return the CompletedProcess."""
    cmd = args if args[0] == 'torchrun' else [sys.executable] + args
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def train_losses(stdout):
    """{iter: loss} from the trainers' log lines."""
    return {int(m.group(1)): float(m.group(2)) for m in re.finditer(r'^iter (\d+): loss ([\d.]+)', stdout, re.M)}


def write_tokens(folder, tokens, vocab_size, val_frac=0.2):
    os.makedirs(folder, exist_ok=True)
    tokens = np.asarray(tokens, dtype=np.uint16)
    n_val = int(len(tokens) * val_frac)
    tokens[:-n_val].tofile(os.path.join(folder, 'train.bin'))
    tokens[-n_val:].tofile(os.path.join(folder, 'val.bin'))
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump({'vocab_size': vocab_size, 'tokenizer': 'bytes'}, f)
    return str(folder)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A learnable byte stream: random words from a small lexicon, so there is structure to model."""
    rng = np.random.default_rng(0)
    words = [rng.integers(97, 105, size=rng.integers(2, 6)).astype(np.uint8).tobytes() for _ in range(20)]
    text = b' '.join(words[i] for i in rng.integers(0, len(words), size=6000))
    return write_tokens(tmp_path_factory.mktemp('tiny'), np.frombuffer(text, dtype=np.uint8), 128)  # ASCII only


@pytest.fixture(scope='session')
def tiny_ckpt(tmp_path_factory, tiny_data):
    """A checkpoint from a 6-iteration SMT run."""
    out = str(tmp_path_factory.mktemp('ckpt'))
    run(['train_smt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=6', '--eval_interval=3'] + TINY)
    return out


@pytest.fixture(scope='session')
def bptt_ckpt(tiny_data, tmp_path_factory):
    """A checkpoint from a 40-iteration BPTT run of a GRU, and the run's stdout."""
    out = tmp_path_factory.mktemp('bptt')
    p = run(['train_bptt.py', f'--dataset={tiny_data}', f'--out_dir={out}', '--max_iters=40', '--eval_interval=40',
             '--backbone=gru'] + TINY_BPTT)
    return out, p.stdout


def tiny_models(vocab_size=16, backbone='transformer', context_len=8, future_len=3, n_enc_layer=1, readout='decoder'):
    from encoder import Teacher, TeacherConfig
    from model import RNN, RNNConfig
    torch.manual_seed(0)
    rc = RNNConfig(vocab_size=vocab_size, n_mem=3, d_model=16, n_head=2, backbone=backbone, n_rnn_layer=1,
                   n_dec_layer=1, readout=readout, max_pos=64)
    tc = TeacherConfig(vocab_size=vocab_size, n_mem=3, d_model=16, n_head=2, backbone=backbone, n_enc_layer=n_enc_layer,
                       n_dec_layer=1, context_len=context_len, future_len=future_len, max_pos=64)
    return Teacher(tc), RNN(rc)


def causal_models(**kw):
    teacher, rnn = tiny_models(**kw)
    teacher.cfg.encoder_type = 'causal'
    return teacher, rnn


def per_window(teacher, ctx, start, p, pad=0):
    """The memory of ctx[start..p] from the per-window definition (Teacher.encode_raw), with `pad` extra padding
    tokens on the left, which shifts every RoPE position: only relative positions may matter."""
    window = torch.nn.functional.pad(ctx[:, :p + 1], (pad, 0), value=5)
    return teacher.encode_raw(window, torch.clamp(p + 1 - start, min=0))


def user_error(args):
    """Run a script that must fail with a one-line 'error: ...' and no traceback; return that line."""
    p = run(args, check=False)
    assert p.returncode != 0
    assert 'Traceback' not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert lines and lines[-1].startswith('error: '), p.stderr
    return lines[-1]


def script_class(script, name):
    """A class defined in a script (train_dmt.py's DMTObjective), without running the script: the scripts are flat
    nanoGPT files that train when imported. The class body sees torch, nn and F, as in the scripts."""
    with open(os.path.join(ROOT, script)) as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    scope = {'torch': torch, 'nn': torch.nn, 'F': torch.nn.functional}
    exec(compile(ast.Module(body=[node], type_ignores=[]), script, 'exec'), scope)
    return scope[name]
