"""
Supervised Memory Training (Kumar & Isola, arXiv 2606.06479): pretrain an RNN without backpropagation through time.

A Transformer teacher encodes the last Tc tokens into a memory m_t and must predict the next Tf tokens from it
(L_dec); the RNN learns the one-step transition (m_t, x_{t+1}) -> m_{t+1} by regression on the teacher's memories
(L_dyn); a uniformity term keeps the memory space spread out (L_unif). All three train jointly, no stop-gradient:

    L = w_dec * L_dec + w_dyn * L_dyn + w_unif * L_unif        (1.0 / 0.1 / 0.001)

Every transition is one step of the RNN from a teacher memory, so training is time-parallel: nothing unrolls.
The objective itself is encoder.SMTObjective; this script samples windows, steps the optimizer, evaluates, saves.
With --encoder_type=causal --labels_per_window=L every window gives L transitions from one encoder pass instead of
one transition from two (README: time-parallel labels); the default is the paper's reference encoder.
The RNN's readout and initial memory are not trained here: they are copied from the teacher's decoder and from its
memory of the empty past (sync_rnn), whenever the RNN is evaluated or saved.

    python train_smt.py                                   # CPU default: config/shakespeare.py
    python train_smt.py config/lm.py                      # the paper's LM scale, on a GPU
    python train_smt.py --encoder_type=causal --labels_per_window=64   # 64 labelled transitions per window
    torchrun --standalone --nproc_per_node=8 train_smt.py config/lm.py
"""
import os
import sys
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

import configurator
from common import (LOG2E, Logger, Throughput, all_reduce_sum, cleanup_system, compile_enabled, device_name,
                    eval_sequences, load_checkpoint, load_data, lr_at, make_optimizer, peak_flops, raw_module, rnn_nll,
                    save_checkpoint, setup_system, step_generator)
from encoder import (ENCODER_TYPES, SMTObjective, Teacher, TeacherConfig, label_valid, smt_flops_per_window,
                     uniformity_indices)
from model import RNN, RNNConfig

# -----------------------------------------------------------------------------
# defaults: the paper's reference LM run (smt-method.md); config/shakespeare.py is the CPU-sized default
out_dir = 'out-smt'
init_from = 'scratch'  # 'scratch' or 'resume' (from out_dir/ckpt.pt)
eval_interval = 2000
log_interval = 10
eval_only = False
wandb_log = False
wandb_project = 'smt'
wandb_run_name = 'smt'
# data
dataset = 'tinystories'
batch_size = 128  # windows per micro-step per process
gradient_accumulation_steps = 1  # global: divided among DDP processes, so the global batch does not depend on N
short_ctx_frac = 0.25  # fraction of windows whose past is cut to a uniform length in [0, Tc): see README
# model
backbone = 'transformer'
encoder_type = 'reference'  # 'reference': bidirectional, two passes per transition (the paper); 'causal': shared
labels_per_window = 1  # L labelled transitions per window from one causal-encoder pass, 1 <= L <= Tc
n_mem = 16
d_model = 256
n_head = 8
n_enc_layer = 8
n_dec_layer = 4
n_rnn_layer = 8
context_len = 256  # Tc
future_len = 64  # Tf
# SMT objective
w_dec = 1.0
w_dyn = 0.1
w_unif = 0.001
unif_tokens = 512
# optimizer
learning_rate = 3e-4
max_iters = 150000
max_time = 0.0  # seconds of training (evals excluded) after which the run evaluates, saves and stops; 0: no limit
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # applied separately to the RNN's and to the teacher's gradients; 0 disables
warmup_frac = 0.01
lr_decay = 'constant'  # or 'cosine'
min_lr = 0.0
# evaluation: fixed validation windows (teacher, SMT losses) and fixed sequences (the RNN alone)
eval_windows = 256
eval_seqs = 32
eval_seq_len = 1024
# system
device = 'auto'
dtype = 'auto'  # bfloat16 autocast on CUDA, float32 on CPU
compile = 'auto'  # 'auto' (CUDA only), 'True', 'False'
seed = 1337
config = configurator.load(globals(), sys.argv[1:], default_config='config/shakespeare.py')
# -----------------------------------------------------------------------------

if not 1 <= future_len:
    configurator.fail(f"future_len (Tf) must be >= 1, got {future_len}")
