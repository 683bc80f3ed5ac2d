"""
Synthetic tasks as an episodic dataset, generated on the fly (seeded, no files), with the interface of data.stream.TokenStream
so that every trainer and eval.py take them through config:

    dataset = 'synthetic:<task>[:<length>][:<option>=<int>...]'
    python train_smt.py --dataset=synthetic:copy:128
    python train_smt.py --dataset=synthetic:assoc:256:pairs=16 --context_len=256

The length L (default 64) is part of the dataset's name, so the difficulty axis is one config key and every trainer
and evaluation on the dataset sees the same episodes: sequences() always returns whole episodes of L tokens,
whatever length the caller asks for. Tasks and options: tasks.py.

An episode is one sample of the task from the RNN's initial memory: the RNN (or the teacher) starts from the empty
past at the episode's first token, and SMT windows never reach across an episode's start.
"""
import numpy as np
import torch

from ..stream import whole_windows, windows
from .tasks import TASKS, solve  # noqa: F401 (solve: for tests and users)

DEFAULT_LENGTH = 64
CHUNK = 256  # the validation episodes are made CHUNK at a time, each chunk from its own seed
ANCHOR_EVERY = 4  # smt_windows: one window in 4 has its present on a target
TRAIN_KEY, VAL_KEY, BASELINE_KEY = 0x7A1, 0x7A2, 0x7A3  # first word of every seed: the three streams never overlap


