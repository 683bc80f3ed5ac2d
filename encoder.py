"""
The SMT teacher: an encoder that turns the last Tc tokens into a memory m_t, a causal decoder that must predict
the next Tf tokens from m_t alone (the predictive-state objective), and the uniformity loss that keeps the memory
space from collapsing. See smt-method.md sections 3-4.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import Decoder, Stack, init_weights, to_state


@dataclass
class TeacherConfig:
    vocab_size: int = 256
    n_mem: int = 16         # K registers -> K memory tokens
    d_model: int = 256
    n_head: int = 8
    backbone: str = 'transformer'  # the RNN's backbone: the encoder emits memories in its state space
    n_enc_layer: int = 8
    n_dec_layer: int = 4
    context_len: int = 256  # Tc: tokens of past the encoder sees
    future_len: int = 64    # Tf: tokens the decoder predicts from the memory
    max_pos: int = 1024


class Teacher(nn.Module):

    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        assert cfg.context_len + cfg.n_mem <= cfg.max_pos and cfg.n_mem + cfg.future_len - 1 <= cfg.max_pos
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)  # shared by encoder inputs and decoder inputs
        self.encoder = Stack(cfg.n_enc_layer, cfg.d_model, cfg.n_head, cfg.max_pos)
        self.decoder = Decoder(cfg)
        init_weights(self)
        self.registers = nn.Parameter(0.02 * torch.randn(cfg.n_mem, cfg.d_model))

    def encode_raw(self, ctx, n_ctx):
        """ctx: (B, Tc) tokens, left-padded: the real past is the last n_ctx[b] of them (n_ctx may be 0).
        Returns the raw register outputs (B, K, d). The encoder is bidirectional over the real tokens and the
        registers; padding is masked out of the keys. Positions: context 0..Tc-1, registers Tc..Tc+K-1, so with
        RoPE every register sees the most recent token at the same relative offset whatever the context length."""
        B, Tc = ctx.shape
        K = self.cfg.n_mem
        x = torch.cat([self.wte(ctx), self.registers.expand(B, -1, -1).to(self.wte.weight.dtype)], dim=1)
        pos = torch.arange(Tc + K, device=ctx.device)
        key_ok = pos[None, :] >= (Tc - n_ctx)[:, None]  # (B, Tc+K): registers always pass (pos >= Tc)
        h = self.encoder(x, attn_mask=key_ok[:, None, None, :])
        return h[:, Tc:]

    def encode(self, ctx, n_ctx):
        return to_state(self.encode_raw(ctx, n_ctx), self.cfg.backbone)

    def decode(self, m, future_x):
        """m: (B, K, d); future_x: (B, Tf-1) the inputs after x_t. Returns logits (B, Tf, V) for y_t .. y_{t+Tf-1}."""
        return self.decoder(m, self.wte(future_x))

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def uniformity_loss(m, max_tokens=512, generator=None):
    """Wang & Isola's uniformity, over individual memory tokens: log mean_{i != j} exp(-2 ||u_i - u_j||^2) with u
    the tokens projected onto the unit sphere. Lower is more uniform. Subsamples up to max_tokens tokens."""
    u = F.normalize(m.reshape(-1, m.size(-1)).float(), dim=-1)
    if u.size(0) > max_tokens:
        idx = torch.randperm(u.size(0), generator=generator)[:max_tokens].to(u.device)
        u = u[idx]
    n = u.size(0)
    assert n >= 2, "uniformity needs at least two memory tokens"
    sq_dist = (2 - 2 * u @ u.T).clamp_min(0)  # ||u_i - u_j||^2 for unit vectors
    off_diag = ~torch.eye(n, dtype=torch.bool, device=u.device)
    return torch.logsumexp(-2 * sq_dist[off_diag], dim=0) - torch.log(torch.tensor(float(n * (n - 1))))


class SMTObjective(nn.Module):
    """The joint SMT loss (smt-method.md section 4) over teacher and RNN, as one module so that DDP and
    torch.compile see a single forward:

        L = w_dec * CE(D(m_t, x_{t+1..t+Tf-1}), y_{t..t+Tf-1}) + w_dyn * MSE(f(m_t, x_{t+1}), m_{t+1}) + w_unif * L_unif

    with m_t = E(past up to x_t) and m_{t+1} = E(the same past slid by one). No stop-gradient: L_dyn trains the
    encoder through both memories, which makes them predictable one step ahead. The RNN takes one step from the
    teacher's memory: nothing unrolls."""

    def __init__(self, teacher, rnn, w_dec=1.0, w_dyn=0.1, w_unif=0.001):
        super().__init__()
        self.teacher, self.rnn = teacher, rnn
        self.w_dec, self.w_dyn, self.w_unif = w_dec, w_dyn, w_unif

    def forward(self, x, y, n_ctx, unif_idx):
        """x, y (B, Tc+Tf): a window of inputs and their next-token targets (-1: ignored), with the present x_t at
        index Tc-1: the past x_{t-Tc+1..t}, then x_{t+1..}. n_ctx (B,): how much of the past is real (its last
        n_ctx[b] tokens); unif_idx: which of the B*K memory tokens enter the uniformity loss.
        Returns the weighted loss and its terms (dec, dyn, unif), detached, for logging."""
        Tc, Tf, K = self.teacher.cfg.context_len, self.teacher.cfg.future_len, self.teacher.cfg.n_mem
        m_t = self.teacher.encode(x[:, :Tc], n_ctx)
        # the same window slid by one: the past now ends at x_{t+1} (and grows by one if it was short)
        m_next = self.teacher.encode(x[:, 1:Tc + 1], torch.clamp(n_ctx + 1, max=Tc))
        logits = self.teacher.decode(m_t, x[:, Tc:Tc + Tf - 1])  # predicts y_t .. y_{t+Tf-1}
        l_dec = F.cross_entropy(logits.float().flatten(0, 1), y[:, Tc - 1:Tc - 1 + Tf].flatten(), ignore_index=-1)
        l_dyn = F.mse_loss(self.rnn.step(m_t, x[:, Tc]).float(), m_next.float())
        l_unif = uniformity_loss(m_t[unif_idx // K, unif_idx % K])
        loss = self.w_dec * l_dec + self.w_dyn * l_dyn + self.w_unif * l_unif
        return loss, torch.stack([l_dec, l_dyn, l_unif]).detach()


class DMTObjective(nn.Module):
    """DAgger Memory Training (smt-method.md section 5): fine-tune the RNN on its *own* states. The RNN rolls out
    from a start memory for Td steps; every k-th state is regressed onto the teacher's memory of the same past
    (weight w_mse), and the readout learns to predict the next token from the (detached) states it will really see
    (weight w_ce). With bptt=False the incoming state is detached at every step, so each label trains one step:
    (m^_t, x_{t+1}) -> m_{t+1}, the one-step label on the RNN's own state. Holds only the RNN: the teacher's labels
    are computed outside, without gradient, and the teacher stays out of any DDP wrapper."""

    def __init__(self, rnn, w_mse=10.0, w_ce=1.0, bptt=False):
        super().__init__()
        self.rnn, self.w_mse, self.w_ce, self.bptt = rnn, w_mse, w_ce, bptt

    def forward(self, m_start, x, y, label_steps, labels):
        """m_start (B, K, d): the memory before x[:, 0]; x, y (B, Td): rollout inputs and next-token targets;
        label_steps (J,): indices into the rollout; labels (B, J, K, d): the teacher's memories there.
        Returns the weighted loss and its terms (mse, ce), detached, for logging."""
        ms = self.rnn.run(m_start, x, detach=not self.bptt)  # (B, Td, K, d): the state after each input
        l_mse = F.mse_loss(ms[:, label_steps].float(), labels.float())
        logits = self.rnn.logits(ms.detach())  # the readout trains on the states, not through them
        l_ce = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-1)
        return self.w_mse * l_mse + self.w_ce * l_ce, torch.stack([l_mse, l_ce]).detach()
