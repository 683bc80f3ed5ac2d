"""
The baseline SMT is measured against: the same RNN (token embedding, updater backbone, readout, learned initial
memory) trained by backpropagation through time. Each training sequence is a window of block_size tokens; the RNN
starts from its learned initial memory m0, reads the window with teacher forcing, and every memory predicts the
next token through the readout:

    m_0 = m0,   m_{t+1} = step(m_t, x_t),   L = mean_t CE(readout(m_{t+1}), y_t)

The gradient of every position's loss flows back through all the steps before it, down to m0. With stateful=True
(truncated BPTT) each batch row instead reads consecutive windows of its own lane of the stream and starts each window
from the memory the last one ended in, detached: the RNN sees pasts longer than one window, the gradient stops at the
boundary, and a lane restarts from m0 now and then (reset_prob) so that m0 stays trained. The unroll uses the
backbone's fastest whole-sequence path (cuDNN for gru/lstm, a parallel scan for mingru, the step loop otherwise) and
computes only what the readout reads (RNN.run_logits: with the linear head a cell's h, and the last memory to
carry), so the baseline is as strong as BPTT can be. Same data, configs, logging and checkpoint format as
train_smt.py: sample.py and eval.py read both trainers' checkpoints alike.

    python train_bptt.py                                   # CPU, Shakespeare bytes: the recipe's RNN
    python train_bptt.py --backbone=gru
    python train_bptt.py config/shakespeare_lstm.py        # a classic LSTM(512); config/shakespeare_gru.py the GRU
    torchrun --standalone --nproc_per_node=8 train_bptt.py config/lm_bptt.py
"""
import os
import sys
from dataclasses import asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

import configurator
from checkpoint import (EXACT_KEYS, StopSignals, check_finite, check_resume_iters, claim_out_dir, resume_from,
                        save_checkpoint, start_from)
from common import (RNN_RULES, TRAIN_RULES, Logger, Throughput, all_reduce_sum, batch_plan, cleanup_system,
                    clip_grads, compile_mode, device_name, lr_at, make_optimizer, micro_steps, peak_flops, rates,
                    raw_module, set_lr, setup_system, time_is_up, wrap_model)
from configurator import at_least, between, one_of
from data import data_meta, eval_sequences, load_data, need_tokens, step_generator
from metrics import format_rnn_report, rnn_report
from model import RNN, RNNConfig, cell_memory_tokens

# -----------------------------------------------------------------------------
# defaults: BPTT of the CPU recipe's RNN (train_smt.py's defaults) for the recipe's 8 minutes; config/lm_bptt.py is
# the paper's scale, config/shakespeare_lstm.py and config/shakespeare_gru.py the classic cells
out_dir = 'out-shakespeare-bptt'
init_from = 'auto'  # 'scratch', 'resume' (from out_dir/ckpt.pt), 'auto' (resume if there is one, else scratch), or a
# checkpoint's path: a new run from its RNN's weights, on this run's data and lengths (a length curriculum)
overwrite = False  # init_from='scratch' into an out_dir that holds a checkpoint: refused unless True
allow_changes = False  # a resume with other training settings (EXACT below): refused unless True
eval_interval = 100
log_interval = 25
eval_only = False
wandb_log = False
wandb_project = 'smt'
wandb_run_name = 'bptt-shakespeare'
# data
dataset = 'shakespeare'
batch_size = 32  # sequences per micro-step per process
gradient_accumulation_steps = 1  # global: divided among DDP processes, so the global batch does not depend on N
block_size = 64  # tokens per training window: BPTT unrolls this far
stateful = True  # truncated BPTT: each batch row reads its own lane of the stream window after window and carries
# its memory across the boundary (detached there); False: every window starts afresh from the initial memory
reset_prob = 0.05  # stateful: chance per window that a lane jumps to a random offset and restarts from the initial
# memory, so the RNN also learns to start from it (evaluation does)
# model (the same RNN as train_smt.py's; there is no teacher)
backbone = 'transformer'  # the updater: transformer, mlp, gru, lstm, mingru (model.BACKBONES)
n_mem = 4  # K memory tokens
d_model = 128  # the width of a memory token and of the input embedding
n_head = 4  # the Transformer's (updater or decoder readout); the cells with a linear readout have none
hidden = 0  # the cells (gru, lstm, mingru) sized as users size them: each layer's state width (the LSTM has h and c
# of that width); it sets n_mem (the memory stores the states as tokens of d_model). 0: n_mem and d_model
n_dec_layer = 1  # the readout's layers: the recipe's teacher decoder, which SMT copies into its RNN
n_rnn_layer = 2
readout = 'decoder'  # 'decoder': the teacher decoder's shape, as SMT's RNN has; 'linear': the classic RNN head
# optimizer
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 480.0  # seconds of training (evals excluded) after which the run evaluates, saves and stops; 0: no limit
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 disables; BPTT's gradients can explode over long unrolls
warmup_frac = 0.01
lr_decay = 'cosine'  # 'cosine' anneals over max_time (or max_iters) down to min_lr; or 'constant'
min_lr = 0.0
# evaluation: fixed sequences, the RNN alone from its initial memory (as in train_smt.py)
eval_seqs = 16
eval_seq_len = 256
# system
device = 'auto'
dtype = 'float32'  # not 'auto': BPTT trains worse in bf16 autocast (docs/results.md)
compile = 'auto'  # 'auto' (CUDA only), 'True' / 'regional' (the same here: RNN.compile_parts), 'False'
seed = 1337
config = configurator.load(globals(), sys.argv[1:])
# -----------------------------------------------------------------------------

