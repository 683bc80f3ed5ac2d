"""
One evaluation protocol for every RNN checkpoint, whichever trainer made it (train_smt.py, train_dmt.py,
train_bptt.py). Its measures are metrics.py's, the ones the trainers' own evaluations use.

The RNN runs alone over held-out sequences of L tokens from its own initial memory with teacher forcing (the memory
after x_0..x_t predicts y_t), for an L that may exceed the training window (default 4x the largest training window
of the checkpoints evaluated: block_size for BPTT, context_len Tc for SMT), and reports its CE in bits/token overall
and by position bucket (does it still use what it read long ago, past the window it was trained on?), with
next-token accuracy and the unigram/bigram baselines. The sequences are the same for every checkpoint of a call:
one L, and a fixed seed picks fixed positions of the validation stream (for a given n_seqs and L). For SMT
checkpoints also: the teacher's next-token CE on the same sequences (its past cut to the last Tc tokens; every
teacher_every-th position, as each costs a full encoder pass); where the gap between teacher and RNN is, on those
positions by bucket: the RNN's readout on the teacher's memories, one RNN step from them, and the RNN alone; and the
reference protocol, the memory seeded by the encoder on the first Tc tokens and the RNN alone on the rest.

For SMT/DMT checkpoints also the drift MSE(m^_t, m_t) between the RNN's own states and the teacher's memories of
the same past, after t steps, for rollouts from both starts (the initial memory; the encoder's memory of Tc tokens).
Several checkpoints (comma-separated) are evaluated on the same tokens and compared in one table at the end.

    python eval.py --ckpt=out-shakespeare/ckpt.pt
    python eval.py --out_dir=out-shakespeare-bptt --L=1024 --json=eval.json
    python eval.py --ckpt=out-shakespeare/ckpt.pt,out-shakespeare-dmt/ckpt.pt    # SMT vs SMT -> DMT
"""
import json as jsonlib
import os
import sys

import torch

import configurator
from checkpoint import check_writable, load_checkpoint
from common import Progress, setup_system
from configurator import at_least, device_rule, dtype_rule, int_list, satisfies
from data import eval_sequences, load_data
from metrics import LOG2E, bits_and_accuracy, encoder_memories, gap_nll, memory_drift, rnn_nll
from model import RNN, RNNConfig

out_dir = 'out-shakespeare'
ckpt = ''  # a checkpoint file, or several separated by commas; default out_dir/ckpt.pt
dataset = ''  # default: the checkpoint's own dataset
L = 0  # tokens per sequence; 0: 4x the largest training window of the checkpoints
n_seqs = 64  # held-out sequences
n_buckets = 8  # equal-width position buckets for the by-position CE
seed = 0  # picks the sequences; keep it fixed to compare checkpoints
teacher_every = 8  # the teacher is scored on every 8th position: one encoder pass per position costs L*Tc
batch_size = 16
drift_steps = '1,4,16,64,256'  # rollout steps at which the drift is reported (teacher checkpoints)
json = ''  # also write the results as JSON to this file ('-': print only the JSON)
device = 'auto'
dtype = 'float32'  # the same numbers on every run; bfloat16 is faster on a GPU
config = configurator.load(globals(), sys.argv[1:])
configurator.check(config, {  # every key, before anything is read or evaluated
    'L': at_least(0), 'n_seqs': at_least(1), 'n_buckets': at_least(1), 'teacher_every': at_least(1),
    'batch_size': at_least(1), 'drift_steps': int_list(1),
    'json': [satisfies(lambda v, _: v in ('', '-') or os.path.isdir(os.path.dirname(v) or '.'),
                       "its folder does not exist", "create it first, or write the JSON elsewhere"),
             satisfies(lambda v, _: not os.path.isdir(v), "is a folder", "name a file in it, e.g. eval.json")],
    'device': device_rule, 'dtype': dtype_rule,
})
if json not in ('', '-'):
    check_writable(os.path.dirname(json) or '.', f"json={json}")  # before the evaluation, not after it
sys_ = setup_system(device, dtype, seed)
dev, ctx = sys_['device'], sys_['ctx']


def prepare(path):
    """Read one checkpoint and its data and check that they can be evaluated: every checkpoint is checked so before
    any evaluation starts, so a bad path late in --ckpt costs nothing."""
    ck = load_checkpoint(path)
    meta, cfg = ck.get('meta', {}), ck['config']
    has_teacher = 'teacher' in ck and 'teacher_args' in ck
    window = ck['teacher_args']['context_len'] if has_teacher else cfg['block_size']
    name = dataset or meta.get('dataset') or cfg['dataset']
    try:
        data = load_data(name, sys_, prepare=False)
    except ValueError as e:
        configurator.fail(str(e))
    if data.vocab_size != ck['rnn_args']['vocab_size']:
        configurator.fail(f"{path} has a vocabulary of {ck['rnn_args']['vocab_size']} but dataset '{name}' has "
                          f"{data.vocab_size}; evaluate it on the data it was trained on ({meta.get('dataset', '?')})")
    return [path, ck, data, name, window]


