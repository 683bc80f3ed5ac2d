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
After SMT, dmt_iters steps of DMT fine-tune the RNN alone on its own states (encoder.DMTObjective).
The RNN's readout and initial memory are not trained here: they are copied from the teacher's decoder and from its
memory of the empty past (sync_rnn), whenever the RNN is evaluated or saved.

    python train_smt.py                                   # CPU default: config/shakespeare.py
    python train_smt.py config/lm.py                      # the paper's LM scale, on a GPU
    python train_smt.py --encoder_type=causal --labels_per_window=64   # 64 labelled transitions per window
    python train_smt.py config/shakespeare_dmt.py         # DMT on the default run's RNN
    torchrun --standalone --nproc_per_node=8 train_smt.py config/lm.py
"""
import math
import os
import sys
from dataclasses import asdict

import torch
import torch.nn.functional as F

import configurator
from common import (LOG2E, Logger, Throughput, all_reduce_sum, batch_plan, cleanup_system, clip_grads, compile_enabled,
                    data_meta, device_name, encoder_memories, eval_sequences, load_checkpoint, load_data, lr_at,
                    make_optimizer, memory_drift, micro_steps, peak_flops, rates, raw_module, resume_from, rnn_nll,
                    save_checkpoint, set_lr, setup_system, step_generator, time_is_up, wrap_model)
from encoder import (ENCODER_TYPES, DMTObjective, SMTObjective, Teacher, TeacherConfig, label_valid,
                     smt_flops_per_window, uniformity_indices)
from model import BACKBONES, RNN, RNNConfig, transformer_flops

# -----------------------------------------------------------------------------
# defaults: the paper's reference LM run (smt-method.md); config/shakespeare.py is the CPU-sized default
out_dir = 'out-smt'
init_from = 'scratch'  # 'scratch', 'resume' (out_dir/ckpt.pt), or a checkpoint path to start from (e.g. for DMT)
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
encoder_type = 'reference'  # 'reference': bidirectional, two passes per transition (the paper); 'causal': shared
labels_per_window = 1  # L labelled transitions per window from one causal-encoder pass, 1 <= L <= Tc
# model
backbone = 'transformer'
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
# DMT: after max_iters SMT steps, dmt_iters steps of on-policy fine-tuning of the RNN alone (0: none)
dmt_iters = 0
dmt_batch_size = 32
dmt_rollout_len = 256  # Td: steps the RNN runs on its own state
dmt_label_every = 16  # k: a teacher label every k steps
dmt_w_mse = 10.0
dmt_w_ce = 1.0
dmt_start = 'both'  # rollouts start from 'encoder' (the teacher's memory of Tc tokens), 'initial' (the RNN's own), 'both'
dmt_bptt = False  # backpropagate through the rollout instead of detaching the state at every step
dmt_learning_rate = 3e-5
dmt_lr_decay = 'cosine'  # after warmup (warmup_frac): 'cosine' to 0, or 'constant'
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
drift_steps = '1,4,16,64,256'  # rollout steps at which eval reports the drift MSE(m^_t, m_t)
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
if d_model % n_head or (d_model // n_head) % 2:
    configurator.fail(f"d_model={d_model} must split into n_head={n_head} heads of an even width (RoPE rotates pairs)")
if encoder_type not in ENCODER_TYPES:
    configurator.fail(f"encoder_type must be one of {', '.join(ENCODER_TYPES)}, got {encoder_type!r}")
if not 1 <= labels_per_window <= context_len:
    configurator.fail(f"labels_per_window must be in [1, context_len={context_len}], got {labels_per_window}")
if labels_per_window > 1 and encoder_type != 'causal':
    configurator.fail(f"labels_per_window={labels_per_window} needs --encoder_type=causal (the reference encoder "
                      f"makes one transition per window from two full passes)")
if backbone not in BACKBONES:
    configurator.fail(f"unknown backbone '{backbone}'; valid: {', '.join(BACKBONES)}")
if not 0.0 <= short_ctx_frac <= 1.0:
    configurator.fail(f"short_ctx_frac must be in [0, 1], got {short_ctx_frac}")
if n_mem * batch_size < 2:
    configurator.fail("the uniformity loss needs at least two memory tokens per batch")
if dmt_start not in ('encoder', 'initial', 'both'):
    configurator.fail(f"dmt_start must be 'encoder', 'initial' or 'both', got {dmt_start!r}")
if dmt_iters and not 1 <= dmt_label_every <= dmt_rollout_len:
    configurator.fail(f"dmt_label_every must be in [1, dmt_rollout_len={dmt_rollout_len}], got {dmt_label_every}")
ARCH_KEYS = ('backbone', 'n_mem', 'd_model', 'n_head', 'n_enc_layer', 'n_dec_layer', 'n_rnn_layer', 'context_len',
             'future_len', 'encoder_type', 'dataset')
if init_from not in ('scratch', 'resume'):
    # start from another run's models (e.g. DMT on an SMT checkpoint): its architecture and data come along
    ckpt = load_checkpoint(init_from, need=('rnn', 'teacher', 'config', 'iter_num'))
    for k in ARCH_KEYS:
        globals()[k] = config[k] = ckpt['config'].get(k, globals()[k])  # older checkpoints: the default
    print(f"starting from {init_from} (iteration {ckpt['iter_num']}; its architecture and dataset '{dataset}')")

sys_ = setup_system(device, dtype, seed)
master, dev, ctx = sys_['master'], sys_['device'], sys_['ctx']
plan = batch_plan(gradient_accumulation_steps, batch_size, sys_['rank'], sys_['world_size'])
data = load_data(dataset, sys_)
if dmt_iters and data.meta.get('episodic'):
    configurator.fail(f"DMT rolls out over stream windows of Tc + Td tokens; episodic datasets ({dataset}) are not "
                      f"supported yet: run with --dmt_iters=0")
vocab_size = data.vocab_size
window = context_len + future_len  # a training window: Tc tokens of past ending at x_t, then x_{t+1} .. x_{t+Tf}

rnn_cfg = RNNConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                    n_rnn_layer=n_rnn_layer, n_dec_layer=n_dec_layer, max_pos=context_len + n_mem + future_len)
teacher_cfg = TeacherConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                            encoder_type=encoder_type, n_enc_layer=n_enc_layer, n_dec_layer=n_dec_layer,
                            context_len=context_len,
                            future_len=future_len, max_pos=rnn_cfg.max_pos)


def get_batch(iter_num, index, rows):
    """Rows `rows` of micro-batch `index` of the global batch at iter_num: windows, their context lengths, the
    memory tokens that enter the uniformity loss, and the number of real labelled transitions (for trans/s; known
    here, so no device sync)."""
    g = step_generator(seed, iter_num, index)
    x, y, n_ctx = (v[rows] for v in data.smt_windows('train', batch_size, context_len, future_len, short_ctx_frac, g))
    unif_idx = uniformity_indices(n_ctx, labels_per_window, n_mem, unif_tokens, g)
    n_trans = int(label_valid(n_ctx, labels_per_window).sum())
    return [t.to(dev, non_blocking=True) for t in (x, y, n_ctx, unif_idx)] + [n_trans]


def get_dmt_batch(iter_num, index, rows):
    """DMT rows: sequences of Tc + Td tokens, each rolled out from the teacher's memory of its first Tc tokens or
    from the RNN's initial memory (then the past starts empty at the sequence's first token)."""
    g = step_generator(seed, iter_num, index)
    x, y = data.sequences('train', dmt_batch_size, context_len + dmt_rollout_len, g)
    row = torch.arange(dmt_batch_size)
    from_encoder = {'encoder': row >= 0, 'initial': row < 0, 'both': row % 2 == 0}[dmt_start]
    return [v[rows].to(dev, non_blocking=True) for v in (x, y, from_encoder)]


@torch.no_grad()
def dmt_targets(x, y, from_encoder):
    """The rollout's start memory, inputs and targets, and the teacher's labels every k steps, for each row.
    Encoder rows start from E(x[:Tc]) and roll over x[Tc:]; initial rows start from the RNN's initial memory and
    roll over x[:Td]. The label after rollout step j is the teacher's memory of the past up to that input."""
    B, Tc, Td, k = x.size(0), context_len, dmt_rollout_len, dmt_label_every
    first = torch.where(from_encoder, Tc, 0)  # index of the first input the RNN reads
    pos = first[:, None] + torch.arange(Td, device=dev)  # (B, Td): the present after each step
    full = torch.full((B,), Tc, device=dev)
    m_start = torch.where(from_encoder[:, None, None], teacher.encode(x[:, :Tc], full), rnn.initial_memory(B))
    label_steps = torch.arange(k - 1, Td, k, device=dev)  # (J,)
    present = pos[:, label_steps]  # (B, J)
    # the past up to each labelled present, left-padded to Tc: x padded by Tc-1 on the left, window [p, p+Tc)
    idx = present[..., None] + torch.arange(Tc, device=dev)  # (B, J, Tc)
    pasts = F.pad(x, (Tc - 1, 0)).gather(1, idx.flatten(1)).view(-1, Tc)
    labels = teacher.encode(pasts, torch.clamp(present + 1, max=Tc).flatten())
    return m_start, x.gather(1, pos), y.gather(1, pos), label_steps, labels.view(B, len(label_steps), n_mem, d_model)


