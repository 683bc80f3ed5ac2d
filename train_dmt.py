"""
DAgger Memory Training (docs/method.md, DMT): fine-tune an SMT-trained RNN alone, on its own states.

After SMT the RNN is accurate one step ahead from the teacher's memories, but running alone it reads its own
states, which drift away from the teacher's. DMT rolls the RNN out for Td steps over real text from a start memory
(the teacher's memory of the first Tc tokens, or the RNN's own initial memory), and regresses every k-th state onto
the teacher's memory of the same past; the readout learns the next token from the states it really sees:

    L = w_mse * MSE(m^_t, E(past up to x_t))  (every k-th step)  +  w_ce * CE(readout(sg(m^_t)), y_t)    (10 / 1)

With bptt=False the incoming state is detached at every step, so each label trains one transition from the RNN's
own state: (m^_t, x_{t+1}) -> m_{t+1}. The teacher is frozen: no gradient, no optimizer state, outside DDP. It only
labels. The RNN's initial memory stays the teacher's memory of the empty past, which is exactly its own label.

    python train_smt.py && python train_dmt.py        # the CPU recipe: SMT, then DMT (these globals)
    python train_dmt.py config/fashion_mnist_dmt.py   # after python train_smt.py config/fashion_mnist.py
    torchrun --standalone --nproc_per_node=8 train_dmt.py config/lm_dmt.py
"""
import os
import sys
from dataclasses import asdict

import torch

import configurator
from checkpoint import (EXACT_KEYS, TRAINERS, StopSignals, check_finite, check_resume_iters, claim_out_dir,
                        load_checkpoint, resume_from, save_checkpoint)
from common import (TRAIN_RULES, Logger, Throughput, all_reduce_sum, batch_plan, cleanup_system, clip_grads,
                    compile_mode, device_name, lr_at, make_optimizer, micro_steps, peak_flops, rates, raw_module,
                    set_lr, setup_system, time_is_up, wrap_model)
from configurator import at_least, int_list, one_of, satisfies
from data import data_meta, eval_sequences, load_data, need_tokens, step_generator, whole_windows
from encoder import DMTObjective, Teacher, TeacherConfig, dmt_flops_per_rollout
from metrics import format_drift, format_rnn_report, rnn_report, teacher_window_bits
from model import RNN, RNNConfig

