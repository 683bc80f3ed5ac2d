"""
Where the needle goes: how a retrieval checkpoint's teacher memories and its RNN's own states carry the needle
(docs/results.md, section 2). Held-out retrieval episodes get their needle moved to position p and its value set to
each of the task's values in turn; the rest of every episode stays as drawn. Per position t it prints

    teacher sep   how much the teacher's memory after x_t depends on the value: the variance across values (each
                  episode's own), over the memory's mean square
    rnn sep       the same for the RNN's state running alone from its initial memory
    flag          teacher and RNN: how much the memory after x_t changes when the NEEDLE at p is replaced by a symbol
                  (mean square difference over mean square): what the step reading the value needs to know
and the write: one RNN step from the teacher's memory after NEEDLE, reading each value (its separation, as above,
and its error against the teacher's memory after the value); then the readout's accuracy at the query from the
teacher's memories and from the RNN's own states.

    python scripts/needle.py --ckpt=out-probe/ckpt.pt                # a train_smt.py or train_dmt.py checkpoint
    python scripts/needle.py --ckpt=out-probe/ckpt.pt --position=40 --n_episodes=128
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import configurator  # noqa: E402
from checkpoint import load_checkpoint  # noqa: E402
from data.synthetic import load_synthetic  # noqa: E402
from encoder import Teacher, TeacherConfig  # noqa: E402
from model import RNN, RNNConfig  # noqa: E402

ckpt = 'out-probe/ckpt.pt'
position = 10  # p: the NEEDLE's position (its value at p + 1)
n_episodes = 64
seed = 1337
configurator.load(globals(), sys.argv[1:])
# -----------------------------------------------------------------------------
ck = load_checkpoint(ckpt, need=('rnn', 'rnn_args', 'teacher', 'teacher_args', 'config'))
dataset = ck['config']['dataset']
if not dataset.startswith('synthetic:retrieval'):
    configurator.fail(f"ckpt={ckpt}: trained on '{dataset}'; this reads retrieval checkpoints (synthetic:retrieval:L)")
data = load_synthetic(dataset)
task, L = data.task, data.length
if not 0 <= position <= L - 3:
    configurator.fail(f"position={position}: the needle and its value sit before the query, so 0 <= position "
                      f"<= {L - 3}")
teacher, rnn = Teacher(TeacherConfig(**ck['teacher_args'])), RNN(RNNConfig(**ck['rnn_args']))
teacher.load_state_dict(ck['teacher'])
rnn.load_state_dict(ck['rnn'])
teacher.eval()
rnn.eval()
x, _ = data.sequences('val', n_episodes, L, torch.Generator().manual_seed(seed))
x[:, :L - 1] = torch.where(x[:, :L - 1] == task.NEEDLE, 0, x[:, :L - 1])  # one needle only: the one placed at p
x[:, position] = task.NEEDLE
V = task.n_symbols
every = torch.arange(L).expand(n_episodes, -1)


@torch.no_grad()
def memories(x):
    """The teacher's memories after every input, and the RNN's own states from its initial memory: (B, L, K, d)."""
    return teacher.memory(x, every), rnn.run(rnn.initial_memory(x.size(0)), x)


def with_value(v):
    xv = x.clone()
    xv[:, position + 1] = v
    return xv


def sep(ms):
    """ms (V, B, L, K, d) -> (L,): the variance across values over the mean square, per position."""
    return ms.var(0, unbiased=False).mean((0, 2, 3)) / ms.pow(2).mean((0, 1, 3, 4))


def changed(a, b):
    return (a - b).pow(2).mean((0, 2, 3)) / a.pow(2).mean((0, 2, 3))


with torch.no_grad():
    runs = [memories(with_value(v)) for v in range(V)]
    m, h = torch.stack([r[0] for r in runs]), torch.stack([r[1] for r in runs])
    no_needle = x.clone()
    no_needle[:, position] = 0
    m0, h0 = memories(no_needle)
    writes = torch.stack([rnn.step(m[v, :, position], torch.full((n_episodes,), v)) for v in range(V)])
    write_err = (writes - m[:, :, position + 1]).pow(2).mean() / m[:, :, position + 1].pow(2).mean()
    answer = torch.arange(V)[:, None].expand(V, n_episodes)
    acc = [(rnn.logits(s[:, :, L - 1].flatten(0, 1)).argmax(-1) == answer.flatten()).float().mean().item()
           for s in (m, h)]
sep_m, sep_h, flag_m, flag_h = sep(m), sep(h), changed(m[0], m0), changed(h[0], h0)
print(f"{ckpt}: {dataset}, NEEDLE at {position}, its value at {position + 1}, {V} values x {n_episodes} episodes")
print(f"{'t':>4} {'teacher sep':>12} {'rnn sep':>9} {'teacher flag':>13} {'rnn flag':>9}")
for t in sorted({0, position - 1, position, position + 1, position + 2, (position + L) // 2, L - 2, L - 1} - {-1}):
    print(f"{t:>4} {sep_m[t]:>12.1e} {sep_h[t]:>9.1e} {flag_m[t]:>13.1e} {flag_h[t]:>9.1e}")
print(f"the write: one RNN step from the teacher's memory after NEEDLE: sep {sep(writes[:, :, None])[0]:.1e} "
      f"(the teacher's after the value: {sep_m[position + 1]:.1e}), error {write_err:.1e} of the mean square")
print(f"the readout at the query: {acc[0]:.1%} from the teacher's memories, {acc[1]:.1%} from the RNN's own states "
      f"(chance {1 / V:.1%})")