if context_len < 1 or n_mem < 1:
    configurator.fail(f"context_len (Tc) and n_mem (K) must be >= 1, got {context_len}, {n_mem}")
if not 0.0 <= short_ctx_frac <= 1.0:
    configurator.fail(f"short_ctx_frac must be in [0, 1], got {short_ctx_frac}")
if encoder_type not in ENCODER_TYPES:
    configurator.fail(f"encoder_type must be one of {', '.join(ENCODER_TYPES)}, got {encoder_type!r}")
if not 1 <= labels_per_window <= context_len:
    configurator.fail(f"labels_per_window must be in [1, context_len={context_len}], got {labels_per_window}")
if labels_per_window > 1 and encoder_type != 'causal':
    configurator.fail(f"labels_per_window={labels_per_window} needs --encoder_type=causal (the reference encoder "
                      f"makes one transition per window from two full passes)")
if n_mem * batch_size < 2:
    configurator.fail("the uniformity loss needs at least two memory tokens per batch")

sys_ = setup_system(device, dtype, seed)
master, dev, ctx = sys_['master'], sys_['device'], sys_['ctx']
if gradient_accumulation_steps % sys_['world_size']:
    configurator.fail(f"gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of the "
                      f"number of processes ({sys_['world_size']})")
accum_local = gradient_accumulation_steps // sys_['world_size']
data = load_data(dataset, sys_)
vocab_size = data.vocab_size
window = context_len + future_len  # a training window: Tc tokens of past ending at x_t, then x_{t+1} .. x_{t+Tf}

rnn_cfg = RNNConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                    n_rnn_layer=n_rnn_layer, n_dec_layer=n_dec_layer, max_pos=context_len + n_mem + future_len)
teacher_cfg = TeacherConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                            encoder_type=encoder_type, n_enc_layer=n_enc_layer, n_dec_layer=n_dec_layer, context_len=context_len,
                            future_len=future_len, max_pos=rnn_cfg.max_pos)


def get_batch(iter_num, index):
    """Micro-batch `index` of the global batch at iter_num: windows, their context lengths, uniformity samples,
    and the number of real labelled transitions in it (for trans/s; known here, so no device sync)."""
    g = step_generator(seed, iter_num, index)
    x, y, n_ctx = data.smt_windows('train', batch_size, context_len, future_len, short_ctx_frac, g)
    unif_idx = uniformity_indices(n_ctx, labels_per_window, n_mem, unif_tokens, g)
    n_trans = int(label_valid(n_ctx, labels_per_window).sum())
    return [t.to(dev, non_blocking=True) for t in (x, y, n_ctx, unif_idx)] + [n_trans]


# -----------------------------------------------------------------------------
# model, optimizer, resume
teacher, rnn = Teacher(teacher_cfg), RNN(rnn_cfg)
iter_num = 0
ckpt = None
if init_from == 'resume':
    ckpt = load_checkpoint(os.path.join(out_dir, 'ckpt.pt'), need=('rnn', 'teacher', 'optimizer', 'rnn_args', 'teacher_args', 'iter_num', 'config'))
    if ckpt['rnn_args'] != asdict(rnn_cfg) or ckpt['teacher_args'] != asdict(teacher_cfg):
        configurator.fail(f"{out_dir}/ckpt.pt was trained with other model settings or another vocabulary "
                          f"({ckpt['teacher_args']}); resume with the config it was trained with")
    teacher.load_state_dict(ckpt['teacher'])
    rnn.load_state_dict(ckpt['rnn'])
    iter_num = ckpt['iter_num']
elif init_from != 'scratch':
    configurator.fail(f"init_from must be 'scratch' or 'resume', got {init_from!r}")