# -----------------------------------------------------------------------------
# defaults: DMT on the CPU recipe's SMT checkpoint for 1 minute (`python train_smt.py && python train_dmt.py`);
# config/lm_dmt.py is the paper's scale
init_from = 'out-shakespeare/ckpt.pt'  # the SMT checkpoint to start from, or 'resume' (this run's out_dir/ckpt.pt)
out_dir = 'out-shakespeare-dmt'
overwrite = True  # a second run starts DMT again from init_from, replacing out_dir/ckpt.pt (False: refused)
allow_changes = False  # a resume with other training settings (EXACT below): refused unless True
eval_interval = 25
log_interval = 5
eval_only = False
wandb_log = False
wandb_project = 'smt'
wandb_run_name = 'dmt'
# data: the checkpoint's own dataset; the model's architecture always comes from the checkpoint
dataset = ''
batch_size = 16  # rollouts per micro-step per process
gradient_accumulation_steps = 1  # global: divided among DDP processes, so the global batch does not depend on N
rollout_len = 128  # Td: steps the RNN runs on its own state
label_every = 1  # k: a teacher label every k steps
dyn_labels = 16  # regress a random dyn_labels of each micro-batch's label steps, the readout reading the same states
# (0: every label step, and the readout every step): fewer FLOPs per rollout step, as SMT's dyn_labels
start = 'both'  # rollouts start from 'encoder' (the teacher's memory of Tc tokens), 'initial' (the RNN's own), 'both'
bptt = False  # backpropagate through the rollout instead of detaching the state at every step
rollout = 'sequential'  # how a detached rollout visits its states: 'sequential' (rnn.run, step by step) or 'parallel'
# (sweeps over all steps at once from the teacher's memories, RNN.rollout; the same states at convergence, but an RNN
# that does not forget its start needs nearly Td sweeps, each over every state not yet exact)
rollout_tol = 1e-4  # parallel: stop when no state moves by more than this in a sweep
max_sweeps = 0  # parallel: at most this many sweeps (0: until rollout_tol; Td sweeps are always exact)
ce_through_state = False  # the readout's CE also trains the updater through the states (with bptt: BPTT fine-tuning
# of the whole rollout, the teacher's labels as a regulariser); False: the reference, CE on detached states
# DMT objective
w_mse = 10.0
w_ce = 1.0
# optimizer
learning_rate = 2e-4  # a trained updater blows up at a few times this in its first steps (docs/results.md)
max_iters = 100000  # the time budget ends the run
max_time = 60.0  # seconds of training (evals excluded): with SMT's 420, the recipe's 8 minutes; 0: no limit
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 disables
warmup_frac = 0.01
lr_decay = 'cosine'  # after warmup: 'cosine' to min_lr, or 'constant'
min_lr = 0.0
# evaluation: the RNN alone on fixed sequences (the same tokens as train_smt.py's with the same settings)
eval_windows = 256  # the teacher's next-token CE on fixed windows (frozen here: the ceiling DMT's RNN aims at)
eval_seqs = 16
eval_seq_len = 256
drift_steps = '1,4,16,64,256'  # rollout steps at which eval reports the drift MSE(m^_t, m_t)
# system
device = 'auto'
dtype = 'float32'  # not 'auto': bf16 does not make DMT's step faster (docs/results.md)
compile = 'auto'  # 'auto' (CUDA only), 'True' / 'regional' (the same here: RNN.compile_parts), 'False'
seed = 1337
config = configurator.load(globals(), sys.argv[1:])
# -----------------------------------------------------------------------------
EVAL_BATCH = 128  # windows or sequences per evaluation forward

RULES = {**TRAIN_RULES,  # every key, checked before any work: 'error: key=value: what is wrong; the fix'
    'init_from': satisfies(lambda v, _: v != '', "is empty", "name the SMT checkpoint to start from, or use resume"),
    'rollout_len': at_least(1),
    'label_every': satisfies(lambda v, c: 1 <= v <= c['rollout_len'], "must be in [1, rollout_len={rollout_len}]",
                             "a label every k steps of the rollout needs 1 <= k <= rollout_len"),
    'dyn_labels': at_least(0), 'start': one_of('encoder', 'initial', 'both'),
    'rollout': one_of('parallel', 'sequential'),
    'rollout_tol': at_least(0.0), 'max_sweeps': at_least(0),
    'w_mse': at_least(0.0), 'w_ce': at_least(0.0),
    'eval_windows': at_least(1), 'drift_steps': int_list(1),
}
configurator.check(config, RULES)

# the models (and their shapes) come from a checkpoint: the SMT run's, or this run's own when resuming
if init_from != 'resume':  # checked before out_dir is touched
    ckpt = load_checkpoint(init_from, need=('config', 'iter_num'))
    if ckpt.get('trainer', 'smt') not in ('smt', 'dmt') or 'teacher' not in ckpt:
        configurator.fail(f"init_from={init_from}: made by {TRAINERS.get(ckpt.get('trainer'), 'another program')}, it "
                          f"holds no teacher; DMT starts from a train_smt.py checkpoint, whose teacher labels the "
                          f"rollouts")
    load_checkpoint(init_from, need=('rnn', 'rnn_args', 'teacher', 'teacher_args'), ckpt=ckpt)
init_from = config['init_from'] = claim_out_dir(out_dir, init_from, overwrite)  # lock; no silent overwrite
signals = StopSignals(out_dir, init_from == 'resume')  # from here on SIGINT/SIGTERM save the last step and exit
# a resume keeps these, or it would not continue exactly (refused unless allow_changes=True)
EXACT = EXACT_KEYS + ('rollout_len', 'label_every', 'start', 'bptt', 'ce_through_state', 'w_mse', 'w_ce', 'dyn_labels',
                       'rollout', 'rollout_tol', 'max_sweeps')