# -----------------------------------------------------------------------------
# model, optimizer, resume
try:
    teacher, rnn = Teacher(teacher_cfg), RNN(rnn_cfg)
except ValueError as e:  # sizes a backbone cannot split its memory into
    configurator.fail(str(e))
iter_num = 0
if init_from == 'resume':
    ckpt = resume_from(out_dir, {'rnn': asdict(rnn_cfg), 'teacher': asdict(teacher_cfg)})
    iter_num = ckpt['iter_num']
elif init_from != 'scratch' and (ckpt['rnn_args'] != asdict(rnn_cfg) or ckpt['teacher_args'] != asdict(teacher_cfg)):
    configurator.fail(f"{init_from} holds models of another shape than its own config says; is it from this project?")
if init_from != 'scratch':
    teacher.load_state_dict(ckpt['teacher'])
    rnn.load_state_dict(ckpt['rnn'])
teacher.to(dev)
rnn.to(dev)
smt = SMTObjective(teacher, rnn, w_dec, w_dyn, w_unif, labels_per_window)
dmt = DMTObjective(rnn, dmt_w_mse, dmt_w_ce, dmt_bptt)


def start_phase(phase):
    """Freeze what the phase does not train, build its optimizer and its (compiled, DDP-wrapped) step.
    SMT trains the teacher and the RNN's embedding and updater; the RNN's readout and initial memory are copies of
    teacher parts (sync_rnn), frozen so they stay out of the optimizer and out of DDP's gradient buckets.
    DMT trains the RNN alone: the teacher is frozen and outside the DDP wrapper; the initial memory stays the
    teacher's memory of the empty past, which is exactly its label."""
    teacher.requires_grad_(phase == 'smt')
    rnn.requires_grad_(True)
    rnn.m0.requires_grad_(False)
    rnn.readout.requires_grad_(phase == 'dmt')
    if phase == 'smt':  # SMT's RNN takes one step, written without cuDNN for every backbone: it all compiles
        opt = make_optimizer(smt.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
        return opt, wrap_model(smt, compile_enabled(compile, sys_['device_type']), sys_)
    # the rollout is a Python loop over Td steps (or a cuDNN call): compiling it would unroll it, so DMT runs eagerly
    opt = make_optimizer(rnn.parameters(), dmt_learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
    return opt, wrap_model(dmt, False, sys_)


phase = ckpt.get('phase', 'smt') if init_from == 'resume' else 'smt'  # DMT begins inside the loop
optimizer, train_step = start_phase(phase)
if init_from == 'resume':
    optimizer.load_state_dict(ckpt['optimizer'])
ckpt = None  # free the memory


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


DRIFT_STEPS = [int(s) for s in drift_steps.split(',')]


@torch.no_grad()
def evaluate():
    """On the validation windows (full past): the SMT losses and the teacher's next-token CE. On the validation
    sequences: the RNN's own teacher-forced CE from its initial memory (no encoder), the same from the teacher's
    memory of the first Tc tokens (the reference protocol, scored on the rest), and the drift MSE(m^_t, m_t) of
    both rollouts at DRIFT_STEPS."""
    smt.eval()
    if phase == 'smt':
        sync_rnn()
    sums = torch.zeros(5, dtype=torch.float64)  # dec, dyn, unif, teacher next-token CE (each x windows), windows
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
    # the RNN: NLL and target counts from both starts, then the drift curves (sums over sequences)
    rows = list(range(sys_['rank'], eval_seqs, sys_['world_size']))
    L = val_x.size(1)  # eval_seq_len, or the episode length of an episodic dataset
    steps_init = [s for s in DRIFT_STEPS if s <= L]
    steps_enc = [s for s in DRIFT_STEPS if s <= L - context_len]
    rnn_sums = torch.zeros(4 + len(steps_init) + len(steps_enc), dtype=torch.float64)
    if rows:
        x, y = val_x[rows], val_y[rows]
        rnn_sums[0], rnn_sums[1] = rnn_nll(rnn, x, y, ctx, batch_size=batch_size).double().sum(), (y >= 0).sum()
        drift = list(memory_drift(rnn, teacher, x, ctx, False, steps_init, batch_size).values())
        if L > context_len:
            m_enc = encoder_memories(teacher, x, ctx, batch_size)
            nll = rnn_nll(rnn, x[:, context_len:], y[:, context_len:], ctx, m0=m_enc, batch_size=batch_size)
            rnn_sums[2], rnn_sums[3] = nll.double().sum(), (y[:, context_len:] >= 0).sum()
            drift += list(memory_drift(rnn, teacher, x, ctx, True, steps_enc, batch_size).values())
        rnn_sums[4:4 + len(drift)] = torch.tensor(drift, dtype=torch.float64) * len(rows)
    s = all_reduce_sum(torch.cat([sums, rnn_sums]).to(dev), sys_).cpu().tolist()
    smt.train()
    d_init, d_enc = s[9:9 + len(steps_init)], s[9 + len(steps_init):]
    return dict(dec=s[0] / s[4], dyn=s[1] / s[4], unif=s[2] / s[4], teacher_bits=s[3] / s[4] * LOG2E,
                rnn_bits=s[5] / s[6] * LOG2E, rnn_enc_bits=s[7] / s[8] * LOG2E if s[8] else float('nan'),
                **{f'drift_init/{j}': v / eval_seqs for j, v in zip(steps_init, d_init)},
                **{f'drift_enc/{j}': v / eval_seqs for j, v in zip(steps_enc, d_enc)})


def checkpoint(val):
    if phase == 'smt':
        sync_rnn()  # a checkpoint's RNN is always usable on its own
    ck = {'trainer': phase, 'phase': phase, 'iter_num': iter_num, 'config': config, 'val': val,
          'meta': data_meta(dataset, data),
          'rnn_args': asdict(rnn_cfg), 'rnn': raw_module(rnn).state_dict(),
          'teacher_args': asdict(teacher_cfg), 'teacher': teacher.state_dict(), 'optimizer': optimizer.state_dict()}
    save_checkpoint(os.path.join(out_dir, 'ckpt.pt'), ck)
    if phase == 'smt' and iter_num == max_iters and dmt_iters:
        save_checkpoint(os.path.join(out_dir, 'ckpt_smt.pt'), ck)  # DMT overwrites ckpt.pt: keep SMT's result


# -----------------------------------------------------------------------------
# training loop: max_iters SMT steps, then dmt_iters DMT steps
if master:
    print(f"SMT on {dataset} ({data.describe()}) | {device_name(dev)} x "
          f"{sys_['world_size']} | teacher {teacher.num_params() / 1e6:.2f}M params, RNN {rnn.num_params() / 1e6:.2f}M "
          f"({backbone}, memory {n_mem}x{d_model}) | global batch {batch_size * gradient_accumulation_steps} windows "
          f"of Tc={context_len} + Tf={future_len} | {encoder_type} encoder, {labels_per_window} label(s) per window"
          + (f" | then {dmt_iters} DMT steps" if dmt_iters else ""))
    print(f"baselines on the validation sequences: unigram {unigram_bits:.3f}, bigram {bigram_bits:.3f} bits/token")
    os.makedirs(out_dir, exist_ok=True)
logger = Logger(wandb_log, wandb_project, wandb_run_name, config, master)
total_iters = max_iters + dmt_iters
dmt_plan = batch_plan(gradient_accumulation_steps, dmt_batch_size, sys_['rank'], sys_['world_size'])
n_labels = len(range(dmt_label_every - 1, dmt_rollout_len, dmt_label_every))
# training FLOPs of one step. SMT: smt_flops_per_window (the readout is not trained). DMT, per row: Td RNN steps
# and readouts, and the teacher's label passes (forward only: a third).
smt_flops = batch_size * gradient_accumulation_steps * smt_flops_per_window(teacher_cfg, rnn.step_flops(),
                                                                            labels_per_window)
dmt_flops = dmt_batch_size * gradient_accumulation_steps * (
    dmt_rollout_len * (rnn.step_flops() + transformer_flops(n_dec_layer, d_model, n_mem))
    + (n_labels + 1) * transformer_flops(n_enc_layer, d_model, context_len + n_mem) / 3)
peak = peak_flops(dev)
start_iter = iter_num
clock = Throughput()
while True:
    out_of_time = time_is_up(max_time, clock, sys_)
    milestone = iter_num % eval_interval == 0 or iter_num in (max_iters, total_iters) or out_of_time
    starting_point = iter_num == start_iter and init_from not in ('scratch', 'resume')  # record where we began
    if (milestone and iter_num > start_iter) or starting_point or eval_only:
        val = evaluate()
        if master:
            drift = lambda key: ' '.join(f"{k.split('/')[1]}:{v:.4f}" for k, v in val.items() if k.startswith(key))
            from_enc = '' if math.isnan(val['rnn_enc_bits']) else f", {val['rnn_enc_bits']:.4f} (from the encoder's memory)"
            print(f"eval {iter_num} ({phase}): rnn {val['rnn_bits']:.4f} bits/token (alone, from its initial memory)"
                  f"{from_enc} | teacher next-token {val['teacher_bits']:.4f}"
                  f" | val dec {val['dec']:.4f} dyn {val['dyn']:.5f} unif {val['unif']:.3f} | unigram "
                  f"{unigram_bits:.3f} bigram {bigram_bits:.3f}\n  drift MSE(m^_t, m_t) after t steps, from the "
                  f"initial memory {drift('drift_init/')} | from the encoder {drift('drift_enc/')}")
            logger.log({f'val/{k}': v for k, v in val.items()}, step=iter_num)
            if not eval_only:
                checkpoint(val)
        clock.restart()  # evaluation time counts neither in the throughput nor in max_time
    if iter_num >= total_iters or out_of_time or eval_only:
        break
    if phase == 'smt' and iter_num >= max_iters:  # SMT is over: fine-tune the RNN alone on its own states
        sync_rnn()
        phase = 'dmt'
        optimizer, train_step = start_phase(phase)
        if master:
            print(f"DMT: {dmt_iters} steps, rollouts of {dmt_rollout_len} from the {dmt_start} start(s), a label every "
                  f"{dmt_label_every} steps, {'BPTT through' if dmt_bptt else 'detached state at every step of'} the "
                  f"rollout")
    if phase == 'smt':
        lr = lr_at(iter_num, max_iters, learning_rate, warmup_frac, lr_decay, min_lr)
    else:
        lr = lr_at(iter_num - max_iters, dmt_iters, dmt_learning_rate, warmup_frac, dmt_lr_decay, 0.0)
    set_lr(optimizer, lr)

    # one optimisation step over the global batch; this process takes its share of the micro-batches
    my_plan = plan if phase == 'smt' else dmt_plan
    terms = torch.zeros(3 if phase == 'smt' else 2, device=dev)
    n_trans = 0  # real labelled transitions trained by this process in this iteration (SMT)
    for index, rows in micro_steps(train_step, my_plan, sys_):
        if phase == 'smt':
            *inputs, n = get_batch(iter_num, index, rows)
            n_trans += n
        else:
            with ctx:
                inputs = dmt_targets(*get_dmt_batch(iter_num, index, rows))  # teacher labels, no gradient
        with ctx:
            loss, t = train_step(*inputs)
        (loss / len(my_plan)).backward()
        terms += t / len(my_plan)
    # clip separately, so the teacher's large early gradients do not shrink the RNN's updates (0: no clipping)
    rnn_norm = clip_grads([p for p in rnn.parameters() if p.requires_grad], grad_clip)
    teacher_norm = clip_grads([p for p in teacher.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1

    dt = clock.tick(iter_num, start_iter)
    if iter_num % log_interval == 0:
        terms = all_reduce_sum(terms, sys_).div(sys_['world_size']).tolist()  # every rank takes part
        if master:
            if phase == 'smt':
                dec, dyn, unif = terms
                loss_val, rows = w_dec * dec + w_dyn * dyn + w_unif * unif, batch_size * gradient_accumulation_steps
                tok_s, trans_s = rows * window / dt, n_trans * sys_['world_size'] / dt  # real labelled transitions
                parts, flops = f"dec {dec:.4f} dyn {dyn:.5f} unif {unif:.3f}", smt_flops
                metrics = {'train/dec': dec, 'train/dyn': dyn, 'train/unif': unif}
            else:
                mse, ce = terms
                loss_val, rows = dmt_w_mse * mse + dmt_w_ce * ce, dmt_batch_size * gradient_accumulation_steps
                tok_s = trans_s = rows * dmt_rollout_len / dt  # every rolled-out token is one RNN transition
                parts, flops = f"mse {mse:.5f} ce {ce:.4f}", dmt_flops
                metrics = {'train/dmt_mse': mse, 'train/dmt_ce': ce}
            _, mfu = rates(dt, 0, flops, peak)
            print(f"iter {iter_num}: loss {loss_val:.4f} ({phase}: {parts}) | {tok_s:,.0f} tok/s {trans_s:,.0f} "
                  f"trans/s | mfu {mfu} | lr {lr:.2e} | {dt * 1000:.0f} ms | eta {clock.eta(iter_num, total_iters, max_time)}")
            logger.log({'train/loss': loss_val, **metrics, 'lr': lr, 'tokens_per_s': tok_s, 'transitions_per_s': trans_s,
                        'grad_norm/rnn': rnn_norm.item(), 'grad_norm/teacher': teacher_norm.item()}, step=iter_num)

logger.finish()
cleanup_system(sys_)
