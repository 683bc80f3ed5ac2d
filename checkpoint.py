"""
Everything a run writes into its out_dir, so that nothing is lost and nothing is silent: checkpoints (atomic save,
checked load, resume naming the trainer and the first key that differs), the out_dir lock (one run per folder), the
guard against starting over a checkpoint, stale temp files, and the divergence stop (no checkpoint from a non-finite
state). Used by the three trainers, eval.py and sample.py; the rest of the plumbing is in common.py.
"""
import atexit
import math
import os
import re

import torch

from configurator import fail


# a checkpoint's 'trainer' -> the script that makes (and resumes) it
TRAINERS = {'smt': 'train_smt.py', 'dmt': 'train_dmt.py', 'bptt': 'train_bptt.py'}


def resume_from(out_dir, parts, trainers, config, keys):
    """Load out_dir/ckpt.pt for resuming. parts: {name: the model args (dict) this run builds}; trainers: the
    checkpoint kinds this script resumes; keys: the config keys that must match (architecture, data). A checkpoint
    of another trainer or trained with other settings is refused with the first key that differs, not reshaped."""
    path = os.path.join(out_dir, 'ckpt.pt')
    ckpt = load_checkpoint(path, need=('iter_num', 'config'))
    made_by = ckpt.get('trainer')
    if made_by not in trainers:
        script = TRAINERS.get(made_by)
        if script is None:
            fail(f"{path} is not a checkpoint of this project's trainers (trainer {made_by!r}); use another --out_dir")
        fail(f"{path} was made by {script} ({made_by} checkpoint); resume it with {script}, or use another --out_dir")
    load_checkpoint(path, need=('optimizer',) + tuple(parts) + tuple(f'{p}_args' for p in parts), ckpt=ckpt)
    for k in keys:
        if k in ckpt['config'] and ckpt['config'][k] != config[k]:
            was = ckpt['config'][k]
            fail(f"{path} does not match this run: {k}: {was} in the checkpoint, {config[k]} given; resume with "
                 f"--{k}={was}, or use another --out_dir")
    for name, args in parts.items():
        for k, v in args.items():
            was = ckpt[f'{name}_args'].get(k)
            if was != v:
                fail(f"{path} does not match this run: {k}: {was} in the checkpoint, {v} given ({name}); resume "
                     f"with the settings and data it was trained with, or use another --out_dir")
    return ckpt


def check_resume_iters(ckpt, last_iter, key, path, max_time=0.0):
    """Say where a resumed run starts; a run that would end before its checkpoint's iteration is an error. A run
    whose time budget the checkpoint has already spent says so too (it evaluates nothing and saves nothing)."""
    it = ckpt['iter_num']
    if it > last_iter:
        fail(f"{key}={last_iter} is below the iteration of {path} ({it}): it would train nothing; pass "
             f"--{key}={it} or more to continue it")
    spent = ckpt.get('train_seconds', 0.0)
    done = (f": already at {key}={last_iter}, nothing to train (raise --{key} to train on)" if it == last_iter else
            f": its {spent:.0f} s of training already spend max_time={max_time:g}, nothing to train (raise "
            f"--max_time to train on)" if 0 < max_time <= spent else '')
    print(f"resuming from iter {it} ({path})" + done)
    return it


# -----------------------------------------------------------------------------
# checkpoints: one file of plain data, written atomically, loaded on the CPU

def save_checkpoint(path, ckpt):
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint intact