if init_from == 'resume':
    ckpt = resume_from(out_dir, {}, ('dmt',), config, ('dataset',) if dataset else (), () if eval_only else EXACT)
    load_checkpoint(f"{out_dir}/ckpt.pt", need=('rnn', 'rnn_args', 'teacher', 'teacher_args'), ckpt=ckpt)
else:
    print(f"starting from {init_from} (SMT iteration {ckpt['iter_num']})")
dataset = config['dataset'] = dataset or ckpt['config']['dataset']

sys_ = setup_system(device, dtype, seed)
master, dev, ctx = sys_['master'], sys_['device'], sys_['ctx']
plan = batch_plan(gradient_accumulation_steps, batch_size, sys_['rank'], sys_['world_size'])
try:
    data = load_data(dataset, sys_)
    episodic = data.episode_len > 0  # episodes and images: rollouts within one, from its first token (get_batch)
    Td = min(rollout_len, data.episode_len) if episodic else rollout_len  # the steps of a rollout
    need_tokens(data, 'train', ckpt['teacher_args']['context_len'] + rollout_len, 'rollout_len + context_len')
    need_tokens(data, 'val', sum(ckpt['teacher_args'][k] for k in ('context_len', 'future_len')),
                "the checkpoint's context_len + future_len")
    need_tokens(data, 'val', eval_seq_len, 'eval_seq_len')
    val_windows = data.smt_windows('val', eval_windows, ckpt['teacher_args']['context_len'],
                                   ckpt['teacher_args']['future_len'], 0.0, torch.Generator().manual_seed(seed + 1),
                                   ckpt['config'].get('labels_per_window', 1))  # as SMT saw them (images: whole)
    whole = whole_windows(data, ckpt['config'].get('labels_per_window', 1))
    val_x, val_y = eval_sequences(data, eval_seqs, eval_seq_len)
except ValueError as e:
    configurator.fail(str(e))
teacher, rnn = Teacher(TeacherConfig(**ckpt['teacher_args'])), RNN(RNNConfig(**ckpt['rnn_args']))
if rnn.cfg.vocab_size != data.vocab_size:
    configurator.fail(f"the checkpoint has a vocabulary of {rnn.cfg.vocab_size}, dataset '{dataset}' {data.vocab_size}")
teacher.load_state_dict(ckpt['teacher'])
rnn.load_state_dict(ckpt['rnn'])
teacher.to(dev)
rnn.to(dev)
Tc, K, d = teacher.cfg.context_len, teacher.cfg.n_mem, teacher.cfg.d_model
iter_num = 0
if init_from == 'resume':
    iter_num = ckpt['iter_num'] if eval_only else check_resume_iters(ckpt, max_iters, 'max_iters', f"{out_dir}/ckpt.pt",
                                                                          max_time)
clock = Throughput(ckpt.get('train_seconds', 0.0) if init_from == 'resume' else 0.0)  # the time budget continues
smt_iter_num = ckpt.get('smt_iter_num', ckpt['iter_num'])  # how long the RNN was trained by SMT


def get_batch(iter_num, index, rows):
    """Rows `rows` of micro-batch `index`: sequences, and the index of the first input each row's rollout of Td
    steps reads. A stream's sequences hold Tc + Td tokens: a rollout from the teacher's memory of the first Tc
    ('encoder' rows) or from the RNN's initial memory at the first token. Episodes (and images) are read whole from
    their first token: a rollout starts there from the initial memory, or at a random later token from the
    teacher's memory of the episode so far (when the episode is longer than Td)."""
    g = step_generator(seed, iter_num, index)
    row = torch.arange(batch_size)
    from_encoder = {'encoder': row >= 0, 'initial': row < 0, 'both': row % 2 == 0}[start]
    if episodic:
        x, y = data.aligned('train', batch_size, g)
        later = torch.randint(1, x.size(1) - Td + 1, (batch_size,), generator=g) if Td < x.size(1) else 0
        first = torch.where(from_encoder, later, 0)
    else:
        x, y = data.sequences('train', batch_size, Tc + Td, g)
        first = torch.where(from_encoder, Tc, 0)
    label_steps = torch.arange(label_every - 1, Td, label_every)  # every k-th
    if dyn_labels:  # a random subset of them, the same for every row
        label_steps = label_steps[torch.randperm(len(label_steps), generator=g)[:dyn_labels].sort().values]
    return [v[rows].to(dev, non_blocking=True) for v in (x, y, first)] + [label_steps.to(dev)]