RULES = {**TRAIN_RULES, **RNN_RULES,  # every key, checked before any work: 'error: key=value: what is wrong; the fix'
    'block_size': at_least(1), 'stateful': one_of(True, False), 'reset_prob': between(0.0, 1.0),
    'readout': one_of('decoder', 'linear'),
}
configurator.check(config, RULES)
if hidden:
    n_mem = config['n_mem'] = cell_memory_tokens(backbone, hidden, n_rnn_layer, d_model)
# a resume must match these (the first that differs is named; stateful: a stream's lanes are not carried over from a
# run that had none)
ARCH_KEYS = ('backbone', 'hidden', 'n_mem', 'd_model', 'n_head', 'n_dec_layer', 'n_rnn_layer', 'readout', 'dataset',
             'stateful')
EXACT = EXACT_KEYS + ('block_size', 'reset_prob')  # a resume keeps these too, or it would not continue exactly
init_from = config['init_from'] = claim_out_dir(out_dir, init_from, overwrite)  # lock; no silent overwrite
signals = StopSignals(out_dir, init_from == 'resume')  # from here on SIGINT/SIGTERM save the last step and exit

sys_ = setup_system(device, dtype, seed)
master, dev, ctx = sys_['master'], sys_['device'], sys_['ctx']
plan = batch_plan(gradient_accumulation_steps, batch_size, sys_['rank'], sys_['world_size'])
try:
    data = load_data(dataset, sys_)
    need_tokens(data, 'train', block_size, 'block_size')  # stop here, naming the split and the key
    need_tokens(data, 'val', eval_seq_len, 'eval_seq_len')
    # evaluation data: the same validation sequences as train_smt.py (same seed, count and length give the same tokens)
    val_x, val_y = eval_sequences(data, eval_seqs, eval_seq_len)
except ValueError as e:
    configurator.fail(str(e))
if stateful and data.meta.get('episodic'):
    configurator.fail(f"stateful=True carries the memory along a token stream; {dataset} is episodic: use stateful=False")
vocab_size = data.vocab_size
# the readout runs on the K memory tokens alone; max_pos matches train_smt.py's rule only where it must (K tokens)
rnn_cfg = RNNConfig(vocab_size=vocab_size, n_mem=n_mem, d_model=d_model, n_head=n_head, backbone=backbone,
                    n_rnn_layer=n_rnn_layer, n_dec_layer=n_dec_layer, readout=readout, max_pos=n_mem)


