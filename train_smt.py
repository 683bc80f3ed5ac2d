"""
Supervised Memory Training (Kumar & Isola, arXiv 2606.06479): pretrain an RNN without backpropagation through time.

A Transformer teacher encodes the last Tc tokens into a memory m_t and must predict the next Tf tokens from it
(L_dec); the RNN learns the one-step transition (m_t, x_{t+1}) -> m_{t+1} by regression on the teacher's memories
(L_dyn); a uniformity term keeps the memory space spread out (L_unif). All three train jointly, no stop-gradient:

    L = w_dec * L_dec + w_dyn * L_dyn + w_unif * L_unif        (1.0 / 0.1 / 0.001)

Every transition is one step of the RNN from a teacher memory, so training is time-parallel: nothing unrolls.
The objective itself is encoder.SMTObjective; this script samples windows, steps the optimizer, evaluates, saves.
The default teacher is causal: every window gives labels_per_window transitions from one encoder pass, where the
paper's reference encoder (--encoder_type=reference, config/lm.py) gives one from two (docs/method.md, section 2).
After SMT, train_dmt.py fine-tunes the RNN alone on its own states (DMT): `python train_smt.py && python train_dmt.py`.
The RNN's readout and initial memory are not trained here: they are copied from the teacher's decoder and from its
memory of the empty past (sync_rnn), whenever the RNN is evaluated or saved.

    python train_smt.py                                   # the CPU recipe: these globals
    python train_smt.py config/lm.py                      # the paper's LM scale, on a GPU
    python train_smt.py --encoder_type=reference --labels_per_window=1 --band=0 --decoded_labels=0 --dyn_labels=0
    torchrun --standalone --nproc_per_node=8 train_smt.py config/lm.py
"""
import os
import sys
from dataclasses import asdict

import torch

import configurator
from checkpoint import (EXACT_KEYS, StopSignals, check_finite, check_resume_iters, claim_out_dir, resume_from,
                        save_checkpoint, start_from)
from common import (RNN_RULES, TRAIN_RULES, Logger, Throughput, all_reduce_sum, all_reduce_sums, batch_plan,
                    cleanup_system, clip_grads, compile_mode, device_name, lr_at, make_optimizer, micro_steps,
                    peak_flops, rates, raw_module, set_lr, setup_system, time_is_up, wrap_model)
from configurator import at_least, between, int_list, one_of, satisfies
from data import data_meta, eval_sequences, load_data, need_tokens, step_generator, whole_windows
from encoder import (ENCODER_TYPES, SMTObjective, Teacher, TeacherConfig, draw_labels, future_targets, label_valid,
                     memory_plan, rope_len, smt_flops_per_window, uniformity_indices)
from metrics import format_drift, format_rnn_report, rnn_report, teacher_window_bits
from model import RNN, RNNConfig, cell_memory_tokens

