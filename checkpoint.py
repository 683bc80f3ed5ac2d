"""
Everything a run writes into its out_dir, so that nothing is lost and nothing is silent: checkpoints (atomic save,
checked load, resume naming the trainer and the first key that differs, a resume that would not continue exactly
refused), the out_dir lock (one run per folder), the guard against starting over a checkpoint, stale temp files,
the divergence stop (no checkpoint from a non-finite state) and the signal stop (SIGINT/SIGTERM save the last step).
Used by the three trainers, eval.py and sample.py; the rest of the plumbing is in common.py.
"""
import atexit
import math
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import asdict

import torch
import torch.distributed as dist

from configurator import fail


# a checkpoint's 'trainer' -> the script that makes (and resumes) it
TRAINERS = {'smt': 'train_smt.py', 'dmt': 'train_dmt.py', 'bptt': 'train_bptt.py'}


# the training settings every trainer's resume must keep to continue exactly (each adds its objective's keys);
# a budget (max_iters, max_time) and the logging, eval and system keys may change
EXACT_KEYS = ('learning_rate', 'batch_size', 'gradient_accumulation_steps', 'seed', 'lr_decay', 'warmup_frac',
              'min_lr', 'weight_decay', 'beta1', 'beta2', 'grad_clip', 'dtype')
BUDGET_KEYS = ('max_iters', 'max_time')  # the schedule follows them: a change is said, not refused


def resume_from(out_dir, parts, trainers, config, keys, exact=()):
    """Load out_dir/ckpt.pt for resuming. parts: {name: the model config (a dataclass) this run builds}, compared
    field by field with the checkpoint's, whose fields added since it was saved take their defaults; trainers: the
    checkpoint kinds this script resumes; keys: the config keys that must match (architecture, data). A checkpoint
    of another trainer or trained with other settings is refused with the first key that differs, not reshaped.
    exact: the training keys (EXACT_KEYS and the trainer's own) with which the resumed run goes on exactly as the
    uninterrupted one would: a change is refused, naming it, unless config['allow_changes'], which prints each."""
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
    match_parts(path, ckpt, parts, (), "resume with the settings and data it was trained with, or use another "
                                       "--out_dir")
    changed = [(k, ckpt['config'][k], config[k]) for k in exact
               if k in ckpt['config'] and k in config and ckpt['config'][k] != config[k]]
    if changed and not config.get('allow_changes'):
        if len(changed) == 1:
            (k, was, now), = changed
            fail(f"{path} was trained with {k}={was}, {now} given; resume with --{k}={was}, or pass "
                 f"--allow_changes=True to change it")
        fail(f"{path} was trained with {', '.join(f'{k}={was} ({now} given)' for k, was, now in changed)}; resume "
             f"with {' '.join(f'--{k}={was}' for k, was, _ in changed)}, or pass --allow_changes=True to change them")
    for k, was, now in changed:
        print(f"allow_changes=True: {k} {was} -> {now} (the resumed run no longer continues exactly)")
    for k in BUDGET_KEYS:
        if k in ckpt['config'] and k in config and ckpt['config'][k] != config[k]:
            print(f"note: {k} {ckpt['config'][k]} -> {config[k]}: the learning-rate schedule follows the new budget")
    return ckpt


def match_parts(path, ckpt, parts, free, fix):
    """Refuse a checkpoint whose model configs differ from this run's (parts: {name: config dataclass}) in a field
    outside `free`, naming the first; fields added since it was saved take their defaults."""
    for name, cfg in parts.items():
        want = asdict(cfg)
        was_cfg = asdict(type(cfg)(**{k: v for k, v in ckpt[f'{name}_args'].items() if k in want}))
        for k, v in want.items():
            if k not in free and was_cfg[k] != v:
                fail(f"{path} does not match this run: {k}: {was_cfg[k]} in the checkpoint, {v} given ({name}); {fix}")


# the config fields a run started from another run's weights may change: the lengths, which shape no weight (RoPE
# tables are rebuilt, not saved), so a model trained on short episodes goes on at longer ones (a length curriculum)
LENGTH_FIELDS = ('context_len', 'future_len', 'max_pos')


def start_from(path, parts, trainers):
    """init_from=<path>: a new run (iteration 0, a fresh optimizer and schedule) from the weights of another run's
    checkpoint, on this run's data and lengths. parts: {name: this run's model config}; every field but the lengths
    must match (the vocabulary too: the data may differ, its tokens may not). Returns the checkpoint."""
    ckpt = load_checkpoint(path, need=('config',))
    made_by = ckpt.get('trainer')
    if made_by not in trainers:
        fail(f"init_from={path}: a {TRAINERS.get(made_by, 'foreign')} checkpoint; this trainer starts from the "
             f"weights of one made by {' or '.join(TRAINERS[t] for t in trainers)}")
    load_checkpoint(path, need=tuple(parts) + tuple(f'{p}_args' for p in parts), ckpt=ckpt)
    match_parts(path, ckpt, parts, LENGTH_FIELDS, "start from a checkpoint of the same model (only its lengths, "
                                                  f"{', '.join(LENGTH_FIELDS)}, may change)")
    print(f"starting from the weights of {path} (iteration {ckpt.get('iter_num')} of {TRAINERS[made_by]}, dataset "
          f"{ckpt['config'].get('dataset')}): a new run, iteration 0, a fresh optimizer")
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

