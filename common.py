"""
Plumbing shared by the trainers, eval.py and sample.py: device and DDP set-up, the global batch's split over
processes, learning-rate schedule and optimizer, logging and progress. What a run writes into its out_dir
(checkpoints, the lock, the divergence stop) is in checkpoint.py; the algorithms stay in train_*.py, the data in
data/, the measures in metrics.py.
"""
import math
import os
import sys
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import at_least, between, device_rule, dtype_rule, fail, one_of, raises_no_error, satisfies
from model import BACKBONES, cell_memory_tokens, compile_regions


# -----------------------------------------------------------------------------
# the rules of the keys every trainer has; each trainer adds its own (configurator.check reads them in order)

COMPILE_FLAGS = ('auto', 'True', 'False', 'regional')
TRAIN_RULES = {
    'out_dir': satisfies(lambda v, _: v != '', "is empty", "name a folder for the checkpoints"),
    'eval_interval': at_least(1), 'log_interval': at_least(1),
    'batch_size': at_least(1), 'gradient_accumulation_steps': at_least(1),
    'learning_rate': at_least(0.0),
    'max_iters': [at_least(0), satisfies(lambda v, c: v > 0 or c['eval_only'], "nothing to train",
                                         "use max_iters >= 1, or --eval_only=True to evaluate")],
    'max_time': at_least(0.0), 'weight_decay': at_least(0.0), 'beta1': between(0.0, 1.0, hi_open=True),
    'beta2': between(0.0, 1.0, hi_open=True), 'grad_clip': at_least(0.0), 'warmup_frac': between(0.0, 1.0),
    'lr_decay': one_of('constant', 'cosine'), 'min_lr': at_least(0.0),
    'eval_seqs': at_least(1), 'eval_seq_len': at_least(1),
    'device': device_rule, 'dtype': dtype_rule, 'compile': one_of(*COMPILE_FLAGS),
}
# the RNN's keys, for the trainers that build one (train_smt.py, train_bptt.py; DMT reads it from its checkpoint).
# The RNN's Transformer parts (updater, decoder readout) split d_model into heads; a cell with the classic linear
# readout has none, so n_head does not constrain it.
RNN_RULES = {
    'init_from': satisfies(lambda v, _: v in ('scratch', 'resume', 'auto') or '/' in v or v.endswith('.pt'),
                           "not a valid choice", "use one of scratch, resume, auto, or the path of a checkpoint whose "
                           "weights this run starts from"),
    'backbone': one_of(*BACKBONES), 'n_mem': at_least(1), 'n_head': at_least(1),
    'd_model': [at_least(2), satisfies(lambda v, c: v % c['n_head'] == 0 and v // c['n_head'] % 2 == 0 or (
                                           c['backbone'] != 'transformer' and c.get('readout') == 'linear'),
                                       "must split into n_head={n_head} heads of an even width (RoPE rotates pairs)",
                                       "use a multiple of 2 * n_head")],
    'n_dec_layer': at_least(1), 'n_rnn_layer': at_least(1),
    'hidden': [at_least(0), raises_no_error(lambda v, c: v and cell_memory_tokens(c['backbone'], v, c['n_rnn_layer'],
                                                                                   c['d_model']))],
}


# -----------------------------------------------------------------------------
# devices, DDP, precision

def cpu_has_fast_bf16():
    """PyTorch's own check that oneDNN has fast bf16 matrix products on this CPU (AVX512 or newer): there bf16 autocast
    makes the small configs' SMT steps faster; without it bf16 is emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
    if dtype == 'auto':  # bf16 where the hardware runs it fast; emulated bf16 is slower than float32
        fast = torch.cuda.is_bf16_supported() if device.startswith('cuda') else cpu_has_fast_bf16()
        dtype = 'bfloat16' if fast else 'float32'
    if dtype == 'bfloat16' and device == 'cpu' and rank == 0 and not cpu_has_fast_bf16():
        print("warning: dtype='bfloat16' on a CPU without fast bf16 matrix products (oneDNN needs AVX512 or newer): "
              "it is likely slower than --dtype=float32 here", file=sys.stderr)
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


def all_reduce_sums(sums, sys_):
    """{name: number} summed over the processes (float64, one all-reduce); every process passes the same names."""
    total = all_reduce_sum(torch.tensor([float(v) for v in sums.values()], dtype=torch.float64,
                                        device=sys_['device']), sys_)
    return dict(zip(sums, total.cpu().tolist()))


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


def compile_mode(compile_flag, device_type):
    """None, 'whole' or 'regional'. 'True': torch.compile the whole training module (one graph, whose compile time
    grows with every layer); 'regional': each block and updater alone (model.compile_regions: one compile per kind of
    block, whatever the depth); 'auto': regional on CUDA, nothing on a CPU, where compile time outweighs the gain for
    short runs."""
    if compile_flag == 'auto':
        return 'regional' if device_type == 'cuda' else None
    return {'True': 'whole', 'False': None, 'regional': 'regional'}[compile_flag]


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


def wrap_model(module, compile, sys_):
    """torch.compile (compile_mode: 'whole' wraps it, 'regional' compiles its blocks in place) and DDP around the
    training module; checkpoints save the raw one (raw_module)."""
    if compile == 'regional':
        compile_regions(module)
    elif compile == 'whole':
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

    def __init__(self, train_seconds=0.0):  # a resumed run continues its count
        self.t0, self.dt, self.train_seconds = time.time(), None, train_seconds

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
