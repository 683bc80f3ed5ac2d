"""
Throughput of one full training step (forward, backward, gradient clipping, AdamW) of the same RNN trained three ways:
  (a) smt-ref    SMT with the reference labels: one transition per window from two bidirectional encoder passes
  (b) smt-many   SMT with many labels per window: L transitions from one pass of the causal encoder
  (c) bptt       BPTT: the readout's cross-entropy along rnn.run over the whole sequence, backprop through time
for context lengths Tc (SMT) = sequence lengths T (BPTT) in `lengths`. It prints ms per step, tokens/s (window or
sequence tokens), transitions/s (labelled transitions for SMT, RNN steps for BPTT) and the ratios of (b) to (a)
and to (c). Data are random tokens with a full past; the numbers are throughput only, not learning.

    python bench.py                                          # small sizes, CPU or GPU
    python bench.py --sizes=reference                        # docs/method.md sizes (a GPU: compile, bf16)
    python bench.py --lengths=1024 --backbone=transformer --iters=3

(c) calls rnn.run, so a backbone's fast whole-sequence path (cuDNN, a parallel scan) is what gets timed.
"""
import sys
import time

import torch
import torch.nn.functional as F

import configurator
from common import clip_grads, compile_enabled, device_name, make_optimizer, setup_system
from encoder import SMTObjective, Teacher, TeacherConfig, uniformity_indices
from model import RNN, RNNConfig

# -----------------------------------------------------------------------------
backbone = 'transformer'
lengths = '256,1024,4096'  # Tc for SMT, T for BPTT
sizes = 'small'  # 'small' (the CPU config, config/shakespeare.py) or 'reference' (docs/method.md)
modes = 'smt-ref,smt-many,bptt'
labels_per_window = 4096  # (b): L labelled transitions per window, as in train_smt.py, capped at each length's Tc
# batch per step: (a) min(ref_windows, ref_tokens // Tc) windows, (b) max(1, label_batch // L) windows,
# (c) max(1, bptt_tokens // T) sequences; 0: the size preset's value (memory-bound choices, see SIZES)
ref_windows = 0
ref_tokens = 0
label_batch = 0
bptt_tokens = 0
# optimizer: the trainers' defaults, so a timed step is a training step
learning_rate = 3e-4
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # separately for the RNN's and the teacher's parameters, as train_smt.py does; 0 disables
warmup = 2  # untimed steps (compilation happens here)
iters = 3  # timed steps
device = 'auto'
dtype = 'auto'  # bfloat16 autocast on CUDA, float32 on CPU
compile = 'auto'  # 'auto' (CUDA only), 'True', 'False'; (c) compiles the per-step updater of a Transformer backbone
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
if not set(mode_list) <= {'smt-ref', 'smt-many', 'bptt'} or not mode_list:
    configurator.fail(f"modes must be a comma-separated subset of smt-ref,smt-many,bptt, got {modes!r}")
if min(Ts) < 1 or labels_per_window < 1 or warmup < 0 or iters < 1:
    configurator.fail("lengths, labels_per_window and iters must be >= 1, warmup >= 0")

sys_ = setup_system(device, dtype, seed)
dev, ctx = sys_['device'], sys_['ctx']
do_compile = compile_enabled(compile, sys_['device_type'])
Tf, K, V = preset['future_len'], preset['model']['n_mem'], 256


def sync():
    if sys_['device_type'] == 'cuda':
        torch.cuda.synchronize()


def time_steps(step):
    """Seconds per call of step() after the warmup calls, averaged over iters."""
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return (time.perf_counter() - t0) / iters


def make_rnn(max_pos):
    cfg = RNNConfig(vocab_size=V, backbone=backbone, max_pos=max_pos,
                    **{k: v for k, v in preset['model'].items() if k != 'n_enc_layer'})
    try:
        return RNN(cfg).to(dev)
    except ValueError as e:  # an unknown backbone
        configurator.fail(str(e))