class BPTTObjective(nn.Module):
    """Mean next-token CE of the RNN unrolled over a window, gradients through every step. Each row starts from the
    initial memory (fresh) or from the memory its lane carried out of the previous window (stateful), detached: the
    gradient stops at the window boundary. One module, so that DDP sees a single forward. Returns the loss and the
    last memory of each row, detached, for the next window."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, y, m_carried, fresh):
        m = torch.where(fresh[:, None, None], self.rnn.initial_memory(x.size(0)), m_carried.detach())
        logits, m_last = self.rnn.run_logits(m, x)  # after each input; only what the readout reads at every step
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-1), m_last.detach()


# Stateful lanes: row r of micro-batch i reads the stream from lane_pos[i, r] on; lane_mem holds the memory it carried
# out of its last window. Every process advances every lane (the draws are a pure function of (seed, iter, index)),
# so the positions agree everywhere; each process fills lane_mem only for its own rows.
lane_pos = torch.zeros(gradient_accumulation_steps, batch_size, dtype=torch.long)
lane_mem = torch.zeros(gradient_accumulation_steps, batch_size, n_mem, d_model)


def advance_lanes(iter_num):
    """Move every lane to its next window (the one after its last) and say which start afresh: all at the first
    iteration, a reset_prob share at random, and any lane that would run off the end of the stream. lane_pos then
    holds where each lane reads at iter_num (a checkpoint saves it so)."""
    fresh = []
    n_start = len(data.train) - block_size - 1
    for i in range(gradient_accumulation_steps):
        g = step_generator(seed, iter_num, i)
        lane_pos[i] += block_size
        reset = (torch.rand(batch_size, generator=g) < reset_prob) | (lane_pos[i] > n_start) | (iter_num == 0)
        lane_pos[i] = torch.where(reset, torch.randint(n_start, (batch_size,), generator=g), lane_pos[i])
        fresh.append(reset)
    return fresh


def get_batch(iter_num, index, rows, fresh):
    """Rows `rows` of micro-batch `index` of the global batch at iter_num: random windows from the initial memory (a
    pure function of (seed, iter_num, index)), or with stateful=True each lane's next window and carried memory."""
    if stateful:
        x, y = data.windows_at('train', lane_pos[index], block_size)
        f = fresh[index]
    else:
        x, y = data.sequences('train', batch_size, block_size, step_generator(seed, iter_num, index))
        f = torch.ones(batch_size, dtype=torch.bool)
    return [v[rows].to(dev, non_blocking=True) for v in (x, y, lane_mem[index], f)]


# -----------------------------------------------------------------------------
# model, optimizer, resume
try:
    rnn = RNN(rnn_cfg)
except ValueError as e:  # sizes a backbone cannot split its memory into
    configurator.fail(str(e))
iter_num = 0
ckpt = None
if init_from == 'resume':
    ckpt = resume_from(out_dir, {'rnn': rnn_cfg}, ('bptt',), config, ARCH_KEYS, () if eval_only else EXACT)
    rnn.load_state_dict(ckpt['rnn'])
    iter_num = ckpt['iter_num'] if eval_only else check_resume_iters(ckpt, max_iters, 'max_iters', f"{out_dir}/ckpt.pt",
                                                                          max_time)
    if stateful:
        lane_pos, lane_mem = ckpt['lanes']['pos'], ckpt['lanes']['mem']
elif init_from != 'scratch':  # another run's RNN (BPTT's, or SMT's: BPTT fine-tuning); its optimizer stays behind
    rnn.load_state_dict(start_from(init_from, {'rnn': rnn_cfg}, ('bptt', 'smt', 'dmt'))['rnn'])
