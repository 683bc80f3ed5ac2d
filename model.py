"""
The RNN that SMT, BPTT and DMT all train, and the Transformer pieces it shares with the teacher (encoder.py).

The memory m is a (B, K, d) tensor: K memory tokens of width d. The RNN is
    m_{t+1} = step(m_t, x_{t+1})          logits(m_t) -> p(x_{t+1} | x_<=t)
with one `step` used by every trainer, by evaluation and by sampling. `run` applies `step` along a sequence;
a backbone may override it with a faster path, which must equal repeated `step` (tests/test_model.py).
"""
import math
from dataclasses import dataclass, asdict

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
    max_pos: int = 1024     # RoPE table length: covers K + Tf - 1 (readout/decoder) and Tc + K (encoder)


# -----------------------------------------------------------------------------
# Transformer building blocks (pre-norm, RoPE, GELU MLP), shared with encoder.py

def rope_table(n_pos, head_dim, base=10000.0):
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv_freq)  # (n_pos, head_dim/2)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x, cos, sin):
    # x: (B, H, T, hd); rotate pairs (first half, second half) of each head by a position-dependent angle
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos[:x.size(-2)].to(x.dtype), sin[:x.size(-2)].to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    """Pre-norm Transformer block: RoPE self-attention and a 4x GELU MLP, no biases, no dropout."""

    def __init__(self, d, n_head):
        super().__init__()
        assert d % n_head == 0, f"d_model={d} must be a multiple of n_head={n_head}"
        self.n_head = n_head
        self.norm1, self.norm2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.fc_out = nn.Linear(4 * d, d, bias=False)

    def forward(self, x, cos, sin, attn_mask=None, is_causal=False):
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(self.norm2(x))))


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

def to_state(z, backbone):
    """Map raw vectors (B, K, d) into the backbone's memory space. The encoder emits its memories through this too,
    so the teacher's labels live where the RNN's states live."""
    if backbone == 'transformer':
        return F.rms_norm(z, (z.size(-1),))  # parameter-free RMSNorm per memory token, as in the paper
    raise ValueError(f"unknown backbone '{backbone}'; valid: {', '.join(BACKBONES)}")


class TransformerUpdater(nn.Module):
    """The paper's updater: a bidirectional Transformer over [K memory tokens, the embedded input token];
    the first K outputs are the new (raw) memory."""

    def __init__(self, cfg):
        super().__init__()
        self.stack = Stack(cfg.n_rnn_layer, cfg.d_model, cfg.n_head, cfg.n_mem + 1)

    def forward(self, m, x_emb):
        h = self.stack(torch.cat([m, x_emb[:, None, :]], dim=1))
        return h[:, :m.size(1)]


BACKBONES = {'transformer': TransformerUpdater}


class RNN(nn.Module):

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        if cfg.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{cfg.backbone}'; valid: {', '.join(BACKBONES)}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.updater = BACKBONES[cfg.backbone](cfg)
        self.readout = Decoder(cfg)
        init_weights(self)
        # the learned initial memory, raw (before to_state). SMT copies the teacher's memory of the empty past in;
        # BPTT learns it. Either way the RNN starts on its own, with no encoder.
        self.m0 = nn.Parameter(torch.randn(cfg.n_mem, cfg.d_model))

    def initial_memory(self, batch_size):
        return to_state(self.m0, self.cfg.backbone).expand(batch_size, -1, -1)

    def step(self, m, x):
        """m: (B, K, d) memory after x_<=t; x: (B,) the token x_{t+1}. Returns m_{t+1}."""
        return to_state(self.updater(m, self.wte(x)), self.cfg.backbone)

    def run(self, m, xs, detach=False):
        """Apply step along xs (B, T) from m; returns the T memories after each input, (B, T, K, d).
        detach=True cuts the gradient between steps (DMT's rollout on its own states without BPTT)."""
        ms = []
        for t in range(xs.size(1)):
            m = self.step(m.detach() if detach else m, xs[:, t])
            ms.append(m)
        return torch.stack(ms, dim=1)

    def logits(self, m):
        """m: (..., K, d) -> next-token logits (..., V), from the readout's output at the last memory token."""
        lead = m.shape[:-2]
        return self.readout(m.reshape(-1, *m.shape[-2:]))[:, 0].view(*lead, -1)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def transformer_flops(n_layer, d, T):
    """Training FLOPs (forward + backward) of one pass of a Transformer stack over T tokens:
    6 * params * T for the weights (12 d^2 per layer) plus 12 * n_layer * d * T^2 for attention scores."""
    return 6 * 12 * n_layer * d * d * T + 12 * n_layer * d * T * T


def config_dict(cfg):
    return asdict(cfg)
