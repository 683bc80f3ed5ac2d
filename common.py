"""
Plumbing shared by the trainers, eval.py and sample.py: device and DDP set-up, data, learning-rate schedule,
checkpoints, logging, and the RNN's evaluation. The algorithms stay in train_*.py.
"""
import math
import os
import pickle
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import fail

ROOT = os.path.dirname(os.path.abspath(__file__))
LOG2E = 1.0 / math.log(2)


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
# data: uint16 token streams data/<dataset>/{train,val}.bin and meta.pkl

def prepare_command(dataset):
    """How to prepare a dataset: data/<name>/prepare.py, or data/<name>/prepare.py --tokenizer=gpt2 for <name>_gpt2."""
    base, tok = (dataset[:-5], ['--tokenizer=gpt2']) if dataset.endswith('_gpt2') else (dataset, [])
    script = os.path.join(ROOT, 'data', base, 'prepare.py')
    return [sys.executable, script] + tok if os.path.isfile(script) else None


class TokenStream:
    """A dataset as two token streams (train, val: memmapped uint16) plus its meta dict. Every dataset type offers
    the same two samplers, so the trainers and eval.py never look inside:
      sequences(split, n, length, g) -> (x, y): windows of inputs and next-token targets (-1: ignored)
      smt_windows(split, n, Tc, Tf, short_frac, g) -> (x, y, n_ctx): SMT windows of Tc + Tf with the present at
        index Tc-1 and n_ctx real past tokens (a stream has an unbounded past: Tc, or shorter for short_frac)."""

    def __init__(self, train, val, meta):
        self.train, self.val, self.meta = train, val, meta
        self.vocab_size = int(meta['vocab_size'])

    def describe(self):
        return f"{len(self.train):,} train tokens, vocab {self.vocab_size}"

    def sequences(self, split, n, length, generator):
        return sample_windows(self.train if split == 'train' else self.val, n, length, generator)

    def smt_windows(self, split, n, context_len, future_len, short_frac, generator):
        x, y = self.sequences(split, n, context_len + future_len, generator)
        short = torch.rand(n, generator=generator) < short_frac
        n_ctx = torch.where(short, torch.randint(0, context_len, (n,), generator=generator), context_len)
        return x, y, n_ctx

    def baselines(self, x, y):
        return ngram_baselines(self.train, x, y, self.vocab_size)


def load_data(dataset, sys_, prepare=True):
    """Returns the dataset as a TokenStream (memmapped uint16 token arrays and the meta dict). A missing dataset is prepared
    (on rank 0, the others wait), so the default run needs no separate step. A dataset with a '/' in its name is
    a folder path holding those three files. 'synthetic:<task>[:<length>]' names a task generated on the fly."""
    if dataset.split(':')[0] == 'synthetic':  # episodic tasks, no files: data/synthetic/
        from data.synthetic import load_synthetic
        return load_synthetic(dataset)
    data_dir = dataset if '/' in dataset else os.path.join(ROOT, 'data', dataset)
    paths = [os.path.join(data_dir, f) for f in ('train.bin', 'val.bin', 'meta.pkl')]
    if not all(map(os.path.isfile, paths)):
        cmd = None if '/' in dataset else prepare_command(dataset)
        if cmd is None:
            known = sorted(d for d in os.listdir(os.path.join(ROOT, 'data'))
                           if os.path.isfile(os.path.join(ROOT, 'data', d, 'prepare.py')))
            fail(f"dataset '{dataset}' not found: no {data_dir}/train.bin and no data/{dataset}/prepare.py "
                 f"(datasets: {', '.join(known)}, synthetic:<task>)")
        if not prepare:
            fail(f"dataset '{dataset}' is not prepared: run {' '.join(cmd[1:])}")
        if sys_['master']:
            print(f"dataset '{dataset}' not prepared yet; running {' '.join(os.path.relpath(c) for c in cmd[1:])}")
            if subprocess.run(cmd).returncode != 0:
                fail(f"preparing '{dataset}' failed (see above); run {' '.join(cmd[1:])} yourself to retry")
        if sys_['ddp']:
            dist.barrier()
    try:
        with open(paths[2], 'rb') as f:
            meta = pickle.load(f)
        vocab_size = int(meta['vocab_size'])
    except Exception as e:
        fail(f"{paths[2]} is unreadable ({type(e).__name__}); delete data/{dataset}/ and prepare it again")
    arrays = []
    for path in paths[:2]:
        if os.path.getsize(path) % 2 or os.path.getsize(path) == 0:
            fail(f"{path} is empty or truncated (not whole uint16 tokens); delete data/{dataset}/ and prepare it again")
        arr = np.memmap(path, dtype=np.uint16, mode='r')
        if int(arr.max()) >= vocab_size:
            fail(f"{path} holds token {int(arr.max())} >= vocab_size {vocab_size} of meta.pkl; delete data/{dataset}/ "
                 f"and prepare it again")
        arrays.append(arr)
    return TokenStream(arrays[0], arrays[1], meta)