# -----------------------------------------------------------------------------
# defaults: the CPU recipe (7 minutes of SMT on 2 cores, then `python train_dmt.py`); config/lm.py is the paper's scale
out_dir = 'out-shakespeare'
init_from = 'auto'  # 'scratch', 'resume' (from out_dir/ckpt.pt), 'auto' (resume if there is one, else scratch), or a
# checkpoint's path: a new run from its weights, on this run's data and lengths (a length curriculum)
overwrite = False  # init_from='scratch' into an out_dir that holds a checkpoint: refused unless True
allow_changes = False  # a resume with other training settings (EXACT below): refused unless True
eval_interval = 250
log_interval = 25
eval_only = False
wandb_log = False
wandb_project = 'smt'
wandb_run_name = 'smt'
# data
dataset = 'shakespeare'
batch_size = 4  # windows per micro-step per process
gradient_accumulation_steps = 1  # global: divided among DDP processes, so the global batch does not depend on N
short_ctx_frac = 0.25  # fraction of windows whose past is cut to a uniform length in [0, Tc): see docs/method.md
# teacher: 'reference' is the paper's bidirectional encoder, one labelled transition per window from two passes;
# 'causal' labels labels_per_window transitions of a window from one pass (docs/method.md, section 2)
encoder_type = 'causal'
labels_per_window = 128  # L labelled transitions per window, 1 <= L <= Tc (the reference encoder: 1)
decoded_labels = 48  # the decoder reads this many of a window's labels, those with a target in their future first
# (0: all)
dyn_labels = 32  # the RNN regresses this many of a window's transitions, drawn at random (0: all)
band = 64  # each attention reads at most the last `band` tokens (0: the whole window): a memory is then a function
# of a fixed span of the stream, the teacher's reach (Teacher.reach), so its labels also teach the RNN to forget
token_shift = False  # each context token's encoder input also holds a learned map of its predecessor's embedding
# model
backbone = 'transformer'  # the RNN's updater: transformer, mlp, gru, lstm, mingru (model.BACKBONES)
n_mem = 4  # K memory tokens
d_model = 128  # their width, and the width of every Transformer
n_head = 4
hidden = 0  # the cells (gru, lstm, mingru) sized as users size them: each layer's state width; it sets n_mem (0: off)
n_enc_layer = 1  # a shallow teacher makes more steps in a short budget
n_dec_layer = 1  # the decoder, which becomes the RNN's readout
n_rnn_layer = 2
context_len = 128  # Tc: the tokens of past a window holds, the encoder's input
future_len = 8  # Tf: the tokens the decoder predicts from a memory
# SMT objective
w_dec = 1.0
w_rnn_ce = 0.0  # weight of the decoder's next-token CE read from the RNN's one-step memories (0: logged only)
w_present = 0.0  # weight of L_present: each memory's present token read back by a linear head (0: no head). The next
# step reads x_{t+1} beside m_t; what it needs of x_t (a marker before a value) the memory must hold (docs/results.md)
w_context_lm = 0.0  # weight of L_context_lm: the causal encoder's context tokens each predict their next token through
# a linear head (0: no head), a target at every token of a window where L_dec reads a few labels (docs/method.md)
w_dyn = 0.1
dyn_steps = 1  # the RNN's steps from each regressed label, each regressed onto the teacher's memory, with gradients
# through them (> 1: a short unroll, parallel over labels, so one step's error is judged by what it does to the next)
dyn_noise = 0.0  # L_dyn's step reads m_t plus Gaussian noise of this std (relative to m_t's RMS), so the RNN learns to
# pull drifted states back onto the teacher's (0: the clean memory)
w_unif = 0.001
# optimizer
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 420.0  # seconds of training (evals excluded) after which the run evaluates, saves and stops; 0: no limit
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # applied separately to the RNN's and to the teacher's gradients; 0 disables
warmup_frac = 0.01
lr_decay = 'cosine'  # 'cosine' anneals over max_time (or max_iters) down to min_lr; or 'constant'
min_lr = 0.0
# evaluation: fixed validation windows (teacher, SMT losses) and fixed sequences (the RNN alone)
eval_windows = 128
eval_seqs = 16
eval_seq_len = 256
drift_steps = '1,4,16,64,256'  # rollout steps at which eval reports the drift MSE(m^_t, m_t)
# system
device = 'auto'
dtype = 'auto'  # bf16 autocast where the device runs it fast (CUDA, a CPU with AVX512), else float32
compile = 'auto'  # 'auto' (regional, on CUDA only), 'True' (the whole step), 'False', 'regional' (common.compile_mode)
seed = 1337
config = configurator.load(globals(), sys.argv[1:])
# -----------------------------------------------------------------------------
UNIF_TOKENS = 512  # memory tokens the uniformity loss compares (a random subset of the batch's: it is quadratic)

