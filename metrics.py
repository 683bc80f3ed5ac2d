"""
The measures of an RNN, one definition each, used by every trainer's evaluation (train_smt.py, train_dmt.py,
train_bptt.py), by eval.py and so by compare.py:

  rnn_nll          the RNN alone, teacher-forced from its initial memory (or from a given start memory)
  encoder_memories the reference protocol's seed: the teacher's memory of each sequence's first Tc tokens
  memory_drift     MSE(m^_t, m_t) between the RNN's own states after t steps and the teacher's memory of that past
  gap_nll          the teacher's next-token CE from the last Tc tokens of each position's past, the RNN's readout
                   on those memories and on one RNN step from them (eval.py): where the RNN loses what it knows
  teacher_window_bits  the same on the fixed SMT validation windows (the trainers)
  rnn_report       the trainers' report: all of the above for the RNN on fixed sequences, split over processes

The memoryless baselines (unigram, bigram) depend on the dataset and are the dataset's own (data.baselines).
"""
import math

import torch
import torch.nn.functional as F

from common import all_reduce_sums

LOG2E = 1.0 / math.log(2)


@torch.no_grad()
def rnn_nll(rnn, x, y, ctx, m0=None, batch_size=16, with_correct=False, progress=None, chunk=4096):
    """Teacher-forced run of the RNN alone over x (N, L) from its initial memory (or from m0, (N, K, d)): the memory
    after x_0..x_t predicts y_t. Returns the per-position NLL in nats (N, L) on the CPU, 0 where y is -1, and with
    with_correct also whether the argmax prediction was y (N, L), False where y is -1.
    Time runs through the backbone's fast path (the step loop where it has none) in chunks of `chunk` steps, the
    memory carried over (a long L needs no (N, L, K, d) tensor); the readout is batched. progress: a
    common.Progress fed with the tokens done."""
    device = next(rnn.parameters()).device
    out, hits = [], []
    for i in range(0, x.size(0), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        with ctx:
            m = rnn.initial_memory(xb.size(0)) if m0 is None else m0[i:i + batch_size].to(device)
        nll_b, hit_b = [], []
        for a in range(0, xb.size(1), chunk):
            with ctx:
                logits, m = rnn.run_logits(m, xb[:, a:a + chunk])  # (b, T, V) and the memory carried on
            yc = yb[:, a:a + chunk]
            nll = F.cross_entropy(logits.float().flatten(0, 1), yc.flatten(), ignore_index=-1, reduction='none')
            nll_b.append(nll.view(yc.shape).cpu())
            hit_b.append((logits.argmax(-1) == yc).cpu())
            if progress is not None:
                progress.update(yc.numel())
        out.append(torch.cat(nll_b, 1))
        hits.append(torch.cat(hit_b, 1))
    return (torch.cat(out), torch.cat(hits)) if with_correct else torch.cat(out)


@torch.no_grad()
def encoder_memories(teacher, x, ctx, batch_size=16):
    """The teacher's memories of the first Tc tokens of each sequence in x (N, L >= Tc), (N, K, d) on the teacher's
    device: the seed of the reference protocol, where the encoder starts the RNN."""
    Tc, device = teacher.cfg.context_len, next(teacher.parameters()).device
    with ctx:
        return torch.cat([teacher.memory(x[i:i + batch_size].to(device), Tc - 1)
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
            present = torch.tensor([off + s - 1 for s in steps], device=device)  # the present after s steps
            labels = teacher.memory(xb, present.expand(b, -1))  # (b, S, K, d): the past up to each present
            err = (ms[:, [s - 1 for s in steps]].float() - labels.float()).pow(2).mean(dim=(-2, -1))
            total += err.sum(0).double().cpu()
    return {s: (total[k] / x.size(0)).item() for k, s in enumerate(steps)}


@torch.no_grad()
def gap_nll(rnn, teacher, x, y, ctx, every=1, batch_size=256, progress=None):
    """Where the RNN loses what its teacher knows, at every `every`-th position t of x (N, L): the teacher's
    next-token NLL ('teacher': the decoder's first output from the teacher's memory of the past up to x_t, its last
    Tc tokens: Teacher.memory), the RNN's readout on that memory ('readout': what the readout loses), and on one RNN
    step from the teacher's memory of the past before x_t ('one_step': what a transition adds to that); the RNN
    alone (rnn_nll) adds what its own states drift away. Returns {name: (nll, hits)}, each (N * L/every,) flattened
    sequence by sequence: the NLL in nats, 0 where the target is -1, and whether the argmax prediction was the
    target. batch_size: memories a call; progress: a common.Progress fed with the positions done."""
    N, L = x.shape
    device = next(rnn.parameters()).device
    present = torch.arange(0, L, every, device=device)
    # each memory once: the pasts up to x_t and before it (-1: the empty past); with every = 1 they overlap
    want = torch.unique(torch.cat([present - 1, present]))
    i_before, i_now = torch.searchsorted(want, present - 1), torch.searchsorted(want, present)
    t_y, per = y[:, ::every], max(1, batch_size // len(want))
    out = {'teacher': [], 'readout': [], 'one_step': []}
    for i in range(0, N, per):
        xs, ys = x[i:i + per].to(device), t_y[i:i + per].flatten().to(device)
        with ctx:
            m = teacher.memory(xs, want.expand(xs.size(0), -1))
            before, now = m[:, i_before].flatten(0, 1), m[:, i_now].flatten(0, 1)
            stepped = rnn.step(before.to(now.dtype), xs[:, ::every].flatten())
            decoded = teacher.decode(now, xs.new_zeros(now.size(0), 0))[:, 0]
            for name, logits in (('teacher', decoded), ('readout', rnn.logits(now)), ('one_step', rnn.logits(stepped))):
                logits = logits.float()
                nll = F.cross_entropy(logits, ys, ignore_index=-1, reduction='none')
                out[name].append((nll.cpu(), ((logits.argmax(-1) == ys) & (ys >= 0)).cpu()))
        if progress is not None:
            progress.update(xs.size(0) * len(present))
    return {k: tuple(torch.cat(parts) for parts in zip(*v)) for k, v in out.items()}


@torch.no_grad()
def teacher_window_bits(teacher, windows, sys_, ctx, batch_size, whole=False):
    """The teacher's next-token CE in bits/token on fixed SMT windows (x, y, n_ctx) (data.smt_windows): the
    decoder's first output from the memory of one input's past in each window, the ceiling the RNN imitates. On a
    stream that input is the present. whole: each window is an episode or image whole (data.whole_windows),
    and the input is a random one of those with a target, the same every call (its last, on an
    image the near-always-black corner, would say nothing of the rest). Each process takes its share of the
    windows; the sums are all-reduced (every process must call this)."""
    Tc, device = teacher.cfg.context_len, next(teacher.parameters()).device
    has = windows[1][:, :Tc] >= 0
    if whole:  # a random input with a target: the largest of uniform draws over those inputs
        score = torch.where(has, torch.rand(has.shape, generator=torch.Generator().manual_seed(0)), -1.0)
    else:  # the last input with a target
        score = torch.where(has, torch.arange(Tc, dtype=torch.float), -1.0)
    pos = torch.where(has.any(1), score.argmax(1), Tc - 1)  # none: the present
    sums = {'ce': 0.0, 'n': 0.0}  # CE summed over the scored targets, their number
    mine = list(range(sys_['rank'], windows[0].size(0), sys_['world_size']))
    for i in range(0, len(mine), batch_size):
        x, y, n_ctx, p = (v[mine[i:i + batch_size]].to(device) for v in (*windows, pos))
        with ctx:
            m = teacher.window_memories(x[:, :Tc], Tc - n_ctx, p[:, None])[:, 0]
            logits = teacher.decode(m, x[:, :0])
        target = y.gather(1, p[:, None])[:, 0]
        sums['ce'] += F.cross_entropy(logits[:, 0].float(), target, ignore_index=-1, reduction='sum').double().item()
        sums['n'] += (target >= 0).sum().item()
    s = all_reduce_sums(sums, sys_)
    return s['ce'] / max(s['n'], 1) * LOG2E


def bits_and_accuracy(nll, hits, mask):
    """bits/token and next-token accuracy over the targets in mask (None where it holds no target, e.g. a position
    bucket of a task whose only target is at the end)."""
    n = mask.sum().item()
    if n == 0:
        return {'bits': None, 'acc': None}
    return {'bits': nll[mask].double().sum().item() / n * LOG2E, 'acc': hits[mask].double().sum().item() / n}


@torch.no_grad()
def rnn_report(rnn, x, y, sys_, ctx, batch_size, teacher=None, drift_steps=()):
    """The trainers' evaluation of the RNN on the fixed sequences (x, y): its CE in bits/token alone from its
    initial memory ('rnn_bits'); with a teacher also from the teacher's memory of the first Tc tokens, scored on
    the rest ('rnn_enc_bits', absent when L <= Tc, so that every number is finite unless the run diverged), and
    the drift of both rollouts at drift_steps ('drift_init/<t>', 'drift_enc/<t>'). Each process takes its share
    of the sequences and the sums are all-reduced: every process must call this."""
    rows = list(range(sys_['rank'], x.size(0), sys_['world_size']))
    L, Tc = x.size(1), teacher.cfg.context_len if teacher is not None else 0
    steps_init = [s for s in drift_steps if s <= L] if teacher is not None else []
    steps_enc = [s for s in drift_steps if s <= L - Tc] if teacher is not None else []
    # every process sums the same names (its share of the sequences; zeros where it has none)
    sums = dict.fromkeys(['nll', 'n', 'enc_nll', 'enc_n'] + [f'drift_init/{s}' for s in steps_init]
                         + [f'drift_enc/{s}' for s in steps_enc], 0.0)
    if rows:
        xr, yr = x[rows], y[rows]
        sums['nll'], sums['n'] = rnn_nll(rnn, xr, yr, ctx, batch_size=batch_size).double().sum(), (yr >= 0).sum()
        if teacher is not None:
            for s, mse in memory_drift(rnn, teacher, xr, ctx, False, steps_init, batch_size).items():
                sums[f'drift_init/{s}'] = mse * len(rows)
            if L > Tc:
                m_enc = encoder_memories(teacher, xr, ctx, batch_size)
                nll = rnn_nll(rnn, xr[:, Tc:], yr[:, Tc:], ctx, m0=m_enc, batch_size=batch_size)
                sums['enc_nll'], sums['enc_n'] = nll.double().sum(), (yr[:, Tc:] >= 0).sum()
                for s, mse in memory_drift(rnn, teacher, xr, ctx, True, steps_enc, batch_size).items():
                    sums[f'drift_enc/{s}'] = mse * len(rows)
    s = all_reduce_sums(sums, sys_)
    report = {'rnn_bits': s['nll'] / s['n'] * LOG2E}
    if teacher is None:
        return report
    if s['enc_n']:  # none when L <= Tc
        report['rnn_enc_bits'] = s['enc_nll'] / s['enc_n'] * LOG2E
    return {**report, **{k: v / x.size(0) for k, v in s.items() if k.startswith('drift_')}}


def format_rnn_report(r):
    """rnn_report's numbers as the trainers' eval line(s)."""
    line = f"rnn {r['rnn_bits']:.4f} bits/token (alone, from its initial memory)"
    if not math.isnan(r.get('rnn_enc_bits', float('nan'))):
        line += f", {r['rnn_enc_bits']:.4f} (from the encoder's memory)"
    return line


def format_drift(r):
    drift = lambda key: ' '.join(f"{k.split('/')[1]}:{v:.4f}" for k, v in r.items() if k.startswith(key))
    return (f"drift MSE(m^_t, m_t) after t steps, from the initial memory {drift('drift_init/')} | from the encoder "
            f"{drift('drift_enc/')}")
