"""
Plumbing shared by the trainers, eval.py and sample.py: device and DDP set-up, the global batch's split over
processes, learning-rate schedule and optimizer, checkpoints, the out_dir lock and the divergence check (nothing
lost, nothing silent), logging and progress. The algorithms stay in train_*.py, the data in data/, the measures in
metrics.py.
"""
import atexit
import math
import os
import re
import sys
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import fail


# -----------------------------------------------------------------------------
# devices, DDP, precision

def setup_system(device, dtype, seed):
    """DDP is on when torchrun sets RANK. Returns a dict with ddp, rank, world_size, master, device, dtype, ctx."""
    ddp = int(os.environ.get('RANK', -1)) != -1
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        fail("device='cuda' but no CUDA device is visible; use --device=cpu")
    rank, local_rank, world_size = 0, 0, 1
    if ddp:
        rank, local_rank = int(os.environ['RANK']), int(os.environ['LOCAL_RANK'])
        world_size = int(os.environ['WORLD_SIZE'])
        if device.startswith('cuda'):
            device = f'cuda:{local_rank}'
            torch.cuda.set_device(device)
        dist.init_process_group(backend='nccl' if device.startswith('cuda') else 'gloo')
    if dtype == 'auto':
        dtype = 'bfloat16' if device.startswith('cuda') and torch.cuda.is_bf16_supported() else 'float32'
    torch.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device_type = 'cuda' if device.startswith('cuda') else 'cpu'
    ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[dtype]
    ctx = nullcontext() if ptdtype == torch.float32 else torch.autocast(device_type=device_type, dtype=ptdtype)
    return dict(ddp=ddp, rank=rank, world_size=world_size, master=rank == 0, device=device,
                device_type=device_type, dtype=dtype, ctx=ctx)


def cleanup_system(sys_):
    if sys_['ddp']:
        dist.destroy_process_group()


def all_reduce_sum(t, sys_):
    if sys_['ddp']:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# bf16 dense tensor-core peaks without sparsity, by a substring of torch.cuda.get_device_name()
PEAK_FLOPS = {'H200': 989e12, 'H100': 989e12, 'A100': 312e12, 'L40S': 362e12, 'A10G': 125e12, 'L4': 121e12,
              '4090': 165e12, '3090': 71e12, 'V100': 125e12, 'T4': 65e12}


def peak_flops(device):
    if not str(device).startswith('cuda'):
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def device_name(device):
    if str(device).startswith('cuda'):
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def compile_enabled(compile_flag, device_type):
    """compile='auto' compiles on CUDA only: on a CPU the compile time outweighs the gain for short runs."""
    return device_type == 'cuda' if compile_flag == 'auto' else compile_flag == 'True'


# -----------------------------------------------------------------------------
# batches and optimisation

def batch_plan(accum_steps, batch_size, rank, world_size):
    """This process's share of a global batch of accum_steps micro-batches of batch_size rows, as a list of
    (micro-batch index, row slice): whole micro-batches when their number divides among the processes, else the
    same slice of every micro-batch's rows. Either way the N processes together see exactly one process's batch.
    (In the second case, terms computed over a whole micro-batch, such as the uniformity loss, see a slice of it.)"""
    if accum_steps % world_size == 0:
        per = accum_steps // world_size
        return [(rank * per + j, slice(None)) for j in range(per)]
    if batch_size % world_size == 0:
        per = batch_size // world_size
        return [(i, slice(rank * per, (rank + 1) * per)) for i in range(accum_steps)]
    fail(f"the global batch does not split over {world_size} processes: make gradient_accumulation_steps="
         f"{accum_steps} or batch_size={batch_size} a multiple of {world_size}")


