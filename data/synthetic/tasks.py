"""
The synthetic credit-assignment probes (docs/method.md, section 7), as numpy generators and hand-written solvers.

Every task writes an episode as L + 1 tokens z_0 .. z_L and marks which of them are targets. The model reads
x = z_0 .. z_{L-1}; its target after reading x_t is y_t = z_{t+1} where z_{t+1} is marked, else -1 (ignored).
So every answer is the next token, and teacher forcing feeds the answers back in, exactly like language modelling
with a loss mask. z_L (the last answer) is never an input, but it is the input x_{t+1} of the episode's last
transition, which SMT trains too. Tokens: the task's symbols first (0 .. n-1), then its few special tokens.
An episode shorter than L + 1 by nature is left-filled with BLANK, so every episode of a dataset has length L.

Each task's solver reads an episode's inputs one token at a time, as an RNN with unbounded memory would, and
predicts y_t from x_0 .. x_t only: 100% on the targets proves the task is well posed (tests/test_synthetic.py).
"""
import math

import numpy as np


class Task:
    """A task's parameters, vocabulary and generator. Subclasses set `specials` and implement core() and solve()."""
    name = ''
    specials = ()
    options = {}  # name -> (default, minimum): the knobs beside the length, e.g. synthetic:assoc:256:pairs=16
    min_length = 2

    def __init__(self, **opts):
        for k, (default, lo) in self.options.items():
            v = opts.get(k, default)
            if v < lo:
                raise ValueError(f"option {k}={v} of {self.name} must be >= {lo}")
            setattr(self, k, v)
        self.n_symbols = self.symbols()
        # special tokens follow the symbols: BLANK = n_symbols, then the task's own markers
        for i, s in enumerate(('BLANK',) + self.specials):
            setattr(self, s, self.n_symbols + i)
        self.vocab_size = self.n_symbols + 1 + len(self.specials)

    def symbols(self):
        return self.vocab

    def token_names(self):
        return [str(i) for i in range(self.n_symbols)] + ['_'] + [s.lower() for s in self.specials]

    def generate(self, rng, n, length):
        """n episodes of `length` inputs: tokens z (n, length + 1) int64 and target marks (n, length + 1) bool."""
        z, tgt = self.core(rng, n, length)
        fill = length + 1 - z.shape[1]
        assert fill >= 0, (self.name, length, z.shape)
        if fill:
            z = np.concatenate([np.full((n, fill), self.BLANK, dtype=np.int64), z], axis=1)
            tgt = np.concatenate([np.zeros((n, fill), dtype=bool), tgt], axis=1)
        return z, tgt

    def check_length(self, length):
        if length < self.min_length:
            raise ValueError(f"{self.name} needs a length of at least {self.min_length}, got {length}")


class Retrieval(Task):
    """A haystack of random symbols with one marked needle (NEEDLE v) at a uniform position, then QUERY at the
    end: the target is v. Difficulty: the distance needle -> query grows with the length."""
    name = 'retrieval'
    specials = ('NEEDLE', 'QUERY')
    options = {'vocab': (16, 2)}
    min_length = 3

    def core(self, rng, n, L):
        z = rng.integers(0, self.vocab, size=(n, L + 1))
        v = rng.integers(0, self.vocab, size=n)
        p = rng.integers(0, L - 2, size=n)  # NEEDLE at p, v at p + 1, both before QUERY at L - 1
        rows = np.arange(n)
        z[rows, p], z[rows, p + 1] = self.NEEDLE, v
        z[:, L - 1], z[:, L] = self.QUERY, v
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, L] = True
        return z, tgt

    def solve(self, xs):
        needle, after_needle = None, False
        for x in xs:
            if after_needle:
                needle = x
            after_needle = x == self.NEEDLE
            yield needle if x == self.QUERY else None


