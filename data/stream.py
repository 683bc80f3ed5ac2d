"""
Token streams: a dataset as two uint16 token arrays (train, val), memmapped from data/<name>/{train,val}.bin, and
its meta dict (meta.json, data/meta.py). Windows are read at random offsets, so a stream has an unbounded past.
"""
import math

import numpy as np
import torch

LOG2E = 1.0 / math.log(2)


class TokenStream:
    """A dataset as two token streams plus its meta dict. Every dataset type (this one, data.synthetic.Episodes)
    offers the same samplers, so the trainers and eval.py never look inside:
      sequences(split, n, length, g) -> (x, y): windows of inputs and next-token targets (-1: ignored)
      smt_windows(split, n, Tc, Tf, short_frac, g) -> (x, y, n_ctx): SMT windows of Tc + Tf with the present at
        index Tc-1 and n_ctx real past tokens (a stream has an unbounded past: Tc, or shorter for short_frac)
      baselines(x, y) -> (unigram, bigram) bits/token on (x, y): what an RNN scored on the same targets must beat.
    Episodic data (synthetic episodes; a stream of images, meta image_shape) also has episode_len and
      aligned(split, n, g) -> (x, y): n whole episodes, read from their first token (-1 past the episode's end),
    and its SMT windows with many labels are whole episodes, so that a memory is of the episode read so far."""

    def __init__(self, train, val, meta):
        self.train, self.val, self.meta = train, val, meta
        self.vocab_size = int(meta['vocab_size'])
        self.episode_len = int(np.prod(meta['image_shape'])) if meta.get('image_shape') else 0  # 0: a plain stream

    def describe(self):
        return f"{len(self.train):,} train tokens, vocab {self.vocab_size}"

    def sequences(self, split, n, length, generator):
        return sample_windows(self.train if split == 'train' else self.val, n, length, generator)

    def windows_at(self, split, starts, length):
        """The windows (x, y) of `length` tokens that begin at the given offsets (stateful BPTT reads each batch
        row's lane of the stream window after window)."""
        data = self.train if split == 'train' else self.val
        chunks = torch.from_numpy(np.stack([data[i:i + length + 1].astype(np.int64) for i in starts.tolist()]))
        return chunks[:, :-1], chunks[:, 1:]

    def aligned(self, split, n, generator):
        """n whole images from their first pixel, (x, y) of (n, S): the last pixel's target is -1, not the next
        image's first pixel (nothing in an image predicts it)."""
        data = self.train if split == 'train' else self.val
        S = self.episode_len
        starts = torch.randint((len(data) - 1) // S, (n,), generator=generator) * S
        x, y = self.windows_at(split, starts, S)
        y[:, -1] = -1
        return x, y

    def smt_windows(self, split, n, context_len, future_len, short_frac, generator, n_labels=1):
        """On a plain stream any window is a real past: Tc tokens (fewer for short_frac), whatever n_labels. On a
        stream of images with n_labels > 1 (the causal teacher's labels) each window is an image whole, as
        Episodes.smt_windows makes it: the present on its last pixel, the real past from its first."""
        if whole_windows(self, n_labels):
            x, y = self.aligned(split, n, generator)
            z = torch.cat([x, x[:, -1:]], 1).numpy()  # the episode as z_0 .. z_S (z_S: never a target, never read)
            return windows(z, y.numpy(), np.full(n, self.episode_len - 1), context_len, future_len)
        x, y = self.sequences(split, n, context_len + future_len, generator)
        short = torch.rand(n, generator=generator) < short_frac
        n_ctx = torch.where(short, torch.randint(0, context_len, (n,), generator=generator), context_len)
        return x, y, n_ctx

    def baselines(self, x, y):
        return ngram_baselines(self.train, x, y, self.vocab_size)


def whole_windows(data, n_labels):
    """Whether data.smt_windows(..., n_labels) makes each window an episode or image whole (episodic data with a
    causal teacher's many labels), rather than Tc tokens of past around one present."""
    return data.episode_len > 0 and n_labels > 1


def windows(z, y, t, context_len, future_len, pad=0):
    """SMT windows of Tc + Tf tokens around presents t (n,) in [-1, L-1] of episodes z (n, L + 1), y (n, L):
    x_win[Tc-1] = x_t, the past x_{t-Tc+1 .. t} (left-padded where the episode starts later), then x_{t+1 ..}
    (right-padded past z_L, where every target is -1). x_{t+1} is always real: z_L exists even for t = L-1.
    Returns torch (x, y, n_ctx) with n_ctx = min(t + 1, Tc) real past tokens: the past never crosses the start."""
    L = y.shape[1]
    idx = t[:, None] - context_len + 1 + np.arange(context_len + future_len)[None, :]
    rows = np.arange(len(z))[:, None]
    xw = np.where((idx >= 0) & (idx <= L), z[rows, np.clip(idx, 0, L)], pad)
    yw = np.where((idx >= 0) & (idx < L), y[rows, np.clip(idx, 0, L - 1)], -1)
    n_ctx = np.minimum(t + 1, context_len)
    return torch.from_numpy(xw), torch.from_numpy(yw), torch.from_numpy(n_ctx)


def sample_windows(data, n, length, generator):
    """n random windows from a token stream: inputs x (n, length) and next-token targets y (n, length), int64.
    Every dataset reaches the models as such (x, y) pairs; a target of -1 is ignored by every loss."""
    if len(data) < length + 2:
        raise ValueError(f"the data has {len(data)} tokens, fewer than one window of {length}; use a shorter "
                         f"context/sequence")
    ix = torch.randint(len(data) - length - 1, (n,), generator=generator).tolist()
    chunks = torch.from_numpy(np.stack([data[i:i + length + 1].astype(np.int64) for i in ix]))
    return chunks[:, :-1], chunks[:, 1:]


def ngram_baselines(train, x, y, vocab_size, max_train_tokens=20_000_000):
    """Unigram p(y_t) and bigram p(y_t | x_t) bits/token on (x, y), add-one smoothed, counted on the train stream:
    the baselines an RNN scored on the same positions must beat."""
    tr = np.asarray(train[:max_train_tokens], dtype=np.int64)
    uni = np.bincount(tr, minlength=vocab_size) + 1.0
    log_uni = np.log(uni / uni.sum())
    pairs, counts = np.unique(tr[:-1] * vocab_size + tr[1:], return_counts=True)
    keep = (y >= 0).numpy()
    a, b = x.numpy()[keep].astype(np.int64), y.numpy()[keep].astype(np.int64)
    q = a * vocab_size + b
    pos = np.clip(np.searchsorted(pairs, q), 0, len(pairs) - 1)
    c_ab = np.where(pairs[pos] == q, counts[pos], 0)
    c_a = np.bincount(tr[:-1], minlength=vocab_size)[a]
    bigram = -np.log((c_ab + 1.0) / (c_a + vocab_size)).mean() * LOG2E
    return float(-log_uni[b].mean() * LOG2E), float(bigram)
