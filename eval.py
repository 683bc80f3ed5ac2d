"""
One evaluation protocol for every RNN checkpoint, whichever trainer made it (train_smt.py or train_bptt.py).

The RNN runs alone over held-out sequences of L tokens from its own initial memory with teacher forcing (the memory
after x_0..x_t predicts y_t), for an L that may exceed the training window (default 4x: block_size for BPTT,
context_len Tc for SMT), and reports its CE in bits/token overall and by position bucket (does it still use what it
read long ago, past the window it was trained on?), with next-token accuracy and the unigram/bigram baselines.
The sequences are the same for every checkpoint: a fixed seed picks fixed positions of the validation stream (for
a given n_seqs and L). For SMT checkpoints also: the teacher's next-token CE on the same sequences (its past cut to
the last Tc tokens; every teacher_every-th position, as each costs a full encoder pass), and the reference protocol, the memory seeded by the encoder on the first Tc tokens and the RNN
alone on the rest.

    python eval.py --ckpt=out-shakespeare/ckpt.pt
    python eval.py --out_dir=out-shakespeare-bptt --L=1024 --json=eval.json
"""
import json as jsonlib
import sys

import torch
import torch.nn.functional as F

import configurator
from common import LOG2E, eval_sequences, load_checkpoint, load_data, rnn_nll, setup_system
from model import RNN, RNNConfig

out_dir = 'out-shakespeare'
ckpt = ''  # a checkpoint file; default out_dir/ckpt.pt
dataset = ''  # default: the checkpoint's own dataset
L = 0  # tokens per sequence; 0: 4x the training window
n_seqs = 64  # held-out sequences
n_buckets = 8  # equal-width position buckets for the by-position CE
seed = 0  # picks the sequences; keep it fixed to compare checkpoints
teacher_every = 8  # the teacher is scored on every 8th position: one encoder pass per position costs L*Tc
batch_size = 16
json = ''  # also write the results as JSON to this file ('-': print only the JSON)
device = 'auto'
dtype = 'float32'  # the same numbers on every run; bfloat16 is faster on a GPU
configurator.load(globals(), sys.argv[1:])

if n_seqs < 1 or n_buckets < 1 or teacher_every < 1 or L < 0:
    configurator.fail(f"n_seqs, n_buckets and teacher_every must be >= 1 and L >= 0, got {n_seqs}, {n_buckets}, "
                      f"{teacher_every}, {L}")
sys_ = setup_system(device, dtype, seed)
dev, ctx = sys_['device'], sys_['ctx']
path = ckpt or f"{out_dir}/ckpt.pt"
ck = load_checkpoint(path)
meta, cfg = ck.get('meta', {}), ck['config']
trainer = ck.get('trainer', 'smt' if 'teacher' in ck else 'bptt')
has_teacher = 'teacher' in ck and 'teacher_args' in ck
window = ck['teacher_args']['context_len'] if has_teacher else cfg['block_size']
L = L or 4 * window
dataset = dataset or meta.get('dataset') or cfg['dataset']
data = load_data(dataset, sys_, prepare=False)
if data.vocab_size != ck['rnn_args']['vocab_size']:
    configurator.fail(f"{path} has a vocabulary of {ck['rnn_args']['vocab_size']} but dataset '{dataset}' has "
                      f"{data.vocab_size}; evaluate it on the data it was trained on ({meta.get('dataset', '?')})")
if len(data.val) < L + 2:
    configurator.fail(f"L={L} is longer than the validation data of '{dataset}' ({len(data.val)} tokens); use a "
                      f"smaller --L")

rnn = RNN(RNNConfig(**ck['rnn_args']))
rnn.load_state_dict(ck['rnn'])
rnn.to(dev).eval()
x, y = eval_sequences(data, n_seqs, L, seed)
valid = y >= 0


def summary(nll, hits, mask):
    """bits/token and next-token accuracy over the targets in mask."""
    n = mask.sum().item()
    return {'bits': nll[mask].double().sum().item() / n * LOG2E, 'acc': hits[mask].double().sum().item() / n}


# 1. the RNN alone from its initial memory, by position bucket
nll, hits = rnn_nll(rnn, x, y, ctx, batch_size=batch_size, with_correct=True)
edges = sorted({round(i * L / n_buckets) for i in range(n_buckets + 1)})
pos = torch.arange(L)[None]
buckets = [{'start': a, 'end': b, **summary(nll, hits, valid & (pos >= a) & (pos < b))}
           for a, b in zip(edges[:-1], edges[1:])]