CAUSAL = "needs --encoder_type=causal"
RULES = {**TRAIN_RULES, **RNN_RULES,  # every key, checked before any work: 'error: key=value: what is wrong; the fix'
    'short_ctx_frac': between(0.0, 1.0), 'encoder_type': one_of(*ENCODER_TYPES), 'n_enc_layer': at_least(1),
    'context_len': at_least(1), 'future_len': at_least(1),
    'labels_per_window': [satisfies(lambda v, c: 1 <= v <= c['context_len'],
                                    "must be in [1, context_len={context_len}]",
                                    "use 1 <= labels_per_window <= context_len"),
                          satisfies(lambda v, c: v == 1 or c['encoder_type'] == 'causal',
                                    f"{CAUSAL} (the reference encoder makes one transition per window from two full "
                                    f"passes)", "add --encoder_type=causal")],
    'decoded_labels': [satisfies(lambda v, c: 0 <= v <= c['labels_per_window'],
                                 "must be in [0, labels_per_window={labels_per_window}] (0: all)",
                                 "use 0 <= decoded_labels <= labels_per_window"),
                       satisfies(lambda v, c: v == 0 or c['encoder_type'] == 'causal',
                                 f"{CAUSAL} (it picks among a causal window's labels)", "add --encoder_type=causal")],
    'dyn_labels': [satisfies(lambda v, c: 0 <= v <= c['labels_per_window'],
                             "must be in [0, labels_per_window={labels_per_window}] (0: all)",
                             "use 0 <= dyn_labels <= labels_per_window"),
                   satisfies(lambda v, c: v == 0 or c['encoder_type'] == 'causal',
                             f"{CAUSAL} (it picks among a causal window's transitions)", "add --encoder_type=causal")],
    'band': [at_least(0), satisfies(lambda v, c: v == 0 or c['encoder_type'] == 'causal',
                                    f"{CAUSAL} (0: no band)", "add --encoder_type=causal, or use band=0")],
    'w_dec': at_least(0.0), 'w_dyn': at_least(0.0), 'w_unif': at_least(0.0), 'w_rnn_ce': at_least(0.0),
    'w_present': at_least(0.0), 'dyn_noise': at_least(0.0),
    'dyn_steps': [satisfies(lambda v, c: 1 <= v <= c['labels_per_window'], "must be in [1, labels_per_window]",
                            "use 1 <= dyn_steps <= labels_per_window"),
                  satisfies(lambda v, c: v == 1 or c['encoder_type'] == 'causal',
                            f"{CAUSAL} (a chain runs over a window's labels)", "add --encoder_type=causal")],
    'w_context_lm': [at_least(0.0), satisfies(lambda v, c: v == 0 or c['encoder_type'] == 'causal',
                                              f"{CAUSAL} (its context tokens' states are causal)",
                                              "add --encoder_type=causal, or use w_context_lm=0")],
    'eval_windows': at_least(1), 'drift_steps': int_list(1),
}
configurator.check(config, RULES)
if hidden:
    n_mem = config['n_mem'] = cell_memory_tokens(backbone, hidden, n_rnn_layer, d_model)
# a resume must match these (the first that differs is named); DMT from a checkpoint: train_dmt.py
ARCH_KEYS = ('backbone', 'hidden', 'n_mem', 'd_model', 'n_head', 'n_enc_layer', 'n_dec_layer', 'n_rnn_layer',
             'context_len', 'future_len', 'encoder_type', 'band', 'token_shift', 'dataset')
# a resume keeps these too, or it would not continue exactly (refused unless allow_changes=True)
EXACT = EXACT_KEYS + ('short_ctx_frac', 'labels_per_window', 'decoded_labels', 'dyn_labels', 'w_dec', 'w_rnn_ce',
                      'w_dyn', 'w_unif', 'w_present', 'dyn_noise', 'w_context_lm', 'dyn_steps')
init_from = config['init_from'] = claim_out_dir(out_dir, init_from, overwrite)  # lock; no silent overwrite
signals = StopSignals(out_dir, init_from == 'resume')  # from here on SIGINT/SIGTERM save the last step and exit

sys_ = setup_system(device, dtype, seed)
master, dev, ctx = sys_['master'], sys_['device'], sys_['ctx']
plan = batch_plan(gradient_accumulation_steps, batch_size, sys_['rank'], sys_['world_size'])
try:
    data = load_data(dataset, sys_)
    window = context_len + future_len  # a training window: Tc tokens of past ending at x_t, then x_{t+1} .. x_{t+Tf}
    need_tokens(data, 'train', window, 'context_len + future_len')  # stop here, naming the split and the key
    need_tokens(data, 'val', window, 'context_len + future_len')
    need_tokens(data, 'val', eval_seq_len, 'eval_seq_len')
    # evaluation data: the same validation tokens every time (windows for the SMT losses, sequences for the RNN)
    val_windows = data.smt_windows('val', eval_windows, context_len, future_len, 0.0,
                                   torch.Generator().manual_seed(seed + 1), labels_per_window)
    whole = whole_windows(data, labels_per_window)  # each window an episode or image whole
    val_x, val_y = eval_sequences(data, eval_seqs, eval_seq_len)
except ValueError as e:
    configurator.fail(str(e))
vocab_size = data.vocab_size

max_pos = rope_len(context_len, n_mem, future_len)
rnn_cfg = RNNConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                    n_rnn_layer=n_rnn_layer, n_dec_layer=n_dec_layer, max_pos=max_pos)
teacher_cfg = TeacherConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                            encoder_type=encoder_type, n_enc_layer=n_enc_layer, n_dec_layer=n_dec_layer,
                            context_len=context_len, future_len=future_len, band=band, token_shift=token_shift,
                            present_head=w_present > 0, context_head=w_context_lm > 0, max_pos=max_pos)


