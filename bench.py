"""
Throughput of one full training step (forward, backward, gradient clipping, AdamW) of the same RNN trained three ways:
  (a) smt-ref    SMT with the reference labels: one transition per window from two bidirectional encoder passes
  (b) smt-many   SMT with many labels per window: L transitions from one pass of the causal encoder
  (c) bptt       BPTT: the readout's cross-entropy along rnn.run_logits over the whole sequence, backprop through time
for context lengths Tc (SMT) = sequence lengths T (BPTT) in `lengths`. It prints the seconds of the first step
(compilation happens there), ms per step, tokens/s (window or sequence tokens), transitions/s (labelled transitions
for SMT, RNN steps for BPTT), MFU where the device's peak is known (the trainers' FLOPs formulas) and the ratios of
(b) to (a) and to (c). Data are random tokens with a full past; the numbers are throughput only, not learning.
  classic        (not in the default modes) BPTT steps of the project's classic cells at the sizes of
                 config/shakespeare_lstm.py and config/shakespeare_gru.py (one layer of `classic_hidden`, embedding
                 `classic_embd`, the linear head, `classic_batch` sequences of T), each beside a plain PyTorch
                 language model of the same sizes (nn.Embedding -> nn.LSTM / nn.GRU -> nn.Linear, the same optimizer),
                 and the ratio of their step times: what the project's machinery costs over the plain model.
  dmt            (not in the default modes) DMT steps as train_dmt.py takes them, on rollouts of T steps from the
                 teacher's memory of T tokens (`dmt_batch` rollouts, `dmt_labels` of their steps labelled): the
                 visit without a graph and one batched step over the labelled transitions (dmt), beside the step DMT
                 took before it (dmt-loop: autograd through the step loop, the state detached at every step, every
                 step labelled and read, a backward over Td small graphs), and the visit alone (dmt-visit), the
                 three taking turns. The loop's time over the visit's bounds what the step can gain while it visits
                 its states this way. Transitions: the rollout's steps, however many are trained.
                 dmt_rollout='parallel': the visit by sweeps.
profile=True adds, for (b) and dmt: the FLOPs formula against torch's FlopCounterMode for one step, and the
profiler's table of the kernels that take the step's time.

    python bench.py                                          # small sizes, CPU or GPU
    python bench.py --sizes=reference                        # docs/method.md sizes (a GPU: compile, bf16)
    python bench.py --lengths=1024 --backbone=transformer --iters=3
    python bench.py --sizes=reference --modes=smt-many --decoded_labels=16 --compile=regional --profile=True
    python bench.py --modes=classic --lengths=256 --iters=10             # the classic cells beside nn.LSTM / nn.GRU
    python bench.py --modes=smt-many --lengths=785 --decoded_labels=32 --dyn_labels=32 --plan_memories=False   # vs True
    python bench.py --modes=dmt --lengths=128 --iters=10                 # DMT's step against its step loop

(c) calls rnn.run_logits, so a backbone's fast whole-sequence path (cuDNN, a parallel scan) is what gets timed.
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import configurator
from common import (COMPILE_FLAGS, clip_grads, compile_mode, device_name, make_optimizer, peak_flops, setup_system,
                    wrap_model)
from encoder import (DMTObjective, SMTObjective, Teacher, TeacherConfig, dmt_flops_per_rollout, memory_plan,
                     smt_flops_per_window, uniformity_indices)
from model import RNN, RNNConfig, cell_memory_tokens

# -----------------------------------------------------------------------------
backbone = 'transformer'
lengths = '256,1024,4096'  # Tc for SMT, T for BPTT
sizes = 'small'  # 'small' (the CPU recipe's RNN, K=4 x d=128) or 'reference' (docs/method.md)
modes = 'smt-ref,smt-many,bptt'
labels_per_window = 4096  # (b): L labelled transitions per window, as in train_smt.py, capped at each length's Tc
decoded_labels = 0  # (b): the decoder reads this many of a window's labels, as in train_smt.py (0: all)
dyn_labels = 0  # (b): the RNN regresses this many of a window's transitions (0: all)
plan_memories = True  # (b): the encoder computes only the memories those subsets read, as train_smt.py does
# (encoder.memory_plan); False: every one of the window's L + 1, to time what the plan saves
# batch per step: (a) min(ref_windows, ref_tokens // Tc) windows, (b) max(1, label_batch // L) windows,
# (c) max(1, bptt_tokens // T) sequences; 0: the size preset's value (memory-bound choices, see SIZES)
ref_windows = 0
ref_tokens = 0
label_batch = 0
bptt_tokens = 0
# classic: the sizes of config/shakespeare_lstm.py and config/shakespeare_gru.py (tests/test_bench.py holds them equal)
classic_hidden = 512  # one layer of this width
classic_embd = 64  # the byte embedding's width (d_model)
classic_batch = 4  # sequences of T per step (config/shakespeare_lstm.py's)
# dmt: train_dmt.py's defaults
dmt_batch = 16  # rollouts of T steps per step
dmt_labels = 16  # labelled (and trained, and read) steps of each rollout (dyn_labels)
dmt_rollout = 'sequential'  # the visit: 'sequential' or 'parallel' (train_dmt.py's rollout, to its rollout_tol 1e-4)
# optimizer: the trainers' defaults, so a timed step is a training step
learning_rate = 3e-4
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # separately for the RNN's and the teacher's parameters, as train_smt.py does; 0 disables
warmup = 2  # untimed steps (compilation happens here)
iters = 3  # timed steps (the median is printed)
device = 'auto'
dtype = 'auto'  # bfloat16 autocast on CUDA, float32 on CPU
compile = 'auto'  # as train_smt.py: 'auto' (regional, on CUDA only), 'True' (whole), 'False', 'regional'; (c) compiles
# the RNN's parts (RNN.compile_parts) whenever compile is on
profile = False
seed = 1337
configurator.load(globals(), sys.argv[1:])
# -----------------------------------------------------------------------------
SIZES = {
    'small': dict(model=dict(n_mem=4, d_model=128, n_head=4, n_enc_layer=2, n_dec_layer=1, n_rnn_layer=2),
                  future_len=8, ref_windows=8, ref_tokens=8192, label_batch=1024, bptt_tokens=2048),
    # an H100/H200 (80+ GB): the paper's batch of 128 windows where it fits, about 16k transitions or RNN steps
    'reference': dict(model=dict(n_mem=16, d_model=256, n_head=8, n_enc_layer=8, n_dec_layer=4, n_rnn_layer=8),
                      future_len=64, ref_windows=128, ref_tokens=131072, label_batch=4096, bptt_tokens=16384),
}
if sizes not in SIZES:
    configurator.fail(f"sizes must be one of {', '.join(SIZES)}, got {sizes!r}")
preset = SIZES[sizes]
ref_windows, ref_tokens = ref_windows or preset['ref_windows'], ref_tokens or preset['ref_tokens']
label_batch, bptt_tokens = label_batch or preset['label_batch'], bptt_tokens or preset['bptt_tokens']
try:
    Ts = [int(t) for t in lengths.split(',')]
except ValueError:
    configurator.fail(f"lengths must be comma-separated integers, got {lengths!r}")
mode_list = modes.split(',')
if not set(mode_list) <= {'smt-ref', 'smt-many', 'bptt', 'classic', 'dmt'} or not mode_list:
    configurator.fail(f"modes must be a comma-separated subset of smt-ref,smt-many,bptt,classic,dmt, got {modes!r}")
if (min(Ts) < 1 or labels_per_window < 1 or warmup < 0 or iters < 1
        or min(classic_hidden, classic_batch, dmt_batch, dmt_labels) < 1
        or dmt_rollout not in ('sequential', 'parallel')):
    configurator.fail("lengths, labels_per_window, iters, classic_hidden, classic_batch, dmt_batch and dmt_labels must "
                      "be >= 1, warmup >= 0, dmt_rollout 'sequential' or 'parallel'")
try:
    CLASSIC_MEM = {cell: cell_memory_tokens(cell, classic_hidden, 1, classic_embd) for cell in ('lstm', 'gru')
                   if 'classic' in mode_list}
except ValueError as e:  # the embedding does not cut the states into whole memory tokens
    configurator.fail(f"classic_embd={classic_embd}: {e}")

sys_ = setup_system(device, dtype, seed)
dev, ctx = sys_['device'], sys_['ctx']
if compile not in COMPILE_FLAGS:
    configurator.fail(f"compile must be one of {', '.join(COMPILE_FLAGS)}, got {compile!r}")
compile_as = compile_mode(compile, sys_['device_type'])
peak = peak_flops(dev)
Tf, K, V = preset['future_len'], preset['model']['n_mem'], 256


def sync():
    if sys_['device_type'] == 'cuda':
        torch.cuda.synchronize()


def time_steps(*steps):
    """For each step: (seconds of its first call, which compiles; the median seconds of a call over iters calls after
    the warmup calls). Several steps take turns, one call of each a round, so that a machine whose speed drifts
    (other jobs) slows them alike and their ratio holds."""
    times = [[] for _ in steps]
    for i in range(max(1, warmup) + iters):
        for step, spent in zip(steps, times):
            t0 = time.perf_counter()
            step()
            sync()
            spent.append(time.perf_counter() - t0)
    return [(spent[0], sorted(spent[-iters:])[iters // 2]) for spent in times]


def make_rnn(max_pos, **sizes):
    """The RNN of the size preset, the keys in `sizes` replaced (the classic rows' own)."""
    cfg = RNNConfig(**{'vocab_size': V, 'backbone': backbone, 'max_pos': max_pos, **{
        k: v for k, v in preset['model'].items() if k != 'n_enc_layer'}, **sizes})
    try:
        return RNN(cfg).to(dev)
    except ValueError as e:  # an unknown backbone
        configurator.fail(str(e))


def smt_step_fn(T, encoder_type, L, B, n_dec=0, n_dyn=0):
    """One SMT training step as train_smt.py takes it: the objective, backward, clipping, AdamW. Returns the step,
    its training FLOPs (smt_flops_per_window) and a function that runs the objective once (for the FLOP counter)."""
    m = preset['model']
    teacher = Teacher(TeacherConfig(vocab_size=V, backbone=backbone, encoder_type=encoder_type, context_len=T,
                                    future_len=Tf, max_pos=T + K + Tf, **{k: m[k] for k in (
                                        'n_mem', 'd_model', 'n_head', 'n_enc_layer', 'n_dec_layer')})).to(dev)
    rnn = make_rnn(T + K + Tf)
    rnn.readout.requires_grad_(False)
    rnn.m0.requires_grad_(False)
    smt = SMTObjective(teacher, rnn, labels_per_window=L)
    optimizer = make_optimizer(smt.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
    fwd = wrap_model(smt, compile_as, sys_)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(V, (B, T + Tf + 1), generator=g)
    n_ctx = torch.full((B,), T)
    subsets = [torch.stack([torch.randperm(L, generator=g)[:n].sort().values for _ in range(B)]) if n else None
               for n in (n_dec, n_dyn)]
    plan = memory_plan(L, B, *subsets) if encoder_type == 'causal' and plan_memories else None
    args = [x[:, :-1], x[:, 1:], n_ctx, uniformity_indices(n_ctx, L, K, 512, g, plan)] + subsets + [plan]
    args = [a.to(dev) if a is not None else None for a in args]
    rnn_params = [p for p in rnn.parameters() if p.requires_grad]
    flops = B * smt_flops_per_window(teacher.cfg, rnn.step_flops(), L, n_dec, n_dyn, plan_memories)

    def once():
        with ctx:
            smt(*args)[0].backward()
        optimizer.zero_grad(set_to_none=True)

    def step():
        with ctx:
            loss, _ = fwd(*args)
        loss.backward()
        clip_grads(rnn_params, grad_clip)
        clip_grads(teacher.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step, flops, once


def lm_step(model, logits_of, T, B):
    """One BPTT training step of a language model, as train_bptt.py takes it: logits_of(inputs (B, T)) predicts the
    next token at every position, cross-entropy, backward through all T steps, clipping, AdamW."""
    optimizer = make_optimizer(model.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
    x = torch.randint(V, (B, T + 1), generator=torch.Generator().manual_seed(seed)).to(dev)

    def step():
        with ctx:
            logits = logits_of(x[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        clip_grads(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def bptt_step_fn(T, B, rnn=None):
    """One BPTT step of rnn (default: the size preset's): from its initial memory, rnn.run_logits over T inputs (the
    memory after x_<=t predicts x_{t+1}), readout CE at every step, backward through all T steps, clipping, AdamW.
    Only a Transformer updater is compiled (per step; a T-step unrolled graph would not compile), so cuDNN and scan
    paths of other backbones stay outside compiled regions."""
    rnn = rnn or make_rnn(K + Tf)
    if compile_as:
        rnn.compile_parts()
    step = lm_step(rnn, lambda xs: rnn.run_logits(rnn.initial_memory(B), xs)[0], T, B)
    return step, B * T * (rnn.step_flops() + rnn.readout_flops())


class PlainLM(nn.Module):
    """The classic rows' reference: a plain PyTorch language model, as a user writes one."""

    def __init__(self, cell, embd, hidden):
        super().__init__()
        self.wte, self.cell = nn.Embedding(V, embd), cell(embd, hidden, batch_first=True)
        self.head = nn.Linear(hidden, V)

    def forward(self, x):
        return self.head(self.cell(self.wte(x))[0])


def classic_step_fns(cell, T, B):
    """The project's BPTT step of a one-layer `cell` ('lstm', 'gru') with the linear head at the classic sizes, and
    the step of the plain model of the same sizes; the FLOPs of one (the same sizes, so the same formula)."""
    rnn = make_rnn(1, backbone=cell, n_mem=CLASSIC_MEM[cell], d_model=classic_embd, n_rnn_layer=1, readout='linear')
    step, flops = bptt_step_fn(T, B, rnn.to(dev))
    plain = PlainLM({'lstm': nn.LSTM, 'gru': nn.GRU}[cell], classic_embd, classic_hidden).to(dev)
    return step, lm_step(plain, plain, T, B), flops



def dmt_step_fns(T, B, n_labels):
    """train_dmt.py's step (teacher labels, DMTObjective with n_labels of T steps labelled, trained and read,
    backward, clipping, AdamW) and the step before it (every step labelled and read, autograd through the loop), on
    the same rollouts; their training FLOPs (dmt_flops_per_rollout) per step."""
    m = preset['model']
    # a banded teacher (the CPU recipe's band), so its memories anywhere in the rollout come from shared passes
    teacher = Teacher(TeacherConfig(vocab_size=V, backbone=backbone, encoder_type='causal', context_len=T, band=64,
                                    future_len=Tf, max_pos=2 * T + K + Tf, **{k: m[k] for k in (
                                        'n_mem', 'd_model', 'n_head', 'n_enc_layer', 'n_dec_layer')})).to(dev)
    teacher.requires_grad_(False)
    rnn = make_rnn(K + Tf)
    rnn.m0.requires_grad_(False)
    if compile_as:
        rnn.compile_parts()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(V, (B, 2 * T + 1), generator=g).to(dev)  # T tokens of past, then the rollout's T inputs
    xs, ys = x[:, T:-1], x[:, T + 1:]
    sparse = torch.randperm(T, generator=g)[:n_labels].sort().values.to(dev)
    objective = DMTObjective(rnn, ce_at_labels=True, rollout=dmt_rollout)
    sweeps = []  # the visit's sweeps, each call (Td for the loop)

    def labels(steps):
        with torch.no_grad():
            mem = teacher.memory(x[:, :-1], torch.cat([torch.tensor([T - 1], device=dev), T + steps]).expand(B, -1))
        return mem[:, 0], mem[:, 1:]

    def loop_loss():
        m_start, target = labels(torch.arange(T, device=dev))
        m, ms = m_start, []
        for t in range(T):
            m = rnn.step(m.detach(), xs[:, t])
            ms.append(m)
        ms = torch.stack(ms, dim=1)
        ce = F.cross_entropy(rnn.logits(ms.detach()).float().flatten(0, 1), ys.flatten())
        return objective.w_mse * F.mse_loss(ms.float(), target.float()) + objective.w_ce * ce

    def batched_loss():
        m_start, target = labels(sparse)
        loss, terms = objective(m_start, xs, ys, sparse, target)
        sweeps.append(int(terms[2]))
        return loss

    def train(loss_fn):
        optimizer = make_optimizer(rnn.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])

        def step():
            with ctx:
                loss = loss_fn()
            loss.backward()
            clip_grads(rnn.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step
    flops = [B * dmt_flops_per_rollout(teacher.cfg, rnn.step_flops(), rnn.readout_flops(), T, T, n, T, n, n, graph)
             for n, graph in ((n_labels, False), (T, True))]

    def once():
        with ctx:
            batched_loss().backward()
        rnn.zero_grad(set_to_none=True)

    m_start, target = labels(sparse)

    def visit():  # the graph-free visit alone: the part of the step that no batching of its gradient removes
        with ctx, torch.no_grad():
            objective.visit(m_start, xs, sparse, target)
    flops.append(B * T * rnn.step_flops() / 3)  # forward only: a third of a trained step's FLOPs
    return train(batched_loss), train(loop_loss), visit, flops, once, sweeps

def ratio(r):
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def free():
    if sys_['device_type'] == 'cuda':
        torch.cuda.empty_cache()


def profile_step(step, once, flops):
    """The FLOPs formula against FlopCounterMode (attention counted as its kernels compute it, masked pairs too),
    then the kernels that take a compiled step's time (CUDA), for the MFU's account."""
    with FlopCounterMode(display=False) as counter:
        once()
    counted = counter.get_total_flops()
    print(f"      FLOPs per step: formula {flops / 1e9:,.1f} G, FlopCounterMode {counted / 1e9:,.1f} G", flush=True)
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if sys_['device_type'] == 'cuda' else [])
    with torch.profiler.profile(activities=activities) as prof:
        step()
        sync()
    key = 'self_cuda_time_total' if sys_['device_type'] == 'cuda' else 'self_cpu_time_total'
    print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60), flush=True)


def print_row(T, mode, batch, first, dt, flops, tokens, transitions, vs=('', '')):
    mfu = f"{flops / dt / peak * 100:.1f}%" if peak else 'n/a'
    print(f"{T:>5} {mode:<9} {batch:>16} {first:>8.1f} {dt * 1000:>9.1f} {tokens / dt:>11,.0f} "
          f"{transitions / dt:>11,.0f} {mfu:>6} {vs[0]:>10} {vs[1]:>8}", flush=True)


m = preset['model']
print(f"bench: {device_name(dev)} | torch {torch.__version__} | {sys_['dtype']} | compile {compile_as} | "
      f"backbone {backbone} | sizes '{sizes}': memory K={K} x d={m['d_model']}, {m['n_head']} heads, encoder "
      f"{m['n_enc_layer']} / decoder {m['n_dec_layer']} / updater {m['n_rnn_layer']} layers, Tf={Tf}, vocab {V} | "
      f"warmup {warmup}, {iters} timed steps | peak {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'unknown (no MFU)'}",
      flush=True)
if 'classic' in mode_list:
    print(f"classic: lstm and gru, one layer of {classic_hidden}, embedding {classic_embd}, linear head, vocab {V}, "
          f"{classic_batch} sequences; each beside the plain nn.LSTM / nn.GRU model, their steps taking turns",
          flush=True)
header = (f"{'T':>5} {'mode':<9} {'batch':>16} {'first s':>8} {'ms/step':>9} {'tokens/s':>11} {'trans/s':>11} "
          f"{'MFU':>6} {'vs smt-ref':>10}")
print(header + f" {'vs bptt':>8}\n" + '-' * (len(header) + 9), flush=True)
for T in Ts:
    rows = {}
    for mode in mode_list:
        if mode == 'classic':
            B = classic_batch
            for cell in ('lstm', 'gru'):
                step, plain_step, flops = classic_step_fns(cell, T, B)
                timed = time_steps(step, plain_step)
                del step, plain_step
                free()
                names = (cell, f"nn.{cell.upper()}")
                for name, (first, dt) in zip(names, timed):
                    print_row(T, name, f"{B} seqs", first, dt, flops, B * T, B * T)
                print(f"{T:>5} {cell:<9} ms/step = {ratio(timed[0][1] / timed[1][1])} {names[1]}'s", flush=True)
            continue
        if mode == 'dmt':
            B, n = dmt_batch, min(dmt_labels, T)
            step, loop_step, visit, flops, once, sweeps = dmt_step_fns(T, B, n)
            timed = time_steps(step, loop_step, visit)
            if profile:
                profile_step(step, once, flops[0])
            del step, loop_step, visit
            free()
            for name, batch, (first, dt), f in zip(('dmt', 'dmt-loop', 'dmt-visit'), (f"{B}x{T} r{n}", f"{B}x{T}",
                                                                                      f"{B}x{T}"), timed, flops):
                print_row(T, name, batch, first, dt, f, B * T, B * T)
            # a step that visits its states this way takes at least the visit's time, so the loop's time over the
            # visit's bounds what any cheaper labelling or gradient could gain
            print(f"{T:>5} dmt       rollout transitions/s = {ratio(timed[1][1] / timed[0][1])} dmt-loop's | at most "
                  f"{ratio(timed[1][1] / timed[2][1])} with this visit | visit {dmt_rollout}, sweeps "
                  f"{min(sweeps)}-{max(sweeps)} of {T}", flush=True)
            continue
        if mode == 'smt-ref':
            B = max(1, min(ref_windows, ref_tokens // T))
            step, flops, _ = smt_step_fn(T, 'reference', 1, B)
            batch, tokens, transitions = f"{B} windows", B * (T + Tf), B
        elif mode == 'smt-many':
            L = min(T, labels_per_window)
            B, n_dec, n_dyn = max(1, label_batch // L), min(decoded_labels, L), min(dyn_labels, L)
            step, flops, once = smt_step_fn(T, 'causal', L, B, n_dec, n_dyn)
            # transitions: those the RNN regresses; the decoder reads n_dec of each window's labels
            batch = f"{B}x{L}" + (f" d{n_dec}" if n_dec else '') + (f" r{n_dyn}" if n_dyn else '')
            tokens, transitions = B * (T + Tf), B * (n_dyn or L)
        else:
            B = max(1, bptt_tokens // T)
            step, flops = bptt_step_fn(T, B)
            batch, tokens, transitions = f"{B} seqs", B * T, B * T
        [(first, dt)] = time_steps(step)
        if profile and mode == 'smt-many':
            profile_step(step, once, flops)
        del step
        free()
        rows[mode] = transitions / dt
        vs = [ratio(rows[mode] / rows[ref]) if ref in rows and ref != mode else '' for ref in ('smt-ref', 'bptt')]
        print_row(T, mode, batch, first, dt, flops, tokens, transitions, vs)
    if 'bptt' in rows:  # the ratios against (c) only exist once it ran: repeat them for the SMT rows
        for mode in ('smt-ref', 'smt-many'):
            if mode in rows:
                print(f"{T:>5} {mode:<9} transitions/s = {ratio(rows[mode] / rows['bptt'])} bptt", flush=True)