result = {'checkpoint': path, 'trainer': trainer, 'backbone': ck['rnn_args']['backbone'], 'dataset': dataset, 'L': L,
          'rnn': {**summary(nll, hits, valid), 'by_position': buckets}}
unigram, bigram = data.baselines(x, y)
result['baselines'] = {'unigram': unigram, 'bigram': bigram}
result['teacher'] = result['rnn_encoder_seeded'] = None

# 2. SMT checkpoints: the teacher on the same positions, and the RNN seeded by the encoder
if has_teacher:
    from encoder import Teacher, TeacherConfig
    teacher = Teacher(TeacherConfig(**ck['teacher_args']))
    teacher.load_state_dict(ck['teacher'])
    teacher.to(dev).eval()
    Tc = teacher.cfg.context_len
    # the past of every teacher_every-th position, cut to the last Tc tokens and left-padded: (n_seqs * L', Tc)
    pasts = F.pad(x, (Tc - 1, 0)).unfold(1, Tc, 1)[:, ::teacher_every].reshape(-1, Tc)
    n_past = torch.clamp(torch.arange(0, L, teacher_every) + 1, max=Tc).repeat(n_seqs)
    t_y, t_valid = y[:, ::teacher_every].flatten(), valid[:, ::teacher_every].flatten()
    t_nll = []
    with torch.no_grad():
        for i in range(0, pasts.size(0), 16 * batch_size):
            with ctx:
                m = teacher.encode(pasts[i:i + 16 * batch_size].to(dev), n_past[i:i + 16 * batch_size].to(dev))
                logits = teacher.decode(m, m.new_zeros(m.size(0), 0, dtype=torch.long))[:, 0]
            t_nll.append(F.cross_entropy(logits.float(), t_y[i:i + 16 * batch_size].to(dev),
                                         ignore_index=-1, reduction='none').cpu())
    result['teacher'] = {'bits': torch.cat(t_nll)[t_valid].double().mean().item() * LOG2E}
    if L > Tc:  # the reference protocol: the encoder reads x_0..x_{Tc-1}, the RNN alone predicts y_Tc onwards
        with torch.no_grad(), ctx:
            m_seed = torch.cat([teacher.encode(x[i:i + batch_size, :Tc].to(dev),
                                               torch.full((x[i:i + batch_size].size(0),), Tc, device=dev))
                                for i in range(0, n_seqs, batch_size)])
        s_nll, s_hits = rnn_nll(rnn, x[:, Tc:], y[:, Tc:], ctx, m0=m_seed, batch_size=batch_size, with_correct=True)
        result['rnn_encoder_seeded'] = {**summary(s_nll, s_hits, valid[:, Tc:]), 'start': Tc}

# 3. report
if json != '-':
    r = result
    print(f"{path}: {r['trainer']} {r['backbone']} RNN, iteration {ck['iter_num']} | {dataset} val: {n_seqs} sequences "
          f"of L={L} (training window {window}), seed {seed}")
    print(f"RNN alone from its initial memory: {r['rnn']['bits']:.4f} bits/token, accuracy {r['rnn']['acc']:.3f}")
    print(f"  {'positions':>12} {'bits':>8} {'acc':>6}")
    for b in buckets:
        print(f"  {b['start']:>5}-{b['end'] - 1:<6} {b['bits']:8.4f} {b['acc']:6.3f}")
    print(f"baselines: unigram {unigram:.4f}, bigram {bigram:.4f} bits/token")
    if r['teacher']:
        print(f"teacher (next token from the last {Tc} tokens, one position in {teacher_every}): "
              f"{r['teacher']['bits']:.4f} bits/token")
    if r['rnn_encoder_seeded']:
        s = r['rnn_encoder_seeded']
        print(f"RNN seeded by the encoder on the first {Tc} tokens, positions {Tc}-{L - 1}: {s['bits']:.4f} "
              f"bits/token, accuracy {s['acc']:.3f}")
    elif has_teacher:
        print(f"(no encoder-seeded run: L={L} leaves nothing after the first Tc={Tc} tokens)")
if json:
    text = jsonlib.dumps(result, indent=1)
    if json == '-':
        print(text)
    else:
        with open(json, 'w') as f:
            f.write(text + '\n')
