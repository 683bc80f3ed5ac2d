import ast
import atexit
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, 'tests')
# the interpreter's own path, for scripts run in a forked child (without the repo and tests/ that pytest adds)
BASE_PATH = [p for p in sys.path if os.path.abspath(p or '.') not in (ROOT, TESTS)]
sys.path.insert(0, ROOT)
# Scripts run in a forked child of this process by default: the same argv, working directory, environment, exit code
# and output as `python script.py`, without paying for `import torch` each time (most of a tiny run's seconds).
# SMT_TESTS_FORK=0 runs every script in a fresh interpreter instead; torchrun always does.
FORK = os.environ.get('SMT_TESTS_FORK', '1') != '0' and hasattr(os, 'fork')

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# a tiny model and run: seconds on a CPU
TINY = ['tests/tiny_smt.py', '--n_mem=2', '--d_model=32', '--n_head=2', '--n_enc_layer=1', '--n_dec_layer=1', '--n_rnn_layer=1',
        '--context_len=16', '--future_len=4', '--batch_size=8', '--eval_windows=16', '--eval_seqs=4',
        '--eval_seq_len=32', '--log_interval=1', '--compile=False', '--device=cpu', '--learning_rate=3e-3']
# the same RNN for train_bptt.py, on windows of 16
TINY_BPTT = ['tests/tiny_bptt.py', '--n_mem=2', '--d_model=32', '--n_head=2', '--n_dec_layer=1', '--n_rnn_layer=1', '--block_size=16',
             '--batch_size=8', '--eval_seqs=4', '--eval_seq_len=32', '--log_interval=1', '--compile=False',
             '--device=cpu', '--learning_rate=3e-3']
# train_dmt.py on the tiny SMT checkpoint (tiny_ckpt): its architecture and data come from the checkpoint
TINY_DMT = ['tests/tiny_dmt.py', '--rollout_len=24', '--label_every=4', '--batch_size=8', '--eval_windows=16',
            '--eval_seq_len=48', '--eval_seqs=4', '--drift_steps=1,8,24', '--log_interval=1', '--device=cpu']


def run(args, timeout=300, env=None, check=True, limit_file_size=None):
    """Run a project script (python or torchrun) in the repo root; return the CompletedProcess.
    limit_file_size: bytes, as `ulimit -f` would set it (a full disk, for the script's writes)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})}
    limit = None if limit_file_size is None else lambda: __import__('resource').setrlimit(
        __import__('resource').RLIMIT_FSIZE, (limit_file_size, limit_file_size))
    if FORK and args[0] != 'torchrun':
        p = _forked(args, timeout, env, limit)
    else:
        cmd = args if args[0] == 'torchrun' else [sys.executable] + args
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=limit)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def _forked(args, timeout, env, before):
    """`python *args` in a forked child of this process, made to look like a fresh interpreter: its own copies of the
    project's modules, the interpreter's signal handlers, warnings and logging, atexit handlers run at exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = sys.__stdout__ = open(1, 'w', encoding='utf-8', closefd=False)
                sys.stderr = sys.__stderr__ = open(2, 'w', buffering=1, encoding='utf-8', errors='backslashreplace',
                                                   closefd=False)
                code = _child(args, env, before)
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        deadline = time.time() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.time() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(args, timeout)
            time.sleep(0.005)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status),
                                           out.read().decode('utf-8', 'replace'), err.read().decode('utf-8', 'replace'))


def _child(args, env, before):
    """Run the script as __main__ and return its exit code, as the interpreter would."""
    import runpy
    atexit._clear()
    os.chdir(ROOT)
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(int(env.get('OMP_NUM_THREADS') or os.cpu_count()))
    warnings.resetwarnings()  # the interpreter's defaults, not pytest's capture
    for action, category, module in (('ignore', ResourceWarning, ''), ('ignore', ImportWarning, ''),
                                     ('ignore', PendingDeprecationWarning, ''), ('ignore', DeprecationWarning, ''),
                                     ('default', DeprecationWarning, '__main__')):
        warnings.filterwarnings(action, category=category, module=module)
    warnings.showwarning = warnings._showwarning_orig
    warnings._showwarnmsg_impl = lambda msg: sys.stderr.write(warnings._formatwarnmsg(msg))
    logging.root.handlers.clear()
    logging.root.setLevel(logging.WARNING)
    for name, mod in list(sys.modules.items()):  # the project's modules are imported afresh, as by a new process
        if os.path.abspath(getattr(mod, '__file__', None) or '/').startswith(ROOT + os.sep):
            del sys.modules[name]
    sys.argv = list(args)
    sys.path[:] = [os.path.dirname(os.path.abspath(args[0]))] + BASE_PATH
    if before:
        before()
    code = 0
    try:
        runpy.run_path(args[0], run_name='__main__')
    except SystemExit as e:
        code = e.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()
    atexit._run_exitfuncs()
    return code