class Episodes:
    """n-episode batches of one task at one length; the interface of data.stream.TokenStream."""

    def __init__(self, name, task, length):
        self.name, self.task, self.length, self.episode_len = name, task, length, length
        self.vocab_size = task.vocab_size
        self.meta = {'vocab_size': task.vocab_size, 'tokenizer': 'synthetic', 'task': task.name, 'length': length,
                     'episodic': True, 'token_names': task.token_names()}
        self._val = {}  # chunk index -> (z, tgt)
        self._said = set()  # one-time notes already printed

    def describe(self):
        opts = ', '.join(f"{k}={getattr(self.task, k)}" for k in self.task.options)
        return (f"synthetic {self.task.name} episodes of {self.length} tokens{' (' + opts + ')' if opts else ''}, "
                f"vocab {self.vocab_size}, generated on the fly")

    def _note(self, key, msg):
        if key not in self._said:
            self._said.add(key)
            print(f"note: {msg}")

    def episodes(self, split, n, generator):
        """Tokens z (n, L + 1) and target marks (n, L + 1), numpy. 'train': fresh episodes drawn from the torch
        generator (so a resumed or multi-process run sees the same batches, as with token streams); 'val': the
        first n of one fixed sequence of episodes, the same for every caller and every generator."""
        if split == 'train':
            seed = int(torch.randint(2 ** 62, (1,), generator=generator))
            return self.task.generate(np.random.default_rng([TRAIN_KEY, seed]), n, self.length)
        for c in range(-(-n // CHUNK)):
            if c not in self._val:
                self._val[c] = self.task.generate(np.random.default_rng([VAL_KEY, c]), CHUNK, self.length)
        z, tgt = (np.concatenate(parts)[:n] for parts in zip(*(self._val[c] for c in range(-(-n // CHUNK)))))
        return z, tgt

    def sequences(self, split, n, length, generator):
        """n whole episodes: inputs x (n, L) and targets y (n, L), -1 where there is none. `length` is not used:
        the episode length is part of the dataset's name."""
        if length != self.length:
            self._note(('length', length), f"{self.name} has episodes of {self.length} tokens; a requested length "
                                           f"of {length} is not used (the length is part of the dataset's name)")
        z, tgt = self.episodes(split, n, generator)
        return torch.from_numpy(z[:, :-1].copy()), torch.from_numpy(targets(z, tgt))

    def aligned(self, split, n, generator):
        """n whole episodes (x, y), as sequences() returns them."""
        return self.sequences(split, n, self.length, generator)

    def smt_windows(self, split, n, context_len, future_len, short_frac, generator, n_labels=1):
        """One SMT window per episode around a present t in [-1, L-1] (t = -1: the empty past before the first
        token, whose transition on x_0 starts the RNN from its initial memory). One row in ANCHOR_EVERY (row 0
        first) puts the present on a target, the others anywhere: the first guarantee every batch has targets, and
        give the decoder's first slot (the RNN's readout) targets to learn from when targets are sparse (one per
        retrieval episode); the others train the transitions evenly over the episode. short_frac is not used:
        episodes already start short. With n_labels > 1 (a causal teacher labelling the window's last n_labels
        positions) every present is the episode's last input, t = L-1: the window is the whole episode, and with
        n_labels = L every transition of it, from the empty past on, is labelled by one teacher pass."""
        if context_len < self.length:
            self._note('ctx', f"context_len={context_len} < episode length {self.length}: the teacher sees only "
                              f"the last {context_len} tokens, so targets that depend on older ones are out of its reach")
        if n_labels > 1 and n_labels < self.length:
            self._note('labels', f"labels_per_window={n_labels} < episode length {self.length}: the first "
                                 f"{self.length - n_labels} transitions of every episode are never labelled")
        z, tgt = self.episodes(split, n, generator)
        y = targets(z, tgt)
        if whole_windows(self, n_labels):
            return windows(z, y, np.full(n, self.length - 1), context_len, future_len)
        t = torch.randint(-1, self.length, (n,), generator=generator).numpy()
        # anchored rows: the k-th target of the episode, k uniform
        has = y >= 0
        k = (torch.rand(n, generator=generator).numpy() * has.sum(1)).astype(np.int64)
        on_target = np.argmax(np.cumsum(has, 1) > k[:, None], axis=1)
        anchored = (np.arange(n) % ANCHOR_EVERY == 0) & has.any(1)
        t = np.where(anchored, on_target, t)
        return windows(z, y, t, context_len, future_len)

    def baselines(self, x, y):
        """Memoryless baselines in bits per target on (x, y): unigram p(y) and bigram p(y | x_t), add-one smoothed,
        counted on the targets of a fixed sample of training-distribution episodes (at least 20,000 targets)."""
        V = self.vocab_size
        uni, bi, n_targets, c = np.ones(V), np.ones((V, V)), 0, 0
        while n_targets < 20_000 and c < 64:
            z, tgt = self.task.generate(np.random.default_rng([BASELINE_KEY, c]), 1024, self.length)
            yy = targets(z, tgt)
            a, b = z[:, :-1][yy >= 0], yy[yy >= 0]
            np.add.at(uni, b, 1)
            np.add.at(bi, (a, b), 1)
            n_targets, c = n_targets + len(b), c + 1
        keep = (y >= 0).numpy()
        a, b = x.numpy()[keep], y.numpy()[keep]
        unigram = -np.log2(uni[b] / uni.sum()).mean()
        bigram = -np.log2(bi[a, b] / bi[a].sum(1)).mean()
        return float(unigram), float(bigram)


def targets(z, tgt):
    """y_t = z_{t+1} where z_{t+1} is a target, else -1: (n, L) int64."""
    return np.where(tgt[:, 1:], z[:, 1:], -1).astype(np.int64)


def load_synthetic(dataset):
    """'synthetic:<task>[:<length>][:<option>=<int>...]' -> Episodes. Mistakes raise ValueError (one line)."""
    parts = dataset.split(':')[1:]
    usage = (f"use synthetic:<task>[:<length>][:<option>=<int>], tasks: {', '.join(TASKS)} "
             f"(e.g. synthetic:copy:128, synthetic:assoc:256:pairs=16)")
    if not parts or parts[0] not in TASKS:
        raise ValueError(f"unknown synthetic task {parts[0] if parts else ''!r} in dataset '{dataset}'; {usage}")
    cls, length, opts = TASKS[parts[0]], DEFAULT_LENGTH, {}
    for p in parts[1:]:
        key, eq, value = p.partition('=')
        if not (value if eq else key).isdigit():
            raise ValueError(f"'{p}' in dataset '{dataset}' is neither a length nor <option>=<int>; {usage}")
        if not eq:
            length = int(key)
        elif key not in cls.options:
            raise ValueError(f"unknown option '{key}' for synthetic:{cls.name} "
                             f"(options: {', '.join(cls.options) or 'none'})")
        else:
            opts[key] = int(value)
    try:
        task = cls(**opts)
        task.check_length(length)
    except ValueError as e:
        raise ValueError(f"dataset '{dataset}': {e}") from None
    return Episodes(dataset, task, length)