def get_batch(iter_num, index, rows):
    """Rows `rows` of micro-batch `index` of the global batch at iter_num: windows, their context lengths, the
    memory tokens that enter the uniformity loss, the labels the decoder reads and the RNN regresses, the memories
    the encoder computes, and the number of real labelled transitions (for trans/s; known here, so no device sync)."""
    g = step_generator(seed, iter_num, index)
    x, y, n_ctx = data.smt_windows('train', batch_size, context_len, future_len, short_ctx_frac, g, labels_per_window)
    valid = label_valid(n_ctx, labels_per_window)

    # the decoder reads the labels with a target in their future window first (episodes: few have one; text: all)
    dec_idx = draw_labels(decoded_labels, future_targets(y, context_len, labels_per_window, future_len), g)
    # the transitions the RNN regresses, drawn independently and uniformly: labels without a real past are drawn as
    # often as on a window with its whole past (and left out of the loss), so short pasts do not weigh more
    # (with dyn_steps > 1 among the labels whose chain ends within the window)
    dyn_idx = draw_labels(dyn_labels, torch.ones_like(valid[:, :labels_per_window - dyn_steps + 1]), g)
    mem_idx = (memory_plan(labels_per_window, batch_size, dec_idx, dyn_idx, dyn_steps) if encoder_type == 'causal'
               else None)
    unif_idx = uniformity_indices(n_ctx[rows], labels_per_window, n_mem, UNIF_TOKENS, g,
                                  None if mem_idx is None else mem_idx[rows])
    n_trans = int((valid[:, :labels_per_window - dyn_steps + 1] if dyn_idx is None
                   else valid.gather(1, dyn_idx))[rows].sum()) * dyn_steps
    # L_dyn's input noise, standard normal, one (K, d) draw per regressed transition
    R = labels_per_window - dyn_steps + 1 if dyn_idx is None else dyn_idx.size(1)
    noise = torch.randn(batch_size, R, n_mem, d_model, generator=g) if dyn_noise else None
    batch = [t if t is None else t[rows] for t in (x, y, n_ctx, dec_idx, dyn_idx, mem_idx, noise)]
    x, y, n_ctx, dec_idx, dyn_idx, mem_idx, noise = [t if t is None else t.to(dev, non_blocking=True) for t in batch]
    return [x, y, n_ctx, unif_idx.to(dev), dec_idx, dyn_idx, mem_idx, noise, n_trans]


# -----------------------------------------------------------------------------
# model, optimizer, resume
try:
    teacher, rnn = Teacher(teacher_cfg), RNN(rnn_cfg)
except ValueError as e:  # sizes a backbone cannot split its memory into
    configurator.fail(str(e))
iter_num = 0
ckpt = None
if init_from == 'resume':
    ckpt = resume_from(out_dir, {'rnn': rnn_cfg, 'teacher': teacher_cfg}, ('smt',), config, ARCH_KEYS,
                       () if eval_only else EXACT)
    teacher.load_state_dict(ckpt['teacher'])
    rnn.load_state_dict(ckpt['rnn'])
    iter_num = ckpt['iter_num'] if eval_only else check_resume_iters(ckpt, max_iters, 'max_iters', f"{out_dir}/ckpt.pt",
                                                                          max_time)
elif init_from != 'scratch':  # another run's weights; its optimizer and schedule stay behind
    weights = start_from(init_from, {'rnn': rnn_cfg, 'teacher': teacher_cfg}, ('smt', 'dmt'))
    teacher.load_state_dict(weights['teacher'])
    rnn.load_state_dict(weights['rnn'])
    weights = None
clock = Throughput(ckpt.get('train_seconds', 0.0) if ckpt else 0.0)  # a time-budgeted schedule continues where it was
teacher.to(dev)
rnn.to(dev)
# SMT trains the teacher and the RNN's embedding and updater; the RNN's readout and initial memory are copies of
# teacher parts (sync_rnn), frozen so they stay out of the optimizer and out of DDP's gradient buckets
rnn.m0.requires_grad_(False)
rnn.readout.requires_grad_(False)
smt = SMTObjective(teacher, rnn, w_dec, w_dyn, w_unif, labels_per_window, w_rnn_ce=w_rnn_ce, w_present=w_present,
                   dyn_noise=dyn_noise, w_context_lm=w_context_lm, dyn_steps=dyn_steps)
