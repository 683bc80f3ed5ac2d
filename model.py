"""
The RNN that SMT, BPTT and DMT all train, and the Transformer pieces it shares with the teacher (encoder.py).

The memory m is a (B, K, d) tensor: K memory tokens of width d. The RNN is
    m_{t+1} = step(m_t, x_{t+1})          logits(m_t) -> p(x_{t+1} | x_<=t)
with one `step` used by every trainer, by evaluation and by sampling. `run` applies `step` along a sequence;
a backbone may override it with a faster path, which must equal repeated `step` (tests/test_backbones.py).
`run_logits` reads a sequence's logits and its last memory, computing at every step only what the readout reads.
(Longer than the other files: the five backbones stay side by side in one file, with the memory format they share,
so that they read as variations of one thing.)
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class RNNConfig:
    vocab_size: int = 256
    n_mem: int = 16         # K: memory tokens
    d_model: int = 256      # d: width of a memory token; the memory holds K*d numbers
    n_head: int = 8
    backbone: str = 'transformer'
    n_rnn_layer: int = 8    # layers of the updater
    n_dec_layer: int = 4    # layers of the readout (the teacher decoder's shape, so it can be copied in)
    readout: str = 'decoder'  # 'decoder' (SMT copies the teacher's in); 'linear': one matrix on the output state
    max_pos: int = 1024     # RoPE table length: covers K + Tf - 1 (readout/decoder) and Tc + K (encoder)


# -----------------------------------------------------------------------------
# Transformer building blocks (pre-norm, RoPE, GELU MLP), shared with encoder.py

def rope_table(n_pos, head_dim, base=10000.0):
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv_freq)  # (n_pos, head_dim/2)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x, cos, sin):
    # x: (B, H, T, hd); rotate pairs (first half, second half) of each head by a position-dependent angle. cos, sin:
    # (>= T, hd), the table read from position 0, or (B, 1, T, hd), each row's own positions
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos[..., :x.size(-2), :].to(x.dtype), sin[..., :x.size(-2), :].to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    """Pre-norm Transformer block: RoPE self-attention and a 4x GELU MLP, no biases, no dropout."""
    regions = ('heads', 'finish')  # compile_regions

    def __init__(self, d, n_head):
        super().__init__()
        assert d % n_head == 0, f"d_model={d} must be a multiple of n_head={n_head}"
        self.n_head = n_head
        self.norm1, self.norm2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.fc_out = nn.Linear(4 * d, d, bias=False)

    def heads(self, x, cos, sin):
        """The attention's q, k, v (B, H, T, hd) of x (B, T, C), RoPE applied to q and k. Split from forward so that
        the teacher's many-label encoder (encoder.py) runs the same weights with its own attention pattern."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def finish(self, x, y):
        """The rest of the block after attention: y (B, H, T, hd) projected into the residual, then the MLP."""
        x = x + self.proj(y.transpose(1, 2).reshape(x.shape))
        return x + self.fc_out(F.gelu(self.fc(self.norm2(x))))

    def forward(self, x, cos, sin, attn_mask=None, is_causal=False):
        q, k, v = self.heads(x, cos, sin)
        return self.finish(x, F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal))


class Stack(nn.Module):
    """n Blocks with their own RoPE table and a final RMSNorm."""

    def __init__(self, n_layer, d, n_head, max_pos):
        super().__init__()
        self.blocks = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.norm = nn.RMSNorm(d)
        cos, sin = rope_table(max_pos, d // n_head)
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)

    def forward(self, x, attn_mask=None, is_causal=False):
        assert x.size(1) <= self.cos.size(0), f"sequence of {x.size(1)} exceeds max_pos={self.cos.size(0)}"
        for block in self.blocks:
            x = block(x, self.cos, self.sin, attn_mask, is_causal)
        return self.norm(x)


class Decoder(nn.Module):
    """Causal Transformer over [K memory tokens, embedded future inputs] with a vocabulary head.
    The teacher uses it as its predictive decoder; the RNN uses the same shape on the K memory tokens alone as its
    readout, so the teacher's weights copy straight in. It owns no embedding: callers pass embedded inputs."""

    def __init__(self, cfg):
        super().__init__()
        self.stack = Stack(cfg.n_dec_layer, cfg.d_model, cfg.n_head, cfg.max_pos)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, m, future_emb=None):
        """m: (B, K, d); future_emb: (B, F, d) or None. Returns logits (B, 1 + F, V): position 0 is the output at
        the last memory token (predicts the next token), position j the output after future input j."""
        x = m if future_emb is None else torch.cat([m, future_emb], dim=1)
        h = self.stack(x, is_causal=True)
        return self.head(h[:, m.size(1) - 1:])