def smt_step_fn(T, encoder_type, L, B):
    """One SMT training step as train_smt.py takes it: the objective, backward, clipping, AdamW."""
    m = preset['model']
    teacher = Teacher(TeacherConfig(vocab_size=V, backbone=backbone, encoder_type=encoder_type, context_len=T,
                                    future_len=Tf, max_pos=T + K + Tf, **{k: m[k] for k in (
                                        'n_mem', 'd_model', 'n_head', 'n_enc_layer', 'n_dec_layer')})).to(dev)
    rnn = make_rnn(T + K + Tf)
    rnn.readout.requires_grad_(False)
    rnn.m0.requires_grad_(False)
    smt = SMTObjective(teacher, rnn, labels_per_window=L)
    optimizer = make_optimizer(smt.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
    fwd = torch.compile(smt) if do_compile else smt
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(V, (B, T + Tf + 1), generator=g)
    n_ctx = torch.full((B,), T)
    idx = uniformity_indices(n_ctx, L, K, 512, g).to(dev)
    x, n_ctx = x.to(dev), n_ctx.to(dev)
    rnn_params = [p for p in rnn.parameters() if p.requires_grad]

    def step():
        with ctx:
            loss, _ = fwd(x[:, :-1], x[:, 1:], n_ctx, idx)
        loss.backward()
        clip_grads(rnn_params, grad_clip)
        clip_grads(teacher.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def bptt_step_fn(T, B):
    """One BPTT step: from the RNN's initial memory, rnn.run over T inputs, readout CE at every step, backward
    through all T steps, clipping, AdamW. Only a Transformer updater is compiled (per step; a T-step unrolled graph
    would not compile), so cuDNN and scan paths of other backbones stay outside compiled regions."""
    rnn = make_rnn(K + Tf)
    if do_compile and backbone == 'transformer':
        rnn.updater.compile()
        rnn.readout.compile()
    optimizer = make_optimizer(rnn.parameters(), learning_rate, weight_decay, (beta1, beta2), sys_['device_type'])
    x = torch.randint(V, (B, T + 1), generator=torch.Generator().manual_seed(seed)).to(dev)

    def step():
        with ctx:
            logits = rnn.logits(rnn.run(rnn.initial_memory(B), x[:, :-1]))  # memory after x_<=t predicts x_{t+1}
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        clip_grads(rnn.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def ratio(r):
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def free():
    if sys_['device_type'] == 'cuda':
        torch.cuda.empty_cache()


m = preset['model']
print(f"bench: {device_name(dev)} | torch {torch.__version__} | {sys_['dtype']} | compile {do_compile} | "
      f"backbone {backbone} | sizes '{sizes}': memory K={K} x d={m['d_model']}, {m['n_head']} heads, encoder "
      f"{m['n_enc_layer']} / decoder {m['n_dec_layer']} / updater {m['n_rnn_layer']} layers, Tf={Tf}, vocab {V} | "
      f"warmup {warmup}, {iters} timed steps", flush=True)
header = f"{'T':>5} {'mode':<9} {'batch':>13} {'ms/step':>10} {'tokens/s':>12} {'trans/s':>12} {'vs smt-ref':>11}"
print(header + f" {'vs bptt':>8}\n" + '-' * (len(header) + 9), flush=True)
for T in Ts:
    rows = {}
    for mode in mode_list:
        if mode == 'smt-ref':
            B = max(1, min(ref_windows, ref_tokens // T))
            dt = time_steps(smt_step_fn(T, 'reference', 1, B))
            rows[mode] = (f"{B} windows", dt, B * (T + Tf) / dt, B / dt)
        elif mode == 'smt-many':
            L = min(T, labels_per_window)
            B = max(1, label_batch // L)
            dt = time_steps(smt_step_fn(T, 'causal', L, B))
            rows[mode] = (f"{B}x{L} labels", dt, B * (T + Tf) / dt, B * L / dt)
        else:
            B = max(1, bptt_tokens // T)
            dt = time_steps(bptt_step_fn(T, B))
            rows[mode] = (f"{B} seqs", dt, B * T / dt, B * T / dt)
        free()
        batch, dt, tok_s, trans_s = rows[mode]
        vs = [ratio(trans_s / rows[ref][3]) if ref in rows and ref != mode else '' for ref in ('smt-ref', 'bptt')]
        print(f"{T:>5} {mode:<9} {batch:>13} {dt * 1000:>10.1f} {tok_s:>12,.0f} {trans_s:>12,.0f} {vs[0]:>11} "
              f"{vs[1]:>8}", flush=True)
    if 'bptt' in rows:  # the ratios against (c) only exist once it ran: repeat them for the SMT rows
        for mode in ('smt-ref', 'smt-many'):
            if mode in rows:
                print(f"{T:>5} {mode:<9} transitions/s = {ratio(rows[mode][3] / rows['bptt'][3])} bptt", flush=True)