# The readout and the initial memory are copies of teacher parts (sync_rnn), not trained by SMT: frozen, they stay
# out of the optimizer and out of DDP's gradient buckets.
rnn.readout.requires_grad_(False)
rnn.m0.requires_grad_(False)
teacher.to(dev)
rnn.to(dev)
smt = SMTObjective(teacher, rnn, w_dec, w_dyn, w_unif, labels_per_window)
rnn_params = [p for p in rnn.parameters() if p.requires_grad]
optimizer = make_optimizer(smt.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
if ckpt is not None:
    optimizer.load_state_dict(ckpt['optimizer'])
ckpt = None  # free the memory
train_step = torch.compile(smt) if compile_enabled(compile, sys_['device_type']) else smt
if sys_['ddp']:
    train_step = DDP(train_step, device_ids=[int(os.environ['LOCAL_RANK'])] if sys_['device_type'] == 'cuda' else None)


@torch.no_grad()
def sync_rnn():
    """Copy the teacher's decoder into the RNN's readout and the teacher's memory of the empty past into the RNN's
    initial memory: after this the RNN runs alone, no encoder needed."""
    rnn.readout.load_state_dict(teacher.decoder.state_dict())
    empty = torch.zeros(1, context_len, dtype=torch.long, device=dev)
    rnn.m0.copy_(teacher.encode_raw(empty, torch.zeros(1, dtype=torch.long, device=dev))[0].float())


# -----------------------------------------------------------------------------
# evaluation: the same validation tokens every time, split across processes and summed
val_windows = data.smt_windows('val', eval_windows, context_len, future_len, 0.0,
                               torch.Generator().manual_seed(seed + 1))
val_x, val_y = eval_sequences(data, eval_seqs, eval_seq_len)
unigram_bits, bigram_bits = data.baselines(val_x, val_y)


@torch.no_grad()
def evaluate():
    """SMT losses and the teacher's next-token CE on the validation windows (full past), and the RNN's own
    teacher-forced CE on the validation sequences, run from its initial memory with no encoder."""
    smt.eval()
    sync_rnn()
    # sums of: dec, dyn, unif, teacher next-token CE (each times windows), windows, RNN NLL, RNN tokens
    sums = torch.zeros(7, dtype=torch.float64)
    mine = list(range(sys_['rank'], eval_windows, sys_['world_size']))
    for i in range(0, len(mine), batch_size):
        x, y, n_ctx = (v[mine[i:i + batch_size]].to(dev) for v in val_windows)
        n = x.size(0)
        idx = uniformity_indices(n_ctx.cpu(), labels_per_window, n_mem, unif_tokens,
                                 torch.Generator().manual_seed(0)).to(dev)
        with ctx:
            _, terms = smt(x, y, n_ctx, idx)
            logits = teacher.decode(teacher.encode(x[:, :context_len], n_ctx), x[:, :0])
        ce0 = F.cross_entropy(logits[:, 0].float(), y[:, context_len - 1], ignore_index=-1)
        sums[:4] += torch.cat([terms.double().cpu(), ce0.double().cpu()[None]]) * n
        sums[4] += n
    rows = list(range(sys_['rank'], eval_seqs, sys_['world_size']))
    if rows:
        nll = rnn_nll(rnn, val_x[rows], val_y[rows], ctx, batch_size=batch_size)
        sums[5] += nll.double().sum()
        sums[6] += (val_y[rows] >= 0).sum()
    s = all_reduce_sum(sums.to(dev), sys_).cpu().tolist()
    smt.train()
    return dict(dec=s[0] / s[4], dyn=s[1] / s[4], unif=s[2] / s[4], teacher_bits=s[3] / s[4] * LOG2E,
                rnn_bits=s[5] / s[6] * LOG2E)


def checkpoint(val):
    sync_rnn()  # a checkpoint's RNN is always usable on its own
    save_checkpoint(os.path.join(out_dir, 'ckpt.pt'), {
        'trainer': 'smt', 'iter_num': iter_num, 'config': config, 'val': val,
        'meta': {'dataset': dataset, 'vocab_size': vocab_size, 'tokenizer': data.meta.get('tokenizer', 'bytes')},
        'rnn_args': asdict(rnn_cfg), 'rnn': raw_module(rnn).state_dict(),
        'teacher_args': asdict(teacher_cfg), 'teacher': teacher.state_dict(),
        'optimizer': optimizer.state_dict()})


# -----------------------------------------------------------------------------
# training loop
if master:
    print(f"SMT on {dataset} ({data.describe()}) | {device_name(dev)} x "
          f"{sys_['world_size']} | teacher {teacher.num_params() / 1e6:.2f}M params, RNN {rnn.num_params() / 1e6:.2f}M "
          f"({backbone}, memory {n_mem}x{d_model}) | global batch {batch_size * gradient_accumulation_steps} windows "
          f"of Tc={context_len} + Tf={future_len} | {encoder_type} encoder, {labels_per_window} label(s) per window")
    print(f"baselines on the validation sequences: unigram {unigram_bits:.3f}, bigram {bigram_bits:.3f} bits/token")
    os.makedirs(out_dir, exist_ok=True)
logger = Logger(wandb_log, wandb_project, wandb_run_name, config, master)
windows_per_iter = batch_size * gradient_accumulation_steps
flops_per_iter = windows_per_iter * smt_flops_per_window(teacher_cfg, n_rnn_layer, labels_per_window)
peak = peak_flops(dev)
start_iter = iter_num
clock = Throughput()
while True:
    lr = lr_at(iter_num, max_iters, learning_rate, warmup_frac, lr_decay, min_lr)
    for group in optimizer.param_groups:
        group['lr'] = lr
    out_of_time = 0 < max_time <= clock.train_seconds
    if max_time > 0 and sys_['ddp']:  # all processes must agree, or the ones that go on wait forever
        out_of_time = all_reduce_sum(torch.tensor(float(out_of_time), device=dev), sys_).item() > 0
    if (iter_num % eval_interval == 0 and iter_num > start_iter) or iter_num == max_iters or out_of_time or eval_only:
        val = evaluate()
        if master:
            print(f"eval {iter_num}: rnn {val['rnn_bits']:.4f} bits/token (alone, from its initial memory) | teacher "
                  f"next-token {val['teacher_bits']:.4f} | val dec {val['dec']:.4f} dyn {val['dyn']:.5f} unif "
                  f"{val['unif']:.3f} | unigram {unigram_bits:.3f} bigram {bigram_bits:.3f}")
            logger.log({f'val/{k}': v for k, v in val.items()}, step=iter_num)
            if not eval_only:
                checkpoint(val)
        clock.restart()  # evaluation time counts neither in the throughput nor in max_time
    if iter_num >= max_iters or out_of_time or eval_only:
        break

    # one optimisation step over the global batch; this process takes its share of the micro-batches
    terms = torch.zeros(3, device=dev)
    n_trans = 0  # real labelled transitions trained by this process in this iteration
    for micro in range(accum_local):
        x, y, n_ctx, unif_idx, n = get_batch(iter_num, sys_['rank'] * accum_local + micro)
        n_trans += n
        if sys_['ddp']:  # sync gradients on the last micro-step only; must be set before the forward
            train_step.require_backward_grad_sync = micro == accum_local - 1
        with ctx:
            loss, t = train_step(x, y, n_ctx, unif_idx)
        (loss / accum_local).backward()
        terms += t / accum_local
    # clip separately, so the teacher's large early gradients do not shrink the RNN's updates (0: no clipping)
    rnn_norm = torch.nn.utils.clip_grad_norm_(rnn_params, grad_clip if grad_clip > 0 else float('inf'))
    teacher_norm = torch.nn.utils.clip_grad_norm_(teacher.parameters(), grad_clip if grad_clip > 0 else float('inf'))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1

    dt = clock.tick(iter_num, start_iter)
    if iter_num % log_interval == 0:
        dec, dyn, unif = all_reduce_sum(terms, sys_).div(sys_['world_size']).tolist()  # every rank takes part
        if master:
            loss_val = w_dec * dec + w_dyn * dyn + w_unif * unif
            tok_s = windows_per_iter * window / dt
            trans_s = n_trans * sys_['world_size'] / dt  # labelled transitions (about the same on every rank)
            mfu = f"{flops_per_iter / dt / peak * 100:.1f}%" if peak else 'n/a'
            print(f"iter {iter_num}: loss {loss_val:.4f} (dec {dec:.4f} dyn {dyn:.5f} unif {unif:.3f}) | "
                  f"{tok_s:,.0f} tok/s {trans_s:,.0f} trans/s | mfu {mfu} | lr {lr:.2e} | {dt * 1000:.0f} ms | "
                  f"eta {clock.eta(iter_num, max_iters)}")
            logger.log({'train/loss': loss_val, 'train/dec': dec, 'train/dyn': dyn, 'train/unif': unif, 'lr': lr,
                        'tokens_per_s': tok_s, 'transitions_per_s': trans_s, 'grad_norm/rnn': rnn_norm.item(),
                        'grad_norm/teacher': teacher_norm.item()}, step=iter_num)

logger.finish()
cleanup_system(sys_)