def load_checkpoint(path, need=('rnn', 'rnn_args', 'config', 'iter_num'), ckpt=None):
    """Load a checkpoint (on the CPU, memory-mapped) and check it holds `need`; every failure is one line.
    ckpt: an already loaded checkpoint to check for more parts."""
    if os.path.isdir(path):
        path = os.path.join(path, 'ckpt.pt')
    if ckpt is None:
        if not os.path.isfile(path):
            fail(f"no checkpoint at {path}; train one first (python train_smt.py) or pass --out_dir / --ckpt")
        if os.path.getsize(path) == 0:
            fail(f"{path} is empty (0 bytes): corrupted or not a checkpoint; retrain, or point to another file")
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)  # parts unused are never read
        except Exception as e:
            fail(f"{path} is corrupted or not a checkpoint (torch cannot read it: {type(e).__name__}); it may be "
                 f"truncated or from another program: retrain, or point to another file")
    missing = [k for k in need if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        fail(f"{path} is not a checkpoint of this project (missing {', '.join(missing)})")
    # A linear readout once read the RMS-normed state; the classic head reads it as it is, so the same weights would
    # give other logits. Such checkpoints came before train_bptt.py's `hidden` key, which came with the classic head.
    if ckpt.get('rnn_args', {}).get('readout') == 'linear' and 'hidden' not in ckpt.get('config', {}):
        fail(f"{path} has a linear readout trained on the RMS-normed state, which this version no longer computes (the "
             f"classic head reads the state as it is); retrain it with train_bptt.py (--overwrite=True replaces it)")
    return ckpt


def describe_checkpoint(path):
    """'iteration N of train_X.py' for messages, or 'unreadable'."""
    try:
        ck = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        return f"iteration {ck['iter_num']} of {TRAINERS.get(ck.get('trainer'), 'an unknown trainer')}"
    except Exception:
        return "unreadable"


# -----------------------------------------------------------------------------
# nothing lost, nothing silent: finite losses, one run per out_dir, no silent overwrite, no orphan temp files

def check_finite(values, iter_num, what, lr, dtype, out_dir):
    """Stop the run (one line, non-zero exit, before anything is saved) when a logged loss or an eval number is NaN
    or inf. values: {term: float}; lr: the learning-rate setting as 'key=value'. Every process gets the same
    (all-reduced) values, so all stop together."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        path = os.path.join(out_dir, 'ckpt.pt')
        kept = f"the last good checkpoint {path} is kept" if os.path.exists(path) else "no checkpoint was written"
        causes = f"a learning rate too high ({lr}: try 10x lower)" + (
            f" or low precision (dtype={dtype}: try --dtype=float32)" if dtype != 'float32' else '')
        fail(f"{what} at iteration {iter_num} is not finite ({', '.join(f'{k} {v}' for k, v in bad.items())}): the "
             f"run diverged and stops without saving; usual causes: {causes}; {kept}")


LOCK_NAME = 'run.lock'


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def lock_out_dir(out_dir):
    """Make out_dir this process's: a lock file out_dir/run.lock holding the pid, released at exit. A lock of a live
    process refuses this run; a lock left by a dead one (SIGKILL, a crash) is taken over."""
    made = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, LOCK_NAME)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None  # empty or garbage: no owner to wait for
            if pid is not None and pid != os.getpid() and pid_alive(pid):
                fail(f"out_dir '{out_dir}' is in use by process {pid} (lock file {path}); wait for that run to end or "
                     f"stop it, or use another --out_dir (if process {pid} is no training run, delete {path})")
            print(f"note: taking over {path} from process {pid}, which is gone")
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(f"{os.getpid()}\n")
        atexit.register(_release_lock, path, out_dir if made else None)
        return
    fail(f"could not take the lock {path} (another run keeps taking it); use another --out_dir")


def _release_lock(path, made_dir):
    try:
        with open(path) as f:
            mine = f.read().split()[:1] == [str(os.getpid())]
        if mine:
            os.remove(path)
        if made_dir and not os.listdir(made_dir):
            os.rmdir(made_dir)  # a run that stopped before writing anything leaves no empty folder
    except OSError:
        pass


def clean_stale_temps(out_dir):
    """Remove checkpoint temp files (ckpt.pt.tmpPID) left by a process killed mid-write."""
    for name in sorted(os.listdir(out_dir)):
        m = re.fullmatch(r'.+\.pt\.tmp(\d+)', name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            os.remove(os.path.join(out_dir, name))
            print(f"removed {os.path.join(out_dir, name)}: a stale temp file of an interrupted checkpoint write")


def claim_out_dir(out_dir, init_from, overwrite):
    """A trainer's out_dir, before any work: lock it (rank 0), resolve init_from='auto' (resume out_dir/ckpt.pt if
    there is one, else scratch; overwrite=True: scratch), refuse a fresh start over an existing checkpoint unless
    overwrite=True, and clean stale temp files. Returns init_from as resolved ('auto' never comes back)."""
    path = os.path.join(out_dir, 'ckpt.pt')
    if init_from == 'auto':
        init_from = 'resume' if os.path.exists(path) and not overwrite else 'scratch'
    if int(os.environ.get('RANK', 0)) != 0:
        return init_from
    lock_out_dir(out_dir)
    if init_from != 'resume' and os.path.exists(path):
        if not overwrite:
            fail(f"{path} already holds a checkpoint ({describe_checkpoint(path)}); continue it with "
                 f"--init_from=resume, replace it with --overwrite=True, or use another --out_dir")
        print(f"overwrite=True: {path} ({describe_checkpoint(path)}) will be replaced by this run's checkpoints")
    clean_stale_temps(out_dir)
    return init_from