def init_weights(module):
    """GPT-2 style init: N(0, 0.02) for every linear and embedding, zeros for biases."""
    for mod in module.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            nn.init.normal_(mod.weight, std=0.02)
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            nn.init.zeros_(mod.bias)


# -----------------------------------------------------------------------------
# Memory state spaces and updater backbones
#
# Every backbone reads and writes the same (B, K, d) memory, so SMT, BPTT, the readout and evaluation never look
# inside. The Transformer and the MLP treat it as K tokens, RMS-normed per token (the paper's state space). The
# recurrent cells (gru, lstm, mingru) treat it as one flat vector of Z = K*d numbers: their whole recurrent state,
# split evenly over n_rnn_layer stacked layers (lstm: the h halves first, then the c halves). Each backbone's
# updater returns states already in its space (the cells keep h in (-1, 1) by construction), so `step` and the
# fast `run` need no extra squashing, and `to_state` maps the encoder's raw outputs and the raw m0 into that space.

def to_state(z, backbone):
    """Map raw vectors (B, K, d) into the backbone's memory space. The encoder emits its memories through this too,
    so the teacher's labels live where the RNN's states live."""
    if backbone in ('transformer', 'mlp'):
        return F.rms_norm(z, (z.size(-1),))  # parameter-free RMSNorm per memory token, as in the paper
    if backbone in ('gru', 'mingru'):
        return torch.tanh(z)  # a gated cell's h is a convex mix of tanh values: it lives in (-1, 1)
    if backbone == 'lstm':
        # h = o * tanh(c) lives in (-1, 1); c is a running sum the LSTM never squashes, so it stays raw
        h, c = z.flatten(-2).chunk(2, dim=-1)
        return torch.cat([torch.tanh(h), c], dim=-1).view_as(z)
    raise ValueError(f"unknown backbone '{backbone}'; valid: {', '.join(BACKBONES)}")


class TransformerUpdater(nn.Module):
    """The paper's updater: a bidirectional Transformer over [K memory tokens, the embedded input token];
    the first K outputs, RMS-normed per token, are the new memory."""

    def __init__(self, cfg):
        super().__init__()
        self.stack = Stack(cfg.n_rnn_layer, cfg.d_model, cfg.n_head, cfg.n_mem + 1)

    def forward(self, m, x_emb):
        h = self.stack(torch.cat([m, x_emb[:, None, :]], dim=1))
        return to_state(h[:, :m.size(1)], 'transformer')


class MLPUpdater(nn.Module):
    """The paper's MLP backbone: a residual MLP over the flat memory (Z = K*d numbers) plus a projection of the
    input embedding; n_rnn_layer pre-norm blocks Z -> 4d -> Z (4d, not 4Z: at the paper's Z = 4096 a 4Z hidden layer
    would be 134M parameters a layer), output RMS-normed per memory token."""
    regions = ('forward',)  # compile_regions: one step

    def __init__(self, cfg):
        super().__init__()
        Z, hidden = cfg.n_mem * cfg.d_model, 4 * cfg.d_model
        self.inp = nn.Linear(cfg.d_model, Z, bias=False)
        self.blocks = nn.ModuleList(nn.Sequential(nn.RMSNorm(Z), nn.Linear(Z, hidden, bias=False), nn.GELU(),
                                                  nn.Linear(hidden, Z, bias=False)) for _ in range(cfg.n_rnn_layer))

    def forward(self, m, x_emb):
        h = m.flatten(1) + self.inp(x_emb)
        for block in self.blocks:
            h = h + block(h)
        return to_state(h.view_as(m), 'mlp')


def cell_width(cfg, n_states=1):
    """Width of each layer's state when n_rnn_layer layers (with n_states vectors each) share the Z = K*d memory."""
    Z, parts = cfg.n_mem * cfg.d_model, cfg.n_rnn_layer * n_states
    if Z % parts:
        raise ValueError(f"backbone '{cfg.backbone}' splits the memory of n_mem*d_model = {Z} numbers into "
                         f"{parts} equal states (n_rnn_layer={cfg.n_rnn_layer}" + (" x (h, c)" if n_states > 1 else "")
                         + "); choose sizes that divide")
    return Z // parts