optimizer = make_optimizer(smt.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
if ckpt is not None:
    optimizer.load_state_dict(ckpt['optimizer'])
ckpt = None  # free the memory
# SMT's RNN takes one step, written without cuDNN for every backbone: the whole objective compiles as one graph
# (tests/test_compile.py), or block by block with compile='regional'
train_step = wrap_model(smt, compile_mode(compile, sys_['device_type']), sys_)


@torch.no_grad()
def sync_rnn():
    """Copy the teacher's decoder into the RNN's readout and the teacher's memory of the empty past into the RNN's
    initial memory: after this the RNN runs alone, no encoder needed."""
    rnn.readout.load_state_dict(teacher.decoder.state_dict())
    empty = torch.zeros(1, context_len, dtype=torch.long, device=dev)
    rnn.m0.copy_(teacher.encode_raw(empty, torch.zeros(1, dtype=torch.long, device=dev))[0].float())


# -----------------------------------------------------------------------------
# evaluation: the SMT losses on fixed windows, the RNN alone on fixed sequences (metrics.rnn_report)
unigram_bits, bigram_bits = data.baselines(val_x, val_y)
DRIFT_STEPS = [int(s) for s in drift_steps.split(',')]

TERMS = (('dec', 'dyn', 'unif', 'dyn_rel', 'rnn_ce') + (('present',) if w_present else ())
         + (('context_lm',) if w_context_lm else ()))  # SMTObjective's terms, in its order


@torch.no_grad()
def evaluate():
    """On the validation windows (full past): the SMT losses, each process taking its share and the sums
    all-reduced, and the teacher's next-token CE. On the validation sequences: metrics.rnn_report (the RNN from its
    initial memory and from the teacher's memory of the first Tc tokens, and the drift of both rollouts)."""
    smt.eval()
    sync_rnn()
    sums = dict.fromkeys(TERMS + ('windows',), 0.0)  # each term x windows, and the windows
    mine = list(range(sys_['rank'], eval_windows, sys_['world_size']))
    for i in range(0, len(mine), batch_size):
        x, y, n_ctx = (v[mine[i:i + batch_size]].to(dev) for v in val_windows)
        idx = uniformity_indices(n_ctx.cpu(), labels_per_window, n_mem, UNIF_TOKENS,
                                 torch.Generator().manual_seed(0)).to(dev)
        with ctx:
            _, terms = smt(x, y, n_ctx, idx)
        for name, t in zip(TERMS, terms.double().cpu().tolist()):
            sums[name] += t * x.size(0)
        sums['windows'] += x.size(0)
    s = all_reduce_sums(sums, sys_)
    val = dict(**{name: s[name] / s['windows'] for name in TERMS},
               teacher_bits=teacher_window_bits(teacher, val_windows, sys_, ctx, batch_size, whole),
               **rnn_report(rnn, val_x, val_y, sys_, ctx, batch_size, teacher, DRIFT_STEPS))
    smt.train()
    return val


def checkpoint(val):
    sync_rnn()  # a checkpoint's RNN is always usable on its own
    save_checkpoint(os.path.join(out_dir, 'ckpt.pt'), {
        'trainer': 'smt', 'iter_num': iter_num, 'train_seconds': clock.train_seconds, 'config': config, 'val': val, 'meta': data_meta(dataset, data),
        'rnn_args': asdict(rnn_cfg), 'rnn': raw_module(rnn).state_dict(),
        'teacher_args': asdict(teacher_cfg), 'teacher': teacher.state_dict(), 'optimizer': optimizer.state_dict()})


# -----------------------------------------------------------------------------
# training loop
if master:
    print(f"SMT on {dataset} ({data.describe()}) | {device_name(dev)} x "
          f"{sys_['world_size']} | teacher {teacher.num_params() / 1e6:.2f}M params, RNN {rnn.num_params() / 1e6:.2f}M "
          f"({backbone}, memory {n_mem}x{d_model}) | global batch {batch_size * gradient_accumulation_steps} windows "
          f"of Tc={context_len} + Tf={future_len} | {encoder_type} encoder reaching {teacher.reach()} tokens, "
          f"{labels_per_window} label(s) per window")
    print(f"baselines on the validation sequences: unigram {unigram_bits:.3f}, bigram {bigram_bits:.3f} bits/token")
logger = Logger(wandb_log, wandb_project, wandb_run_name, config, master)
rows_per_iter = batch_size * gradient_accumulation_steps
# training FLOPs of one step: smt_flops_per_window (the readout is not trained)
flops_per_iter = rows_per_iter * smt_flops_per_window(teacher_cfg, rnn.step_flops(), labels_per_window, decoded_labels,
                                                     dyn_labels, dyn_steps=dyn_steps)
peak = peak_flops(dev)
start_iter = iter_num
clock.restart()  # the steps' time counts from here
while True:
    out_of_time = time_is_up(max_time, clock, sys_)
    milestone = iter_num % eval_interval == 0 or iter_num == max_iters or out_of_time
    if (milestone and iter_num > start_iter) or eval_only:
        val = evaluate()
        check_finite(val, iter_num, 'the eval', f"learning_rate={learning_rate}", sys_['dtype'], out_dir)  # no save
        if master:
            print(f"eval {iter_num} (smt, {clock.train_seconds:.1f} s): {format_rnn_report(val)} | teacher next-token {val['teacher_bits']:.4f}"
                  f" | val dec {val['dec']:.4f} dyn {val['dyn']:.5f} (rel {val['dyn_rel']:.4f}) unif {val['unif']:.3f} | unigram "
                  f"{unigram_bits:.3f} bigram {bigram_bits:.3f}\n  {format_drift(val)}")
            logger.log({f'val/{k}': v for k, v in val.items()}, step=iter_num)
            if not eval_only:
                checkpoint(val)
        clock.restart()  # evaluation time counts neither in the throughput nor in max_time
    if iter_num >= max_iters or out_of_time or eval_only:
        break
    if signals.requested(sys_):  # the last step is complete: save it (no eval) and exit
        signals.stop(iter_num, start_iter, lambda: checkpoint(None), sys_)
    lr = lr_at(iter_num, max_iters, learning_rate, warmup_frac, lr_decay, min_lr, clock.train_seconds, max_time)
    set_lr(optimizer, lr)

    # one optimisation step over the global batch; this process takes its share of the micro-batches
    terms = torch.zeros(len(TERMS), device=dev)
    n_trans = 0  # real labelled transitions trained by this process in this iteration
    for index, rows in micro_steps(train_step, plan, sys_):
        *inputs, n = get_batch(iter_num, index, rows)
        n_trans += n
        with ctx:
            loss, t = train_step(*inputs)
        (loss / len(plan)).backward()
        terms += t / len(plan)
    # clip separately, so the teacher's large early gradients do not shrink the RNN's updates (0: no clipping)
    rnn_norm = clip_grads([p for p in rnn.parameters() if p.requires_grad], grad_clip)
    teacher_norm = clip_grads(teacher.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1

    dt = clock.tick(iter_num, start_iter)
    if iter_num % log_interval == 0:
        t = dict(zip(TERMS, all_reduce_sum(terms, sys_).div(sys_['world_size']).tolist()))
        check_finite(t, iter_num, 'the train loss', f"learning_rate={learning_rate}", sys_['dtype'], out_dir)
        dec, dyn, unif, dyn_rel, rnn_ce = (t[k] for k in TERMS[:5])
        present, context_lm = t.get('present', 0.0), t.get('context_lm', 0.0)
        if master:
            loss_val = (w_dec * dec + w_dyn * dyn + w_unif * unif + w_rnn_ce * rnn_ce + w_present * present
                        + w_context_lm * context_lm)
            tok_s, mfu = rates(dt, rows_per_iter * window, flops_per_iter, peak)
            trans_s = n_trans * sys_['world_size'] / dt  # real labelled transitions
            print(f"iter {iter_num}: loss {loss_val:.4f} (smt: dec {dec:.4f} dyn {dyn:.5f} (rel {dyn_rel:.4f}) "
                  f"unif {unif:.3f} rnn_ce {rnn_ce:.4f}"
                  f"{f' present {present:.4f}' if w_present else ''}"
                  f"{f' context_lm {context_lm:.4f}' if w_context_lm else ''}) | "
                  f"{tok_s:,.0f} tok/s {trans_s:,.0f} trans/s | mfu {mfu} | lr {lr:.2e} | {dt * 1000:.0f} ms | "
                  f"eta {clock.eta(iter_num, max_iters, max_time)}")
            logger.log({'train/loss': loss_val, **{f'train/{k}': v for k, v in t.items()}, 'lr': lr,
                        'tokens_per_s': tok_s, 'transitions_per_s': trans_s, 'grad_norm/rnn': rnn_norm.item(),
                        'grad_norm/teacher': teacher_norm.item()}, step=iter_num)

logger.finish()
cleanup_system(sys_)