clock = Throughput(ckpt.get('train_seconds', 0.0) if ckpt else 0.0)  # a time-budgeted schedule continues where it was
rnn.to(dev)
objective = BPTTObjective(rnn)
optimizer = make_optimizer(rnn.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
if ckpt is not None:
    optimizer.load_state_dict(ckpt['optimizer'])
ckpt = None  # free the memory
# Compile the parts, not the whole unroll (whatever the compile flag): Dynamo refuses cuDNN's nn.GRU/nn.LSTM, and
# compiling a T-step Python loop would unroll it into one huge graph. compile_parts compiles in place, so state_dict
# keys stay clean.
if compile_mode(compile, sys_['device_type']):
    rnn.compile_parts()
train_step = wrap_model(objective, False, sys_)

# -----------------------------------------------------------------------------
# evaluation: the RNN alone on the validation sequences (metrics.rnn_report, as in train_smt.py)
unigram_bits, bigram_bits = data.baselines(val_x, val_y)


@torch.no_grad()
def evaluate():
    """The RNN's own teacher-forced CE on the validation sequences, from its initial memory."""
    rnn.eval()
    val = rnn_report(rnn, val_x, val_y, sys_, ctx, batch_size)
    rnn.train()
    return val


def gathered_lanes():
    """The lanes as a checkpoint saves them: their positions, and the memories they carry, each row filled by the one
    process that trained it (all-reduced: every process must call this)."""
    return {'pos': lane_pos, 'mem': all_reduce_sum(lane_mem.to(dev), sys_).cpu()}


def checkpoint(val, lanes):
    save_checkpoint(os.path.join(out_dir, 'ckpt.pt'), {
        'trainer': 'bptt', 'iter_num': iter_num, 'config': config, 'val': val, 'meta': data_meta(dataset, data),
        'rnn_args': asdict(rnn_cfg), 'rnn': raw_module(rnn).state_dict(), 'optimizer': optimizer.state_dict(),
        'lanes': lanes, 'train_seconds': clock.train_seconds})


# -----------------------------------------------------------------------------
# training loop
if master:
    size = f"{n_rnn_layer} layer{'s' * (n_rnn_layer > 1)} of {hidden}, " if hidden else ''
    print(f"BPTT on {dataset} ({data.describe()}) | {device_name(dev)} x {sys_['world_size']} | RNN "
          f"{rnn.num_params() / 1e6:.2f}M params ({backbone}, {size}memory {n_mem}x{d_model}) | global batch "
          f"{batch_size * gradient_accumulation_steps} sequences of {block_size}")
    print(f"baselines on the validation sequences: unigram {unigram_bits:.3f}, bigram {bigram_bits:.3f} bits/token")
logger = Logger(wandb_log, wandb_project, wandb_run_name, config, master)
tokens_per_iter = batch_size * gradient_accumulation_steps * block_size  # every token is one trained transition
# training FLOPs per token: one updater step and one readout pass over the K memory tokens
flops_per_iter = tokens_per_iter * (rnn.step_flops() + rnn.readout_flops())
peak = peak_flops(dev)
start_iter = iter_num
clock.restart()  # the steps' time counts from here
while True:
    lr = lr_at(iter_num, max_iters, learning_rate, warmup_frac, lr_decay, min_lr, clock.train_seconds, max_time)
    set_lr(optimizer, lr)
    out_of_time = time_is_up(max_time, clock, sys_)
    milestone = iter_num % eval_interval == 0 or iter_num == max_iters or out_of_time
    if (milestone and iter_num > start_iter) or eval_only:  # a resumed run that has nothing to train saves nothing
        val = evaluate()
        check_finite(val, iter_num, 'the eval', f"learning_rate={learning_rate}", sys_['dtype'], out_dir)  # no save
        lanes = gathered_lanes()
        if master:
            print(f"eval {iter_num} (bptt, {clock.train_seconds:.1f} s): {format_rnn_report(val)} | unigram {unigram_bits:.3f} bigram {bigram_bits:.3f}")
            logger.log({f'val/{k}': v for k, v in val.items()}, step=iter_num)
            if not eval_only:
                checkpoint(val, lanes)
        clock.restart()  # evaluation time counts neither in the throughput nor in max_time
    if iter_num >= max_iters or out_of_time or eval_only:
        break
    if signals.requested(sys_):  # the last step is complete: save it (no eval) and exit
        lanes = gathered_lanes()
        signals.stop(iter_num, start_iter, lambda: checkpoint(None, lanes), sys_)

    # one optimisation step over the global batch; this process takes its share of the micro-batches
    loss_sum = torch.zeros((), device=dev)
    fresh = advance_lanes(iter_num) if stateful else None
    for index, rows in micro_steps(train_step, plan, sys_):
        with ctx:
            loss, m_last = train_step(*get_batch(iter_num, index, rows, fresh))
        if stateful:
            lane_mem[index, rows] = m_last.float().cpu()
        (loss / len(plan)).backward()
        loss_sum += loss.detach() / len(plan)
    grad_norm = clip_grads(rnn.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1

    dt = clock.tick(iter_num, start_iter)
    if iter_num % log_interval == 0:
        loss_val = all_reduce_sum(loss_sum, sys_).item() / sys_['world_size']  # every rank takes part
        check_finite({'loss': loss_val}, iter_num, 'the train loss', f"learning_rate={learning_rate}", sys_['dtype'],
                     out_dir)
        if master:
            tok_s, mfu = rates(dt, tokens_per_iter, flops_per_iter, peak)
            # every token read is one RNN transition (backpropagated through), so one number counts both
            print(f"iter {iter_num}: loss {loss_val:.4f} | {tok_s:,.0f} tok/s (1 transition each) | mfu {mfu} | "
                  f"lr {lr:.2e} | {dt * 1000:.0f} ms | eta {clock.eta(iter_num, max_iters, max_time)}")
            logger.log({'train/loss': loss_val, 'lr': lr, 'tokens_per_s': tok_s, 'transitions_per_s': tok_s,
                        'grad_norm/rnn': grad_norm.item()}, step=iter_num)

logger.finish()
cleanup_system(sys_)