def cell_memory_tokens(backbone, hidden, n_rnn_layer, d_model):
    """n_mem of a recurrent cell sized as users size one: n_rnn_layer layers of `hidden` numbers per state (h; for
    the LSTM h and c). The memory keeps its (B, K, d) storage, those numbers as K tokens of d_model, the input
    embedding's width: the cells read the memory as one flat vector, so how it is cut into tokens never matters."""
    if backbone not in CELLS:
        raise ValueError(f"sizes a recurrent cell ({', '.join(CELLS)}), not backbone '{backbone}'; size its memory "
                         f"with n_mem and d_model (hidden=0)")
    Z = BACKBONES[backbone].n_states * n_rnn_layer * hidden
    if Z % d_model:
        raise ValueError(f"{backbone}'s {Z} state numbers do not fill whole memory tokens of d_model={d_model}; use a "
                         f"d_model that divides {Z}")
    return Z // d_model


def cell_weights(cells):
    """Each single-layer nn.GRU / nn.LSTM's (w_ih, w_hh, b_ih, b_hh): the Parameter objects themselves, not copies."""
    return [(c.weight_ih_l0, c.weight_hh_l0, c.bias_ih_l0, c.bias_hh_l0) for c in cells]


class StackedCells(nn.Module):
    """The recurrent cells' shared shape: n_rnn_layer layers whose states, concatenated, are the memory (every layer's
    h, then for the LSTM every layer's c); layer l > 0 reads layer l-1's new h. A subclass defines one layer's
    cell_step(l, inp (B, in), states) and cell_run(l, inp (B, T, in), states) -> its new states, h first; cell_last
    (the same inputs) -> its h at every step, then its last states, where a cell gets them cheaper than every state
    at every step (the LSTM: cuDNN's c_n instead of c rebuilt at every step)."""
    regions = ('forward',)  # compile_regions: one step
    n_states = 1

    def layers(self, m, x_emb, cell_fn):
        """cell_fn of every layer from the memory m, layer l reading layer l-1's h: each layer's outputs, h first."""
        L = len(self.cells)
        chunks = m.flatten(1).chunk(L * self.n_states, dim=-1)
        inp, new = x_emb, []
        for l in range(L):
            new.append(cell_fn(l, inp, chunks[l::L]))
            inp = new[-1][0]
        return new

    def memory(self, new, first=0):
        """The memory layout of the layers' states new[l][first:]: every layer's h, then (LSTM) every layer's c."""
        return torch.cat([s[first + k] for k in range(self.n_states) for s in new], dim=-1)

    def forward(self, m, x_emb):
        return self.memory(self.layers(m, x_emb, self.cell_step)).view_as(m)

    def run(self, m, x_emb):
        return self.memory(self.layers(m, x_emb, self.cell_run)).view(*x_emb.shape[:2], *m.shape[1:])

    def run_h(self, m, x_emb):
        """Every layer's h after every input, concatenated (B, T, n_rnn_layer * H): the memory's h part at every step,
        what a linear readout reads; and the last memory (B, K, d). Nothing else is computed at every step."""
        new = self.layers(m, x_emb, self.cell_last)
        return torch.cat([s[0] for s in new], dim=-1), self.memory(new, first=1).view_as(m)

    def cell_last(self, l, inp, states):
        states = self.cell_run(l, inp, states)  # a cell whose every state at every step is its h: nothing to spare
        return (states[0],) + tuple(s[:, -1] for s in states)


class GRUUpdater(StackedCells):
    """Stacked GRU layers. The weights live in one single-layer nn.GRU per layer: `run` calls it over the whole
    sequence (cuDNN on a GPU); one step does the same arithmetic by hand with the same weights, so that it compiles
    and costs no kernel-launch overhead. Dynamo refuses to touch an nn.GRU object at all (a graph break), so the step
    reads the weights from `self.weights`, the same Parameter objects in a plain list (.to() and load_state_dict
    update parameters in place, so the list stays the module's). Keep `run` out of compiled regions."""

    def __init__(self, cfg):
        super().__init__()
        H = cell_width(cfg)
        self.cells = nn.ModuleList(nn.GRU(cfg.d_model if l == 0 else H, H, batch_first=True)
                                   for l in range(cfg.n_rnn_layer))
        self.weights = cell_weights(self.cells)

    def cell_step(self, l, inp, states):
        (w_ih, w_hh, b_ih, b_hh), (h,) = self.weights[l], states
        gi, gh = F.linear(inp, w_ih, b_ih), F.linear(h, w_hh, b_hh)
        (i_r, i_z, i_n), (h_r, h_z, h_n) = gi.chunk(3, -1), gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return ((1 - z) * torch.tanh(i_n + r * h_n) + z * h,)  # PyTorch's GRU equations exactly

    def cell_run(self, l, inp, states):
        return (self.cells[l](inp, states[0][None].contiguous())[0],)