@torch.no_grad()
def rollout_targets(x, y, first, label_steps):
    """The rollout's start memory, inputs and targets, and the teacher's labels after the rollout steps label_steps
    (J,), for each row. A row's rollout reads x[first .. first + Td - 1] from the teacher's memory of the past
    before x[first] (first = 0: the RNN's initial memory, which is the teacher's memory of the empty past). The
    label after rollout step j is the teacher's memory of the past up to that input; one call asks for them all."""
    pos = first[:, None] + torch.arange(Td, device=dev)  # (B, Td): the present after each step
    memories = teacher.memory(x, torch.cat([first[:, None] - 1, pos[:, label_steps]], dim=1))  # (B, 1 + J, K, d)
    m_start = torch.where((first > 0)[:, None, None], memories[:, 0], rnn.initial_memory(x.size(0)))
    return m_start, x.gather(1, pos), y.gather(1, pos), label_steps, memories[:, 1:]


# -----------------------------------------------------------------------------
# optimizer: the RNN's embedding, updater and readout; the teacher and the initial memory are frozen
teacher.requires_grad_(False)
rnn.m0.requires_grad_(False)
optimizer = make_optimizer(rnn.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
if init_from == 'resume':
    optimizer.load_state_dict(ckpt['optimizer'])
ckpt = None  # free the memory
# the rollout is a Python loop over Td steps (or a cuDNN call): compiling it whole would unroll it, so DMT compiles
# the parts the loop calls (one updater step, the readout), as train_bptt.py does
if compile_mode(compile, sys_['device_type']):
    rnn.compile_parts()
train_step = wrap_model(DMTObjective(rnn, w_mse, w_ce, bptt, ce_through_state, rollout, rollout_tol, max_sweeps,
                                     ce_at_labels=dyn_labels > 0), False, sys_)

# -----------------------------------------------------------------------------
# evaluation: the RNN alone from both starts, and its drift from the teacher's memories
unigram_bits, bigram_bits = data.baselines(val_x, val_y)
DRIFT_STEPS = [int(s) for s in drift_steps.split(',')]


@torch.no_grad()
def evaluate():
    rnn.eval()
    val = dict(teacher_bits=teacher_window_bits(teacher, val_windows, sys_, ctx, EVAL_BATCH, whole),
               **rnn_report(rnn, val_x, val_y, sys_, ctx, EVAL_BATCH, teacher, DRIFT_STEPS))
    rnn.train()
    return val


def checkpoint(val):
    save_checkpoint(os.path.join(out_dir, 'ckpt.pt'), {
        'trainer': 'dmt', 'iter_num': iter_num, 'train_seconds': clock.train_seconds, 'smt_iter_num': smt_iter_num, 'config': config, 'val': val,
        'meta': data_meta(dataset, data), 'rnn_args': asdict(rnn.cfg), 'rnn': raw_module(rnn).state_dict(),
        'teacher_args': asdict(teacher.cfg), 'teacher': teacher.state_dict(), 'optimizer': optimizer.state_dict()})


# -----------------------------------------------------------------------------
# training loop
if master:
    print(f"DMT on {dataset} ({data.describe()}) | {device_name(dev)} x {sys_['world_size']} | RNN "
          f"{rnn.num_params() / 1e6:.2f}M params ({rnn.cfg.backbone}, memory {K}x{d}), after {smt_iter_num} SMT steps "
          f"| global batch {batch_size * gradient_accumulation_steps} rollouts of Td={Td} from the {start} "
          f"start(s), a label every {label_every} steps, "
          f"{'BPTT through' if bptt else 'detached state at every step of'} the rollout, readout CE "
          f"{'through' if ce_through_state else 'on detached'} states")
    print(f"baselines on the validation sequences: unigram {unigram_bits:.3f}, bigram {bigram_bits:.3f} bits/token")
logger = Logger(wandb_log, wandb_project, wandb_run_name, config, master)
rows_per_iter = batch_size * gradient_accumulation_steps


def flops_per_row(Td, n_labels, sweeps):
    """Training FLOPs of one rollout (encoder.dmt_flops_per_rollout): the loop visits Td states; sweep k of the
    parallel visit recomputes the Td - k states not yet exact."""
    visited = Td if rollout == 'sequential' else sweeps * Td - sweeps * (sweeps - 1) / 2
    return dmt_flops_per_rollout(teacher.cfg, rnn.step_flops(), rnn.readout_flops(), Tc, Td, n_labels, visited,
                                 Td if ce_through_state else n_labels, n_labels if dyn_labels else Td, bptt)


peak = peak_flops(dev)
start_iter = iter_num
clock.restart()  # the steps' time counts from here
while True:
    out_of_time = time_is_up(max_time, clock, sys_)
    milestone = iter_num % eval_interval == 0 or iter_num == max_iters or out_of_time
    starting_point = iter_num == start_iter and init_from != 'resume'  # record where we began: the SMT result
    if (milestone and iter_num > start_iter) or starting_point or eval_only:
        val = evaluate()
        check_finite(val, iter_num, 'the eval', f"learning_rate={learning_rate}", sys_['dtype'], out_dir)  # no save
        if master:
            print(f"eval {iter_num} (dmt, {clock.train_seconds:.1f} s): {format_rnn_report(val)} | teacher next-token {val['teacher_bits']:.4f} | "
                  f"unigram {unigram_bits:.3f} bigram {bigram_bits:.3f}\n  {format_drift(val)}")
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
    terms = torch.zeros(3, device=dev)  # mse, ce, sweeps
    for index, rows in micro_steps(train_step, plan, sys_):
        with ctx:
            inputs = rollout_targets(*get_batch(iter_num, index, rows))  # teacher labels, no gradient
            loss, t = train_step(*inputs)
        (loss / len(plan)).backward()
        terms += t / len(plan)
    Td, n_labels = inputs[1].size(1), inputs[3].numel()  # rollout_len (or an episode's length), labels a rollout
    grad_norm = clip_grads([p for p in rnn.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1

    dt = clock.tick(iter_num, start_iter)
    if iter_num % log_interval == 0:
        mse, ce, sweeps = all_reduce_sum(terms, sys_).div(sys_['world_size']).tolist()  # every rank takes part
        check_finite(dict(mse=mse, ce=ce), iter_num, 'the train loss', f"learning_rate={learning_rate}", sys_['dtype'],
                     out_dir)
        if master:
            loss_val = w_mse * mse + w_ce * ce
            # a rollout transition is one step of the RNN on its own state; rollouts count once however visited
            trans_s, mfu = rates(dt, rows_per_iter * Td, rows_per_iter * flops_per_row(Td, n_labels, sweeps), peak)
            visit = f"{sweeps:.1f}/{Td} sweeps" if rollout == 'parallel' and not bptt else 'sequential'
            print(f"iter {iter_num}: loss {loss_val:.4f} (dmt: mse {mse:.5f} ce {ce:.4f}) | {trans_s:,.0f} rollout "
                  f"trans/s | {visit} | mfu {mfu} | lr {lr:.2e} | {dt * 1000:.0f} ms | "
                  f"eta {clock.eta(iter_num, max_iters, max_time)}")
            logger.log({'train/loss': loss_val, 'train/dmt_mse': mse, 'train/dmt_ce': ce, 'lr': lr,
                        'transitions_per_s': trans_s, 'sweeps': sweeps, 'grad_norm/rnn': grad_norm.item()},
                       step=iter_num)

logger.finish()
cleanup_system(sys_)