def start(args, env=None):
    """Start a project script in a fresh interpreter of its own (a process to send signals to), output unbuffered."""
    return subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1',
                                            **(env or {})}, preexec_fn=_fresh_signals)


def _fresh_signals():
    """In the child before exec: SIGINT and SIGTERM unblocked and at their defaults, as a shell starts a program. A
    disposition of SIG_IGN or a blocked mask would be inherited across exec from whatever this process (pytest, its
    libraries' threads) set, and Python would then never raise KeyboardInterrupt in the script."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_when(p, pattern, sig, timeout=120):
    """Read p's stdout until a line matches pattern, send it sig, wait for it to end: (returncode, stdout, stderr).
    A process that never prints the line, or does not end, is killed after `timeout` seconds and the test fails."""
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    try:
        seen = []
        for line in p.stdout:
            seen.append(line)
            if re.search(pattern, line):
                p.send_signal(sig)
                break
        out, err = p.communicate()
    finally:
        watchdog.cancel()
    assert re.search(pattern, ''.join(seen), re.M), f"no {pattern!r} in:\n{''.join(seen)[-2000:]}\n{err[-2000:]}"
    return p.returncode, ''.join(seen) + out, err


def messages(stderr):
    """stderr without the configurator's echo of the config file and overrides: what the run had to say."""
    return [l for l in stderr.splitlines() if l.strip() and not l.startswith(('config: ', 'override: '))]


def train_losses(stdout):
    """{iter: loss} from the trainers' log lines."""
    return {int(m.group(1)): float(m.group(2)) for m in re.finditer(r'^iter (\d+): loss ([\d.]+)', stdout, re.M)}


def write_tokens(folder, tokens, vocab_size, val_frac=0.2, meta=None):
    os.makedirs(folder, exist_ok=True)
    tokens = np.asarray(tokens, dtype=np.uint16)
    n_val = int(len(tokens) * val_frac)
    tokens[:-n_val].tofile(os.path.join(folder, 'train.bin'))
    tokens[-n_val:].tofile(os.path.join(folder, 'val.bin'))
    with open(os.path.join(folder, 'meta.json'), 'w') as f:
        json.dump({'vocab_size': vocab_size, 'tokenizer': 'bytes', **(meta or {})}, f)
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


def tiny_models(vocab_size=16, backbone='transformer', context_len=8, future_len=3, n_enc_layer=1, readout='decoder',
                token_shift=False, present_head=False, context_head=False):
    from encoder import Teacher, TeacherConfig
    from model import RNN, RNNConfig
    torch.manual_seed(0)
    rc = RNNConfig(vocab_size=vocab_size, n_mem=3, d_model=16, n_head=2, backbone=backbone, n_rnn_layer=1,
                   n_dec_layer=1, readout=readout, max_pos=64)
    tc = TeacherConfig(vocab_size=vocab_size, n_mem=3, d_model=16, n_head=2, backbone=backbone, n_enc_layer=n_enc_layer,
                       n_dec_layer=1, context_len=context_len, future_len=future_len, token_shift=token_shift,
                       present_head=present_head, context_head=context_head, max_pos=64)
    return Teacher(tc), RNN(rc)


def causal_models(**kw):
    teacher, rnn = tiny_models(**kw)
    teacher.cfg.encoder_type = 'causal'
    return teacher, rnn


def encode(teacher, ctx, n_ctx):
    """The per-window definition of a memory in the RNN's state space: the encoder's registers after reading the
    window ctx (B, T) whose last n_ctx[b] tokens are real (Teacher.encode_raw), through to_state."""
    from model import to_state
    return to_state(teacher.encode_raw(ctx, n_ctx), teacher.cfg.backbone)


def per_window(teacher, ctx, start, p, pad=0):
    """The memory of ctx[start..p] from the per-window definition (Teacher.encode_raw), with `pad` extra padding
    tokens on the left, which shifts every RoPE position: only relative positions may matter."""
    window = torch.nn.functional.pad(ctx[:, :p + 1], (pad, 0), value=5)
    return teacher.encode_raw(window, torch.clamp(p + 1 - start, min=0))


def user_error(args, env=None):
    """Run a script that must fail with a one-line 'error: ...' and no traceback; return that line."""
    p = run(args, check=False, env=env)
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