def sample_windows(data, n, length, generator):
    """n random windows from a token stream: inputs x (n, length) and next-token targets y (n, length), int64.
    Every dataset reaches the models as such (x, y) pairs; a target of -1 is ignored by every loss."""
    if len(data) < length + 2:
        fail(f"the data has {len(data)} tokens, fewer than one window of {length}; use a shorter context/sequence")
    ix = torch.randint(len(data) - length - 1, (n,), generator=generator).tolist()
    chunks = torch.from_numpy(np.stack([data[i:i + length + 1].astype(np.int64) for i in ix]))
    return chunks[:, :-1], chunks[:, 1:]


def step_generator(seed, iter_num, index):
    """The generator for micro-batch `index` of iteration `iter_num`. Data are a pure function of these numbers, so
    a resumed run sees exactly the batches an uninterrupted one would, and a run on N processes the same global
    batch as on one (each process takes its share of the indices)."""
    return torch.Generator().manual_seed(hash((seed, iter_num, index)) & 0x7FFF_FFFF_FFFF_FFFF)


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


# -----------------------------------------------------------------------------
# optimisation

def lr_at(it, max_iters, learning_rate, warmup_frac, decay, min_lr=0.0):
    """Linear warmup over warmup_frac of the run, then constant or cosine down to min_lr."""
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


def data_meta(dataset, data):
    """What a checkpoint records about its data, so that sample.py and eval.py can check and decode."""
    return {'dataset': dataset, 'vocab_size': data.vocab_size, 'tokenizer': data.meta.get('tokenizer', 'bytes')}


def resume_from(out_dir, parts):
    """Load out_dir/ckpt.pt for resuming. parts: {name: the model args (dict) this run builds}; a checkpoint trained
    with other settings (sizes, vocabulary, backbone) is refused, not silently reshaped."""
    ckpt = load_checkpoint(os.path.join(out_dir, 'ckpt.pt'),
                           need=('optimizer', 'iter_num', 'config') + tuple(parts) + tuple(f'{p}_args' for p in parts))
    for name, args in parts.items():
        if ckpt[f'{name}_args'] != args:
            fail(f"{out_dir}/ckpt.pt was trained with other model settings or another vocabulary "
                 f"({ckpt[f'{name}_args']}); resume with the config it was trained with")
    return ckpt


# -----------------------------------------------------------------------------
# checkpoints: one file of plain data, written atomically, loaded on the CPU

def save_checkpoint(path, ckpt):
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint intact