class LSTMUpdater(StackedCells):
    """Stacked LSTM layers; the memory holds every layer's h, then every layer's c. As for the GRU, one nn.LSTM per
    layer holds the weights and one step is written by hand. nn.LSTM returns h at every step but c only at the last.
    `run` (every state at every step) needs c at every step: it recomputes the gates from cuDNN's h sequence in one
    batched matmul and gets c from its linear recurrence c_t = f_t c_{t-1} + i_t g_t with a parallel scan. Both are
    the same function of the weights, so values and gradients equal the step loop's. `run_h` (what a linear readout
    reads) needs none of that: cuDNN's h sequence and its last (h, c)."""
    n_states = 2

    def __init__(self, cfg):
        super().__init__()
        H = cell_width(cfg, n_states=2)
        self.cells = nn.ModuleList(nn.LSTM(cfg.d_model if l == 0 else H, H, batch_first=True)
                                   for l in range(cfg.n_rnn_layer))
        self.weights = cell_weights(self.cells)  # what the step reads (see GRUUpdater)
        with torch.no_grad():  # forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015): c keeps its past
            for _, _, b_ih, b_hh in self.weights:  # from the start, where a bias near 0 halves it at every step
                b_ih[H:2 * H], b_hh[H:2 * H] = 1.0, 0.0  # PyTorch's gate order i, f, g, o; the two biases add

    def gates(self, l, inp, h):
        w_ih, w_hh, b_ih, b_hh = self.weights[l]
        g = F.linear(inp, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
        i, f, g, o = g.chunk(4, -1)  # PyTorch's gate order
        return torch.sigmoid(i), F.logsigmoid(f), torch.tanh(g), torch.sigmoid(o)

    def cell_step(self, l, inp, states):
        (_, c), (i, log_f, g, o) = states, self.gates(l, inp, states[0])
        c = log_f.exp() * c + i * g
        return o * torch.tanh(c), c

    def cudnn(self, l, inp, states):
        h_seq, (h_n, c_n) = self.cells[l](inp, tuple(s[None].contiguous() for s in states))
        return h_seq, h_n[0], c_n[0]

    def cell_run(self, l, inp, states):
        h0, c0 = states
        h_seq = self.cudnn(l, inp, states)[0]
        h_prev = torch.cat([h0[:, None], h_seq[:, :-1]], dim=1)  # the h each step read
        i, log_f, g, _ = self.gates(l, inp, h_prev)
        return h_seq, linear_scan(log_f, i * g, c0)

    cell_last = cudnn


class MinGRUUpdater(StackedCells):
    """minGRU (Feng et al. 2024, "Were RNNs all we needed?"), stacked. The gate and the candidate depend on the input
    only,
        z_t = sigmoid(W_z x_t),  h~_t = tanh(W_h x_t),  h_t = (1 - z_t) h_{t-1} + z_t h~_t,
    so a whole sequence is one linear recurrence, solved by a parallel scan. One change from the paper: the candidate
    is tanh-squashed (the paper uses its positive g() for a log-space scan), so h stays in (-1, 1) like a GRU's and
    the scan works on signed values."""

    def __init__(self, cfg):
        super().__init__()
        H = cell_width(cfg)
        self.cells = nn.ModuleList(nn.Linear(cfg.d_model if l == 0 else H, 2 * H) for l in range(cfg.n_rnn_layer))

    def cell_step(self, l, inp, states):
        k, cand = self.cells[l](inp).chunk(2, -1)
        z = torch.sigmoid(k)
        return ((1 - z) * states[0] + z * torch.tanh(cand),)

    def cell_run(self, l, inp, states):
        k, cand = self.cells[l](inp).chunk(2, -1)
        # 1 - sigmoid(k) = sigmoid(-k), taken as a log for the scan
        return (linear_scan(F.logsigmoid(-k), torch.sigmoid(k) * torch.tanh(cand), states[0]),)


def linear_scan(log_a, b, h0, chunk=16):
    """h_t = a_t * h_{t-1} + b_t for t = 0..T-1 from h0, with a_t = exp(log_a_t) in (0, 1]; log_a, b: (B, T, D),
    h0: (B, D). Returns h (B, T, D). Parallel within chunks of `chunk` steps: h_t = A_t h + sum_{u<=t} (A_t/A_u) b_u
    with log A the cumulative sum of log a, the ratios formed as exp of differences (never A_t and 1/A_u apart, which
    under- and overflow), at O(chunk) times the work of the sequential loop; chunks are chained sequentially."""
    T = log_a.size(1)
    if torch.is_autocast_enabled(b.device.type):  # the scan's products must stay in fp32 under bf16 autocast
        with torch.autocast(b.device.type, enabled=False):
            return linear_scan(log_a.float(), b.float(), h0.float(), chunk).to(b.dtype)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=b.device).tril()
    out, h = [], h0
    for s in range(0, T, chunk):
        la = log_a[:, s:s + chunk].float().cumsum(1)  # (B, C, D)
        C = la.size(1)
        ratio = (la[:, :, None] - la[:, None, :]).masked_fill(~causal[:C, :C, None], float('-inf')).exp()
        hs = la.exp() * h[:, None] + torch.einsum('btud,bud->btd', ratio, b[:, s:s + chunk].float())
        out.append(hs.to(b.dtype))
        h = hs[:, -1]
    return torch.cat(out, dim=1)