_written = {}  # path -> the iteration this process last saved there (StopSignals saves no step twice)


def save_checkpoint(path, ckpt):
    """Write ckpt to path atomically. A failed write (a full disk, a file size limit) is one line; the previous
    checkpoint stays intact and the temp file is removed."""
    folder = os.path.dirname(path) or '.'
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint intact
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as a RuntimeError
        try:
            os.remove(tmp)
        except OSError:
            pass
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).split('] . ')[-1].splitlines()[0]
        kept = (f"the previous {path} is kept; resume from it with --init_from=resume" if os.path.exists(path) else
                "no checkpoint was written")
        fail(f"writing {path} failed ({type(e).__name__}: {why}): is the disk full, or a file size limit (ulimit "
             f"-f) reached? free space in {folder} or use another --out_dir; {kept}")
    _written[path] = ckpt.get('iter_num')


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
            try:
                ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)  # unused parts stay unread
            except RuntimeError as e:
                if 'mmap' not in str(e):
                    raise
                ckpt = torch.load(path, map_location='cpu', weights_only=True)  # an old (non-zip) file: no mmap
        except Exception as e:
            code = re.search(r'GLOBAL ([\w.]+)', str(e))  # weights_only refused a global: code, not plain data
            if code:
                fail(f"{path} holds code (it names {code.group(1)}), not plain data: it was not loaded, since "
                     f"loading it could run that code; use a checkpoint from a source you trust")
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


def check_writable(folder, what):
    """Stop with one line (starting with `what`) unless files can be created in the existing folder: checked before
    any work, not after it. A real test file, since permission bits say nothing for root or read-only mounts."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        fail(f"{what}: {folder} is not writable ({e.strerror}); make it writable, or write elsewhere")


def lock_out_dir(out_dir):
    """Make out_dir this process's: a lock file out_dir/run.lock holding the pid, released at exit. A lock of a live
    process refuses this run; a lock left by a dead one (SIGKILL, a crash) is taken over. An out_dir that is a file
    or cannot be written is one line, before any work."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        fail(f"out_dir '{out_dir}' is a file, not a folder; name a folder for the checkpoints (--out_dir)")
    made = not os.path.isdir(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        fail(f"cannot create out_dir '{out_dir}' ({e.strerror}); make its parent writable, or use another --out_dir")
    path = os.path.join(out_dir, LOCK_NAME)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError as e:
            if not isinstance(e, FileExistsError):
                fail(f"out_dir '{out_dir}' is not writable (creating {path}: {e.strerror}); make it writable, or "
                     f"use another --out_dir")
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


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM (what schedulers send) end a trainer without losing its work. The handler only
    notes the signal; the loop asks requested() after each complete optimizer step, and stop() saves that step
    (unless it is on disk already), says so in one line and exits with 128 + the signal number (130, 143); the lock
    is released at exit. A repeat within GRACE seconds is the same request (a terminal or a scheduler signals every
    process of a job, and torchrun forwards the signal again); a later one stops at once, saving nothing more."""
    GRACE = 2.0

    def __init__(self, out_dir, resumed):
        self.path, self.resumed = os.path.join(out_dir, 'ckpt.pt'), resumed
        self.signum, self.t = None, 0.0
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._note)

    def _note(self, signum, frame):
        if self.signum is None:
            self.signum, self.t = signum, time.monotonic()
        elif time.monotonic() - self.t > self.GRACE:
            print(f"{signal.Signals(signum).name} again: stopping at once, without saving", file=sys.stderr)
            raise SystemExit(128 + signum)

    def requested(self, sys_):
        """Whether a signal asks the run to stop; every DDP process must agree on the step, so they vote."""
        if sys_['ddp']:
            t = torch.tensor(float(self.signum or 0), device=sys_['device'])
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            if self.signum is None and t.item() > 0:
                self.signum, self.t = int(t.item()), time.monotonic()
        return self.signum is not None

    def stop(self, iter_num, start_iter, save, sys_):
        """Save the step just completed (rank 0; save() writes the checkpoint) and exit, all processes together."""
        name, path = signal.Signals(self.signum).name, self.path
        if _written.get(path) == iter_num:
            said = f"at iter {iter_num}: {path} holds it"
        elif iter_num > start_iter:
            if sys_['master']:
                save()
            said = f"at iter {iter_num}: saved {path}"
        elif self.resumed:
            said = f"at iter {iter_num}, before its first step: {path} is unchanged"
        else:
            said = "before the first step: nothing was trained or saved"
        if sys_['ddp']:
            dist.barrier()  # the others wait for rank 0's checkpoint, so torchrun ends no process mid-save
            dist.destroy_process_group()
        if sys_['master']:
            hint = '; resume with --init_from=resume' if 'nothing' not in said else ''
            print(f"interrupted by {name} {said}{hint}", file=sys.stderr)
        sys.exit(128 + self.signum)