def fix_length(item, L):
    """The sequence length for one checkpoint's data: L, or the episode length an episodic dataset fixes."""
    path, ck, data, name, window = item
    L = data.meta.get('length') or L
    if hasattr(data, 'val') and len(data.val) < L + 2:
        configurator.fail(f"L={L} is longer than the validation data of '{name}' ({len(data.val)} tokens); use a "
                          f"smaller --L")
    return item + [L]


def evaluate(path, ck, data, name, window, L):
    """Every number of the protocol for one checkpoint, as the JSON-ready dict (plus the iteration and window)."""
    trainer = ck.get('trainer', 'smt' if 'teacher' in ck else 'bptt')
    has_teacher = 'teacher' in ck and 'teacher_args' in ck
    rnn = RNN(RNNConfig(**ck['rnn_args']))
    rnn.load_state_dict(ck['rnn'])
    rnn.to(dev).eval()
    x, y = eval_sequences(data, n_seqs, L, seed)
    valid = y >= 0

    # 1. the RNN alone from its initial memory, by position bucket
    nll, hits = rnn_nll(rnn, x, y, ctx, batch_size=batch_size, with_correct=True,
                        progress=Progress(x.numel(), f"{path}: RNN alone, tokens"))
    edges = sorted({round(i * L / n_buckets) for i in range(n_buckets + 1)})
    pos = torch.arange(L)[None]
    buckets = [{'start': a, 'end': b, **bits_and_accuracy(nll, hits, valid & (pos >= a) & (pos < b))}
               for a, b in zip(edges[:-1], edges[1:])]
    result = {'checkpoint': path, 'trainer': trainer, 'backbone': ck['rnn_args']['backbone'], 'dataset': name,
              'L': L, 'iter_num': ck['iter_num'], 'smt_iter_num': ck.get('smt_iter_num'), 'window': window,
              'rnn': {**bits_and_accuracy(nll, hits, valid), 'by_position': buckets}}
    unigram, bigram = data.baselines(x, y)
    result['baselines'] = {'unigram': unigram, 'bigram': bigram}
    result['teacher'] = result['gap'] = result['rnn_encoder_seeded'] = result['drift'] = None
    if not has_teacher:
        return result

    # 2. teacher checkpoints: the teacher on the same positions, the RNN seeded by the encoder, the drift
    from encoder import Teacher, TeacherConfig
    teacher = Teacher(TeacherConfig(**ck['teacher_args']))
    teacher.load_state_dict(ck['teacher'])
    teacher.to(dev).eval()
    Tc = teacher.cfg.context_len
    every = 1 if data.meta.get('episodic') else teacher_every  # a probe's few targets: each of them
    # the teacher on the same positions, and where the RNN loses what it knows: its readout on the teacher's
    # memories, one RNN step from them, and the RNN alone (from the run above) at the same positions
    gap = gap_nll(rnn, teacher, x, y, ctx, every, 16 * batch_size,
                  Progress(n_seqs * len(range(0, L, every)), f"{path}: teacher, positions"))
    gap['alone'] = (nll[:, ::every].flatten(), hits[:, ::every].flatten())
    t_pos, t_ok = torch.arange(0, L, every).repeat(n_seqs), y[:, ::every].flatten() >= 0
    result['teacher'] = {**bits_and_accuracy(*gap['teacher'], t_ok), 'every': every}
    result['gap'] = {'every': every, 'by_position': [
        {'start': a, 'end': b, **{k: bits_and_accuracy(*v, t_ok & (t_pos >= a) & (t_pos < b)) for k, v in gap.items()}}
        for a, b in zip(edges[:-1], edges[1:])], **{k: bits_and_accuracy(*v, t_ok) for k, v in gap.items()}}
    steps = [int(s) for s in drift_steps.split(',')]
    result['drift'] = {'from_initial': memory_drift(rnn, teacher, x, ctx, False, steps, batch_size)}
    if L > Tc:  # the reference protocol: the encoder reads x_0..x_{Tc-1}, the RNN alone predicts y_Tc onwards
        m_seed = encoder_memories(teacher, x, ctx, batch_size)
        s_nll, s_hits = rnn_nll(rnn, x[:, Tc:], y[:, Tc:], ctx, m0=m_seed, batch_size=batch_size, with_correct=True,
                                progress=Progress(x[:, Tc:].numel(), f"{path}: RNN from the encoder's memory, tokens"))
        result['rnn_encoder_seeded'] = {**bits_and_accuracy(s_nll, s_hits, valid[:, Tc:]), 'start': Tc}
        result['drift']['from_encoder'] = memory_drift(rnn, teacher, x, ctx, True, steps, batch_size)
    return result