BACKBONES = {'transformer': TransformerUpdater, 'mlp': MLPUpdater, 'gru': GRUUpdater, 'lstm': LSTMUpdater,
             'mingru': MinGRUUpdater}
CELLS = ('gru', 'lstm', 'mingru')  # the recurrent cells: the memory is their states, sizable by `hidden`
CUDNN_BACKBONES = ('gru', 'lstm')  # their fast path is cuDNN, which torch.compile must not see


class RNN(nn.Module):

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        if cfg.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{cfg.backbone}'; valid: {', '.join(BACKBONES)}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.updater = BACKBONES[cfg.backbone](cfg)
        if cfg.readout not in ('decoder', 'linear'):
            raise ValueError(f"unknown readout '{cfg.readout}'; valid: decoder, linear")
        # 'linear' is the classic RNN head (BPTT baselines only: SMT's readout is the teacher's decoder): logits from
        # the state the cell outputs (the LSTM's h half of the memory; all of it for the other backbones), read as it
        # is, as a plain LSTM language model reads h: the cells' h is bounded in (-1, 1) by construction and the
        # Transformer's and MLP's states are RMS-normed per token already, so a norm would only add work.
        self.readout = Decoder(cfg) if cfg.readout == 'decoder' else nn.Linear(self.output_size(), cfg.vocab_size)
        init_weights(self)
        # the learned initial memory, raw (before to_state). SMT copies the teacher's memory of the empty past in;
        # BPTT learns it. Either way the RNN starts on its own, with no encoder.
        self.m0 = nn.Parameter(torch.randn(cfg.n_mem, cfg.d_model))

    def initial_memory(self, batch_size):
        return to_state(self.m0, self.cfg.backbone).expand(batch_size, -1, -1)

    def step(self, m, x):
        """m: (B, K, d) memory after x_<=t; x: (B,) the token x_{t+1}. Returns m_{t+1}, in the backbone's space."""
        return self.updater(m, self.wte(x))

    def run(self, m, xs):
        """Apply step along xs (B, T) from m; returns the T memories after each input, (B, T, K, d).
        Uses the backbone's fast whole-sequence path where it has one (equal to the step loop, tests/test_backbones.py)."""
        e = self.wte(xs)
        if hasattr(self.updater, 'run'):
            return self.updater.run(m, e)
        ms = []
        for t in range(xs.size(1)):
            m = self.updater(m, e[:, t])
            ms.append(m)
        return torch.stack(ms, dim=1)

    def run_logits(self, m, xs):
        """Read along xs (B, T) from m: the logits after each input (B, T, V) and the last memory (B, K, d), i.e.
        logits(run(m, xs)) and run(m, xs)[:, -1], what BPTT and evaluation need. Where the readout reads only a
        recurrent cell's h (readout='linear') only h is computed at every step: no LSTM c rebuilt when nothing reads
        it, its last c is cuDNN's (equal to the step loop, tests/test_backbones.py)."""
        if self.cfg.readout == 'linear' and hasattr(self.updater, 'run_h'):
            hs, m_last = self.updater.run_h(m, self.wte(xs))
            return self.readout(hs), m_last
        ms = self.run(m, xs)
        return self.logits(ms), ms[:, -1]

    @torch.no_grad()
    def rollout(self, m, xs, guess, tol=1e-4, max_sweeps=0):
        """The states run(m, xs) visits, without a graph, computed in parallel over time: fixed-point (Jacobi)
        sweeps s_t <- step(s_{t-1}, x_t) for every t at once, started from guess (B, T, K, d) (the teacher's memories
        of the same pasts, which an SMT-trained RNN tracks). Sweep k makes state k-1 exact, so T sweeps give run's
        states whatever the guess, and only the not-yet-exact suffix is recomputed; a contracting RNN forgets the
        guess's error geometrically and converges in far fewer. Stops when no state moved by more than tol in a
        sweep, or after max_sweeps (0: no limit; a truncated solve). Returns the states and the number of sweeps."""
        B, T = xs.shape
        e, s = self.wte(xs), guess.clone()
        done, sweeps = 0, 0  # states before index `done` are exact
        while done < T and (max_sweeps == 0 or sweeps < max_sweeps):
            prev = torch.cat([(m if done == 0 else s[:, done - 1])[:, None], s[:, done:-1]], dim=1)
            new = self.updater(prev.flatten(0, 1), e[:, done:].flatten(0, 1)).view_as(prev)
            moved = (new - s[:, done:]).abs().max().item()
            s[:, done:] = new
            done, sweeps = done + 1, sweeps + 1
            if moved <= tol:
                break
        return s, sweeps

    def compile_parts(self):
        """torch.compile what can be compiled, in place (state_dict keys unchanged): the readout, the updater's step
        (step loops call it T times) and a scan's `run` and `run_h`; not cuDNN's, which Dynamo refuses."""
        self.readout.compile()
        self.updater.compile()
        if self.cfg.backbone not in CUDNN_BACKBONES:
            for name in ('run', 'run_h'):
                if hasattr(self.updater, name):
                    setattr(self.updater, name, torch.compile(getattr(self.updater, name)))

    def step_flops(self):
        """Training FLOPs (forward + backward) of one updater step: the Transformer's from its shape, the others'
        as 6 x their parameters (matrix-vector products dominate)."""
        c = self.cfg
        if c.backbone == 'transformer':
            return transformer_flops(c.n_rnn_layer, c.d_model, c.n_mem + 1)
        return 6 * sum(p.numel() for p in self.updater.parameters())

    def logits(self, m):
        """m: (..., K, d) -> next-token logits (..., V), from the readout's output at the last memory token."""
        if self.cfg.readout == 'linear':
            return self.readout(m.flatten(-2)[..., :self.output_size()])
        lead = m.shape[:-2]
        return self.readout(m.reshape(-1, *m.shape[-2:]))[:, 0].view(*lead, -1)

    def output_size(self):
        """Numbers of the memory a linear readout reads: the LSTM's h half (c is its cell, not its output), else all."""
        Z = self.cfg.n_mem * self.cfg.d_model
        return Z // 2 if self.cfg.backbone == 'lstm' else Z

    def readout_flops(self):
        """Training FLOPs (forward + backward) of one next-token readout."""
        if self.cfg.readout == 'linear':
            return 6 * self.output_size() * self.cfg.vocab_size
        return transformer_flops(self.cfg.n_dec_layer, self.cfg.d_model, self.cfg.n_mem) + 6 * self.cfg.d_model * self.cfg.vocab_size

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def compile_regions(module, **compile_kw):
    """Regional compilation, in place: torch.compile the methods each submodule names in its `regions` (a Block's two
    halves, everything but the attention call, whose masks differ from caller to caller; the teacher's register
    attention; a non-Transformer updater's step). Blocks of one shape share one compiled graph (Dynamo treats their
    weights as inputs), so compile time does not grow with depth, where compiling a whole SMT step compiles every
    layer of every stack again."""
    for m in module.modules():
        for name in getattr(m, 'regions', ()):
            setattr(m, name, torch.compile(getattr(m, name), **compile_kw))


def transformer_flops(n_layer, d, T):
    """Training FLOPs (forward + backward) of one pass of a Transformer stack over T tokens:
    6 * params * T for the weights (12 d^2 per layer) plus 12 * n_layer * d * T^2 for attention scores."""
    return 6 * 12 * n_layer * d * d * T + 12 * n_layer * d * T * T