class Copy(Task):
    """A string of L // 2 random symbols, SEP, then the string reversed (as in the reference generator): the
    targets are the reversed symbols. Difficulty: the last target is ~L tokens after its source."""
    name = 'copy'
    specials = ('SEP',)
    options = {'vocab': (16, 2)}
    min_length = 2

    def core(self, rng, n, L):
        s = rng.integers(0, self.vocab, size=(n, L // 2))
        z = np.concatenate([s, np.full((n, 1), self.SEP), s[:, ::-1]], axis=1)
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, L // 2 + 1:] = True
        return z, tgt

    def solve(self, xs):
        seen, stack = [], None
        for x in xs:
            if stack is None:
                if x == self.SEP:
                    stack = list(seen)
                elif x < self.n_symbols:
                    seen.append(x)
            yield stack.pop() if stack else None


class Stack(Task):
    """Stack operations: a sequence of (PUSH v) and (POP v) pairs; the v after POP is the target, the value on top
    of the stack. Push or pop with equal odds (push on an empty stack; the last operation is a pop), so the stack's
    depth is a random walk and the oldest values wait ~L tokens. Difficulty: length."""
    name = 'stack'
    specials = ('PUSH', 'POP')
    options = {'vocab': (16, 2)}
    min_length = 3

    def core(self, rng, n, L):
        n_ops = (L + 1) // 2
        values = rng.integers(0, self.vocab, size=(n, n_ops))
        coin = rng.random(size=(n, n_ops)) < 0.5
        stack = np.zeros((n, n_ops), dtype=np.int64)
        depth = np.zeros(n, dtype=np.int64)
        ops = np.zeros((n, n_ops), dtype=np.int64)
        rows = np.arange(n)
        for i in range(n_ops):  # time runs in Python, the batch in numpy
            push = (depth == 0) | (coin[:, i] if i < n_ops - 1 else False)
            ops[:, i] = np.where(push, self.PUSH, self.POP)
            stack[rows[push], depth[push]] = values[push, i]
            depth = depth + np.where(push, 1, -1)
            values[~push, i] = stack[rows[~push], depth[~push]]  # a pop reads (and frees) the top
        z = np.stack([ops, values], axis=2).reshape(n, 2 * n_ops)
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, 1::2] = ops == self.POP
        return z, tgt

    def solve(self, xs):
        stack, pending = [], None
        for x in xs:
            if pending == self.PUSH:
                stack.append(x)
            pending = x if x in (self.PUSH, self.POP) else None
            yield stack.pop() if x == self.POP else None


class Assoc(Task):
    """Keys-values associative recall: `pairs` distinct keys each followed by its value, a gap of random values,
    SEP, then every key again in a random order, each followed by its value (the target). Keys and values come from
    disjoint alphabets (`keys` keys, `vocab` values). Difficulty: the gap grows with the length; `pairs` is the
    second axis (how much the memory must hold)."""
    name = 'assoc'
    specials = ('SEP',)
    options = {'vocab': (16, 2), 'keys': (32, 1), 'pairs': (8, 1)}

    def __init__(self, **opts):
        super().__init__(**opts)
        if self.pairs > self.keys:
            raise ValueError(f"assoc needs pairs <= keys (distinct keys), got pairs={self.pairs} keys={self.keys}")
        self.min_length = 4 * self.pairs

    def symbols(self):
        return self.vocab + self.keys  # values 0 .. vocab-1, then keys

    def token_names(self):
        return ([f"v{i}" for i in range(self.vocab)] + [f"k{i}" for i in range(self.keys)] + ['_']
                + [s.lower() for s in self.specials])

    def core(self, rng, n, L):
        P = self.pairs
        keys = np.argsort(rng.random((n, self.keys)), axis=1)[:, :P] + self.vocab  # distinct keys per episode
        vals = rng.integers(0, self.vocab, size=(n, P))
        order = np.argsort(rng.random((n, P)), axis=1)
        qk, qv = np.take_along_axis(keys, order, 1), np.take_along_axis(vals, order, 1)
        gap = rng.integers(0, self.vocab, size=(n, L - 4 * P))
        z = np.concatenate([np.stack([keys, vals], 2).reshape(n, 2 * P), gap, np.full((n, 1), self.SEP),
                            np.stack([qk, qv], 2).reshape(n, 2 * P)], axis=1)
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, -2 * P + 1::2] = True
        return z, tgt

    def solve(self, xs):
        table, key, queries = {}, None, False
        for x in xs:
            if key is not None and x < self.vocab and not queries:
                table[key] = x  # a value right after a key, before SEP: a pair (the gap holds values only)
            queries = queries or x == self.SEP
            key = x if self.vocab <= x < self.n_symbols else None
            yield table.get(x) if queries and key is not None else None


class Modular(Task):
    """Modular arithmetic in context: pairs (u, (a*u + b) mod `mod`) with a in [1, mod), b hidden per episode.
    The first two u differ by a unit mod `mod`, so two pairs determine a and b; the targets are the answers of
    every later pair. Difficulty: length (a and b must be held, or re-inferred, for ~L tokens)."""
    name = 'modular'
    options = {'mod': (17, 2)}
    min_length = 5

    def symbols(self):
        return self.mod

    def core(self, rng, n, L):
        V, n_pairs = self.mod, (L + 1) // 2
        a, b = rng.integers(1, V, size=(n, 1)), rng.integers(0, V, size=(n, 1))
        u = rng.integers(0, V, size=(n, n_pairs))
        units = np.array([d for d in range(1, V) if math.gcd(d, V) == 1])
        u[:, 1] = (u[:, 0] + units[rng.integers(0, len(units), size=n)]) % V
        z = np.stack([u, (a * u + b) % V], axis=2).reshape(n, 2 * n_pairs)
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, 5::2] = True  # the answers from the third pair on
        return z, tgt

    def solve(self, xs):
        seen, V = [], self.mod
        for x in xs:
            if x == self.BLANK:
                yield None
                continue
            seen.append(x)
            k = len(seen) - 1
            if k % 2 == 0 and k >= 4:  # an input u of the third or a later pair: predict its answer
                (u0, v0, u1, v1) = seen[:4]
                a = (v1 - v0) * pow(u1 - u0, -1, V) % V
                yield (a * x + v0 - a * u0) % V
            else:
                yield None


class Parity(Task):
    """L - 1 random bits, '=', then their parity (the only target). Difficulty: length; every bit matters."""
    name = 'parity'
    specials = ('EQ',)
    options = {}

    def symbols(self):
        return 2

    def core(self, rng, n, L):
        bits = rng.integers(0, 2, size=(n, L - 1))
        z = np.concatenate([bits, np.full((n, 1), self.EQ), bits.sum(1, keepdims=True) % 2], axis=1)
        tgt = np.zeros_like(z, dtype=bool)
        tgt[:, -1] = True
        return z, tgt

    def solve(self, xs):
        p = 0
        for x in xs:
            if x < 2:
                p ^= int(x)
            yield p if x == self.EQ else None


TASKS = {t.name: t for t in (Retrieval, Copy, Stack, Assoc, Modular, Parity)}


def solve(task, x):
    """A task's solver on one episode's inputs x (L,): its predictions (L,), -1 where it predicts nothing."""
    return np.array([-1 if p is None else p for p in task.solve(x.tolist())], dtype=np.int64)