def report(r):
    L, Tc = r['L'], r['window']
    print(f"{r['checkpoint']}: {r['trainer']} {r['backbone']} RNN, iteration {r['iter_num']} | {r['dataset']} val: "
          f"{n_seqs} sequences of L={L} (training window {Tc}), seed {seed}")
    print(f"RNN alone from its initial memory: {r['rnn']['bits']:.4f} bits/token, accuracy {r['rnn']['acc']:.3f}")
    print(f"  {'positions':>12} {'bits':>8} {'acc':>6}")
    for b in r['rnn']['by_position']:
        print(f"  {b['start']:>5}-{b['end'] - 1:<6} " + (f"{b['bits']:8.4f} {b['acc']:6.3f}" if b['bits'] is not None
                                                      else f"{'-':>8} {'-':>6}  (no targets)"))
    print(f"baselines: unigram {r['baselines']['unigram']:.4f}, bigram {r['baselines']['bigram']:.4f} bits/token")
    if r['teacher']:
        print(f"teacher (next token from its memory of the past, one position in {r['teacher']['every']}): "
              f"{r['teacher']['bits']:.4f} bits/token")
    if r['gap']:
        g, cols = r['gap'], ('teacher', 'readout', 'one_step', 'alone')
        cell = lambda v: f"{v['bits']:8.4f} {v['acc']:6.3f}" if v['bits'] is not None else f"{'-':>8} {'-':>6}"
        print(f"where the gap is, on the teacher's positions (bits, accuracy): the teacher; the RNN's readout on the "
              f"teacher's memory; one RNN step from the teacher's memory before; the RNN alone")
        print(f"  {'positions':>12} " + ' '.join(f"{c.replace('_', ' '):>15}" for c in cols))
        for b in g['by_position'] + [dict(start=0, end=L, **{k: g[k] for k in cols})]:
            print(f"  {b['start']:>5}-{b['end'] - 1:<6} " + ' '.join(cell(b[k]) for k in cols))
    if r['rnn_encoder_seeded']:
        s = r['rnn_encoder_seeded']
        print(f"RNN seeded by the encoder on the first {Tc} tokens, positions {Tc}-{L - 1}: {s['bits']:.4f} "
              f"bits/token, accuracy {s['acc']:.3f}")
    elif r['teacher']:
        print(f"(no encoder-seeded run: L={L} leaves nothing after the first Tc={Tc} tokens)")
    for start, curve in (r['drift'] or {}).items():
        print(f"drift MSE(m^_t, m_t) after t steps, {start.replace('_', ' ')}: "
              + '  '.join(f"t={t}: {v:.4f}" for t, v in curve.items()))


def compare_table(results):
    """One row per checkpoint, on the same tokens: the RNN from both starts and the drift at the last common step."""
    def last(r, start):
        curve = (r['drift'] or {}).get(start)
        return f"{list(curve.values())[-1]:.4f} (t={list(curve)[-1]})" if curve else '-'
    print("\n| checkpoint | trainer | iter | RNN from initial memory (bits) | RNN from encoder memory (bits) | "
          "drift from initial | drift from encoder |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        seeded = f"{r['rnn_encoder_seeded']['bits']:.4f}" if r['rnn_encoder_seeded'] else '-'
        print(f"| {r['checkpoint']} | {r['trainer']} | {r['iter_num']} | {r['rnn']['bits']:.4f} | {seeded} | "
              f"{last(r, 'from_initial')} | {last(r, 'from_encoder')} |")


# every checkpoint and its data are checked before the first evaluation; each report prints as soon as it is done
prepared = [prepare(p) for p in (ckpt or f"{out_dir}/ckpt.pt").split(',')]
# one call is one set of tokens: one L for every checkpoint, 4x the largest training window unless --L is given
prepared = [fix_length(item, L or 4 * max(w for *_, w in prepared)) for item in prepared]
results = []
for item in prepared:
    results.append(evaluate(*item))
    if json != '-':
        report(results[-1])
        sys.stdout.flush()
if json != '-' and len(results) > 1:
    compare_table(results)
if json:  # one checkpoint: its dict; several: a list of them
    text = jsonlib.dumps(results[0] if len(results) == 1 else results, indent=1)
    if json == '-':
        print(text)
    else:
        try:
            with open(json, 'w') as f:
                f.write(text + '\n')
        except OSError as e:
            configurator.fail(f"could not write {json} ({e.strerror}); the results are printed above")