def lr_at(it, max_iters, learning_rate, warmup_frac, decay, min_lr=0.0, elapsed=0.0, max_time=0.0):
    """Linear warmup over warmup_frac of the run, then constant or cosine down to min_lr. With a time budget
    (max_time > 0) the run's progress is the larger of its fractions of max_iters and of max_time (elapsed training
    seconds): a time-budgeted run warms up and anneals over the time it really gets, and ends at min_lr."""
    if max_time > 0:
        virtual = 1_000_000  # progress as a fraction, read on a fine virtual iteration grid
        it, max_iters = int(virtual * min(1.0, max(it / max_iters, elapsed / max_time))), virtual
    warmup = max(1, int(warmup_frac * max_iters))
    if it < warmup:
        return learning_rate * (it + 1) / warmup
    if decay == 'constant':
        return learning_rate
    assert decay == 'cosine', f"lr_decay must be 'constant' or 'cosine', got {decay!r}"
    progress = min(1.0, (it - warmup) / max(1, max_iters - warmup))
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def make_optimizer(params, learning_rate, weight_decay, betas, device_type):
    """AdamW; weight decay on matrices and embeddings only, not on norm gains. Fused on CUDA."""
    params = [p for p in params if p.requires_grad]
    groups = [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': weight_decay},
              {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == 'cuda')


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group['lr'] = lr


def wrap_model(module, compile_now, sys_):
    """torch.compile (when asked) and DDP around the training module; checkpoints save the raw one (raw_module)."""
    if compile_now:
        module = torch.compile(module)
    if sys_['ddp']:
        module = DDP(module, device_ids=[int(os.environ['LOCAL_RANK'])] if sys_['device_type'] == 'cuda' else None)
    return module


def micro_steps(train_step, plan, sys_):
    """Iterate over this process's (micro-batch index, rows) of the global batch (batch_plan). Under DDP gradients
    sync on the last micro-step only, set before its forward, as DDP requires."""
    for micro, (index, rows) in enumerate(plan):
        if sys_['ddp']:
            train_step.require_backward_grad_sync = micro == len(plan) - 1
        yield index, rows


def time_is_up(max_time, clock, sys_):
    """max_time (seconds of training, evaluations excluded) spent? All processes must agree, or the ones that go on
    wait forever for the others."""
    out = 0 < max_time <= clock.train_seconds
    if max_time > 0 and sys_['ddp']:
        out = all_reduce_sum(torch.tensor(float(out), device=sys_['device']), sys_).item() > 0
    return out


def clip_grads(params, grad_clip):
    """Clip the gradient norm of params to grad_clip (0: no clipping); returns the norm before clipping."""
    return torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float('inf'))


def rates(dt, tokens_per_iter, flops_per_iter, peak):
    """tokens/s and the MFU string of one iteration of dt seconds."""
    return tokens_per_iter / dt, f"{flops_per_iter / dt / peak * 100:.1f}%" if peak else 'n/a'


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


def check_resume_iters(ckpt, last_iter, key, path):
    """Say where a resumed run starts; a run that would end before its checkpoint's iteration is an error."""
    it = ckpt['iter_num']
    if it > last_iter:
        fail(f"{key}={last_iter} is below the iteration of {path} ({it}): it would train nothing; pass "
             f"--{key}={it} or more to continue it")
    print(f"resuming from iter {it} ({path})" + (f": already at {key}={last_iter}, nothing to train (raise --{key} "
                                                 f"to train on)" if it == last_iter else ''))
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


def raw_module(m):
    """The plain module under DDP and torch.compile wrappers: what checkpoints must save."""
    m = getattr(m, 'module', m)
    return getattr(m, '_orig_mod', m)


# -----------------------------------------------------------------------------
# logging: stdout always, wandb when asked (works with WANDB_MODE=offline)

class Logger:
    def __init__(self, enabled, project, run_name, config, master):
        self.wandb = None
        if enabled and master:
            try:
                import wandb
            except ImportError:
                fail("wandb_log=True but wandb is not installed: pip install wandb (or --wandb_log=False)")
            self.wandb = wandb.init(project=project, name=run_name, config=config)

    def log(self, metrics, step):
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def finish(self):
        if self.wandb is not None:
            self.wandb.finish()


class Throughput:
    """Smoothed seconds per iteration (first iterations, which include compilation, are dropped) -> rates and ETA;
    train_seconds adds up the time spent in training steps (evaluations excluded)."""

    def __init__(self):
        self.t0, self.dt, self.train_seconds = time.time(), None, 0.0

    def restart(self):
        self.t0 = time.time()

    def tick(self, it, start_iter):
        t1 = time.time()
        dt, self.t0 = t1 - self.t0, t1
        self.train_seconds += dt
        if it - start_iter >= 2:
            self.dt = dt if self.dt is None else 0.9 * self.dt + 0.1 * dt
        return dt

    def eta(self, it, max_iters, max_time=0.0):
        """Time left: to max_iters at the current rate, or to the max_time budget if that comes first."""
        if self.dt is None:
            return '?'
        s = self.dt * (max_iters - it)
        s = int(min(s, max(0.0, max_time - self.train_seconds)) if max_time > 0 else s)
        return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """A long loop's progress on stderr with an ETA, at most every `every` seconds: silent for short ones."""

    def __init__(self, total, label, every=10.0):
        self.total, self.label, self.every = total, label, every
        self.done, self.t0 = 0, time.time()
        self.last = self.t0

    def update(self, n):
        self.done += n
        now = time.time()
        if now - self.last >= self.every and 0 < self.done < self.total:
            self.last = now
            s = int((now - self.t0) / self.done * (self.total - self.done))
            eta = f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
            print(f"  {self.label}: {self.done / self.total:.0%} ({self.done:,}/{self.total:,}), eta {eta}",
                  file=sys.stderr, flush=True)