def load_checkpoint(path, need=('rnn', 'rnn_args', 'config', 'iter_num')):
    if os.path.isdir(path):
        path = os.path.join(path, 'ckpt.pt')
    if not os.path.isfile(path):
        fail(f"no checkpoint at {path}; train one first (python train_smt.py) or pass --out_dir / --ckpt")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)  # parts unused are never read
    except Exception as e:
        fail(f"{path} is not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
             f"it may be truncated or from another project: retrain, or point to another file")
    missing = [k for k in need if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        fail(f"{path} is not a checkpoint of this project (missing {', '.join(missing)})")
    return ckpt


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


# -----------------------------------------------------------------------------
# evaluation of the RNN alone and the baselines it must beat

def eval_sequences(data, n_seqs, seq_len, seed=0):
    """The fixed validation sequences (x, y): the same tokens for every checkpoint and every trainer."""
    return data.sequences('val', n_seqs, seq_len, torch.Generator().manual_seed(seed))


@torch.no_grad()
def rnn_nll(rnn, x, y, ctx, m0=None, batch_size=16, with_correct=False):
    """Teacher-forced run of the RNN alone over x (N, L) from its initial memory (or from m0, (N, K, d)): the memory
    after x_0..x_t predicts y_t. Returns the per-position NLL in nats (N, L) on the CPU, 0 where y is -1, and with
    with_correct also whether the argmax prediction was y (N, L), False where y is -1.
    Time runs through the backbone's fast path (the step loop where it has none); the readout is batched."""
    device = next(rnn.parameters()).device
    out, hits = [], []
    for i in range(0, x.size(0), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        with ctx:
            m = rnn.initial_memory(xb.size(0)) if m0 is None else m0[i:i + batch_size].to(device)
            logits = rnn.logits(rnn.run(m, xb))  # (b, L, V)
        nll = F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(), ignore_index=-1, reduction='none')
        out.append(nll.view(yb.shape).cpu())
        hits.append((logits.argmax(-1) == yb).cpu())
    return (torch.cat(out), torch.cat(hits)) if with_correct else torch.cat(out)


def eval_rnn_bits(rnn, val_x, val_y, sys_, ctx, batch_size):
    """The RNN alone on the fixed validation sequences, bits/token: each process takes its share of the sequences,
    the sums are all-reduced (every process must call this)."""
    sums = torch.zeros(2, dtype=torch.float64)
    rows = list(range(sys_['rank'], val_x.size(0), sys_['world_size']))
    if rows:
        sums[0] += rnn_nll(rnn, val_x[rows], val_y[rows], ctx, batch_size=batch_size).double().sum()
        sums[1] += (val_y[rows] >= 0).sum()
    s = all_reduce_sum(sums.to(sys_['device']), sys_).cpu().tolist()
    return s[0] / s[1] * LOG2E


def ngram_baselines(train, x, y, vocab_size, max_train_tokens=20_000_000):
    """Unigram p(y_t) and bigram p(y_t | x_t) bits/token on (x, y), add-one smoothed, counted on the train stream:
    the baselines an RNN scored on the same positions must beat."""
    tr = np.asarray(train[:max_train_tokens], dtype=np.int64)
    uni = np.bincount(tr, minlength=vocab_size) + 1.0
    log_uni = np.log(uni / uni.sum())
    pairs, counts = np.unique(tr[:-1] * vocab_size + tr[1:], return_counts=True)
    keep = (y >= 0).numpy()
    a, b = x.numpy()[keep].astype(np.int64), y.numpy()[keep].astype(np.int64)
    q = a * vocab_size + b
    pos = np.clip(np.searchsorted(pairs, q), 0, len(pairs) - 1)
    c_ab = np.where(pairs[pos] == q, counts[pos], 0)
    c_a = np.bincount(tr[:-1], minlength=vocab_size)[a]
    bigram = -np.log((c_ab + 1.0) / (c_a + vocab_size)).mean() * LOG2E
    return float(-log_uni[b].mean() * LOG2E), float(bigram)


@torch.no_grad()
def encoder_memories(teacher, x, ctx, batch_size=16):
    """The teacher's memories of the first Tc tokens of each sequence in x (N, L >= Tc), (N, K, d) on the RNN's
    device: the seed of the reference protocol, where the encoder starts the RNN."""
    Tc, device = teacher.cfg.context_len, next(teacher.parameters()).device
    with ctx:
        return torch.cat([teacher.encode(x[i:i + batch_size, :Tc].to(device),
                                         torch.full((x[i:i + batch_size].size(0),), Tc, device=device))
                          for i in range(0, x.size(0), batch_size)])


@torch.no_grad()
def memory_drift(rnn, teacher, x, ctx, from_encoder, steps, batch_size=16):
    """Drift of the RNN running on its own states: MSE(m^_j, m_j) after j steps, for j in steps, where m_j is the
    teacher's memory of the same past. The rollout starts from the RNN's initial memory at x[:, 0] (the past then
    grows from empty), or from the teacher's memory of x[:, :Tc] (the reference protocol). Returns {j: mse}."""
    Tc = teacher.cfg.context_len
    device = next(rnn.parameters()).device
    off = Tc if from_encoder else 0
    steps = [s for s in steps if 1 <= s <= x.size(1) - off]
    total = torch.zeros(len(steps), dtype=torch.float64)
    for i in range(0, x.size(0), batch_size):
        xb = x[i:i + batch_size].to(device)
        b = xb.size(0)
        with ctx:
            m = encoder_memories(teacher, xb, ctx, b) if from_encoder else rnn.initial_memory(b)
            ms = rnn.run(m, xb[:, off:off + max(steps)])
            for k, s in enumerate(steps):
                p = off + s - 1  # the present after s steps
                past = xb[:, max(0, p - Tc + 1):p + 1]
                label = teacher.encode(F.pad(past, (Tc - past.size(1), 0)), torch.full((b,), past.size(1), device=device))
                total[k] += (ms[:, s - 1].float() - label.float()).pow(2).mean(dim=(1, 2)).sum().double().cpu()
    return {s: (total[k] / x.size(0)).item() for k, s in enumerate(steps)}
