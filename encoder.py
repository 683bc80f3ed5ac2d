"""
The SMT teacher: an encoder that turns a past into a memory m_t (K register tokens), and a causal decoder that must
predict the next Tf tokens from m_t alone (the predictive-state objective). Every consumer asks it for memories
through one of two methods: Teacher.memory(x, present), the memory of a past (DMT's labels, drift, evaluation,
sampling), and Teacher.window_memories(window, start, positions), the labels of an SMT training window. Both are
built from encode_raw (one window: the definition) and encode_labels_raw (many labels from one shared causal pass,
equal to it). Then what SMT computes from them: the uniformity loss, the label draws and the memory plan,
SMTObjective, DMTObjective, and their FLOPs. See docs/method.md.
(Longer than the other files: the teacher and the objectives that read it stay in one file, so that what a label is
and how it is used read together.)
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import Decoder, Stack, init_weights, to_state, transformer_flops

ENCODER_TYPES = ('reference', 'causal')


@dataclass
class TeacherConfig:
    vocab_size: int = 256
    n_mem: int = 16         # K registers -> K memory tokens
    d_model: int = 256
    n_head: int = 8
    backbone: str = 'transformer'  # the RNN's backbone: the encoder emits memories in its state space
    encoder_type: str = 'reference'  # 'reference': bidirectional (the paper); 'causal': many labels per window
    n_enc_layer: int = 8
    n_dec_layer: int = 4
    context_len: int = 256  # Tc: tokens of past the encoder sees
    future_len: int = 64    # Tf: tokens the decoder predicts from the memory
    band: int = 0           # causal encoder: every attention reads at most the last `band` tokens (0: no limit)
    token_shift: bool = False  # each context token's input also holds a learned map of its predecessor's embedding,
    # so one attention finds a token by what precedes it (a key's value after a marker: retrieval, associative recall)
    present_head: bool = False  # a linear head that reads the present token back from the memory (train_smt's
    # w_present): with it a memory holds the token the RNN's next step needs beside its input
    context_head: bool = False  # causal encoder: a linear head on its context tokens' outputs, each predicting the
    # token after it (train_smt's w_context_lm): every token of a window a target, where the decoder reads a few labels
    max_pos: int = 1024


def rope_len(context_len, n_mem, future_len):
    """The RoPE table's length for a teacher and its RNN: it covers a window (Tc + K), the decoder (K + Tf - 1), and
    at least 512 positions, so that the spans in which Teacher.memory labels a long stream are long."""
    return max(512, context_len + n_mem + future_len)


class Teacher(nn.Module):
    regions = ('register_attention',)  # what model.compile_regions compiles here (besides the blocks)

    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        assert cfg.context_len + cfg.n_mem <= cfg.max_pos and cfg.n_mem + cfg.future_len - 1 <= cfg.max_pos
        if cfg.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"unknown encoder_type '{cfg.encoder_type}'; valid: {', '.join(ENCODER_TYPES)}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)  # shared by encoder inputs and decoder inputs
        self.encoder = Stack(cfg.n_enc_layer, cfg.d_model, cfg.n_head, cfg.max_pos)
        self.decoder = Decoder(cfg)
        self.shift = nn.Linear(cfg.d_model, cfg.d_model, bias=False) if cfg.token_shift else None
        self.present = nn.Linear(cfg.n_mem * cfg.d_model, cfg.vocab_size) if cfg.present_head else None
        self.context_lm = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False) if cfg.context_head else None
        init_weights(self)
        self.registers = nn.Parameter(0.02 * torch.randn(cfg.n_mem, cfg.d_model))

    def embed_context(self, ctx, first):
        """The encoder's inputs for ctx (B, T) whose real tokens begin at index first[b]: each token's embedding, plus
        (token_shift) a learned map of its predecessor's where that is real too (the first real token has none, so
        padding never leaks in and a window's memory stays a function of its real past)."""
        e = self.wte(ctx)
        if self.shift is None:
            return e
        prev = F.pad(self.shift(e[:, :-1]), (0, 0, 1, 0))
        real = torch.arange(ctx.size(1), device=ctx.device)[None, :] > first[:, None]  # index i-1 >= first
        return e + prev * real[..., None].to(prev.dtype)

    def encode_raw(self, ctx, n_ctx):
        """ctx: (B, Tc) tokens, left-padded: the real past is the last n_ctx[b] of them (n_ctx may be 0).
        Returns the raw register outputs (B, K, d). Positions: context 0..Tc-1, registers Tc..Tc+K-1, so with
        RoPE every register sees the most recent token at the same relative offset whatever the context length.
        'reference': bidirectional over the real tokens and the registers; padding is masked out of the keys.
        'causal': each context token sees only the real tokens up to itself, the registers see all real tokens and
        each other. This is the per-window definition that encode_labels_raw computes for many windows at once."""
        B, Tc = ctx.shape
        K = self.cfg.n_mem
        regs = self.registers.expand(B, -1, -1).to(self.wte.weight.dtype)
        x = torch.cat([self.embed_context(ctx, Tc - n_ctx), regs], dim=1)
        pos = torch.arange(Tc + K, device=ctx.device)
        key_ok = pos[None, :] >= (Tc - n_ctx)[:, None]  # (B, Tc+K): registers always pass (pos >= Tc)
        if self.cfg.encoder_type == 'reference':
            mask = key_ok[:, None, None, :]
        else:
            is_reg = pos >= Tc
            # a context query sees real context keys up to itself; a register query sees every real key; every
            # query sees itself, so padded queries (whose outputs nobody reads) never face an all-masked row (NaN).
            # With a band, both read only the last `band` tokens up to their present (a register's present: Tc-1).
            sees = is_reg[:, None] | (~is_reg[None, :] & (pos[None, :] <= pos[:, None]))  # (query, key)
            if self.cfg.band:
                present = torch.clamp(pos, max=Tc - 1)
                sees = sees & (is_reg[None, :] | (pos[None, :] > present[:, None] - self.cfg.band))
            mask = ((key_ok[:, None, :] & sees) | torch.eye(Tc + K, dtype=torch.bool, device=ctx.device))[:, None]
        h = self.encoder(x, attn_mask=mask)
        return h[:, Tc:]

    def encode_labels_raw(self, ctx, start, n_labels=0, positions=None, with_context=False):
        """The causal encoder's memories of many prefixes of one window from one shared pass. ctx: (B, T) tokens
        whose real past begins at index start[b] (0 <= start <= T); labels at the last n_labels indices p of the
        window, or at the indices `positions`, (G,) for every row or (B, G) a row's own (any order, repeats allowed).
        Returns (B, G, K, d): label j is exactly
        encode_raw(ctx[:, :p+1], n=max(0, p+1-start)), the memory of ctx[start..p] (the empty past where p < start),
        but every context state is computed once:
        context tokens attend causally, so their states do not depend on which label reads them. Each label's
        K registers sit at positions p+1..p+K (the per-window layout, so RoPE offsets agree) and attend to the
        real context up to p and to each other; nobody else attends to them. with_context: also return the context
        tokens' final states (B, T, d), token i's a function of ctx[start..i] alone (the context LM's inputs)."""
        assert self.cfg.encoder_type == 'causal', "many labels per window need encoder_type='causal'"
        B, T = ctx.shape
        K, dev = self.cfg.n_mem, ctx.device
        p = torch.arange(T - n_labels, T, device=dev) if positions is None else positions  # label positions
        p = p.expand(B, -1) if p.dim() == 1 else p  # (B, G)
        G = p.size(1)
        assert 1 <= G and T + K <= self.encoder.cos.size(0), (G, T, K)
        reg_pos = (p[..., None] + 1 + torch.arange(K, device=dev)).flatten(1)  # label j's registers at p+1..p+K
        pos = torch.cat([torch.arange(T, device=dev).expand(B, -1), reg_pos], 1)
        cos, sin = self.encoder.cos[pos][:, None], self.encoder.sin[pos][:, None]  # (B, 1, T + G*K, hd)
        # context queries: real keys up to themselves, and themselves (padded rows stay finite)
        i = torch.arange(T, device=dev)
        band = self.cfg.band or T + 1  # no band: every key up to the query
        ctx_mask = ((i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - band)
                    & (i[None, None, :] >= start[:, None, None])) | torch.eye(T, dtype=torch.bool, device=dev)
        # register queries, every group at once: a group's K queries read the context up to its label (within the
        # band) and the group's own K registers, nothing else. Two batched products give those scores directly
        # (G*K x T against the context, K x K within each group), so no key is gathered or copied per group; the
        # context scores past a label are computed and masked (about G*K*T/2 wasted pairs, the price of one product).
        see_ctx = (i <= p[..., None]) & (i > p[..., None] - band) & (i >= start[:, None, None])  # (B, G, T)
        see_ctx = see_ctx[:, None, :, None, :]  # (B, 1, G, 1, T): per batch row, group and context key
        regs = self.registers.to(self.wte.weight.dtype).repeat(G, 1).expand(B, -1, -1)
        x = torch.cat([self.embed_context(ctx, start), regs], 1)
        for block in self.encoder.blocks:  # model.Block with the label masks in place of its own attention
            q, k, v = block.heads(x, cos, sin)
            y_ctx = F.scaled_dot_product_attention(q[:, :, :T], k[:, :, :T], v[:, :, :T], attn_mask=ctx_mask[:, None])
            y_reg = self.register_attention(q[:, :, T:], k, v, see_ctx)
            x = block.finish(x, torch.cat([y_ctx, y_reg], dim=2))
        regs = self.encoder.norm(x[:, T:]).view(B, G, K, -1)
        return (regs, self.encoder.norm(x[:, :T])) if with_context else regs

    def register_attention(self, q, k, v, see_ctx):
        """The label registers' attention in encode_labels_raw. q (B, H, G*K, hd): the registers' queries, group by
        group; k, v (B, H, T + G*K, hd): every key and value, context first; see_ctx (B, 1, G, 1, T): which context
        keys each group reads. A group's K queries read those and the group's own K registers."""
        G, T = see_ctx.size(2), see_ctx.size(-1)
        K = q.size(2) // G
        s_ctx = (q @ k[:, :, :T].transpose(-1, -2)).unflatten(2, (G, K)).masked_fill(~see_ctx, -math.inf)
        s_reg = q.unflatten(2, (G, K)) @ k[:, :, T:].unflatten(2, (G, K)).transpose(-1, -2)
        probs = (torch.cat([s_ctx, s_reg], dim=-1).float() * q.size(-1) ** -0.5).softmax(dim=-1).to(v.dtype)
        y_reg = (probs[..., T:] @ v[:, :, T:].unflatten(2, (G, K))).flatten(2, 3)
        return probs[..., :T].flatten(2, 3) @ v[:, :, :T] + y_reg

    def reach(self):
        """How many of the last tokens a memory depends on: n_enc_layer*(band-1)+1 for the banded causal encoder (each
        layer reads band-1 tokens further back), one more with token_shift (the oldest token's predecessor);
        otherwise a memory is defined on a window of the last Tc tokens (with episode- or image-aligned windows of
        Tc >= the episode: the whole episode read so far)."""
        if self.cfg.encoder_type == 'causal' and self.cfg.band:
            return len(self.encoder.blocks) * (self.cfg.band - 1) + 1 + self.cfg.token_shift
        return self.cfg.context_len

    def shared_passes(self, length):
        """Whether the memories at every present of a sequence of `length` tokens, read from its first token, come
        from shared passes: the causal encoder's, when they are stationary (a band), or when every one's window
        starts at the sequence's first token (length <= Tc: whole episodes and images)."""
        return self.cfg.encoder_type == 'causal' and (self.cfg.band > 0 or length <= self.cfg.context_len)

    # -------------------------------------------------------------------------
    # the interface: every consumer asks the teacher for memories through one of these two methods

    def memory(self, x, present):
        """The memory of the past up to x[b, present] (inclusive) of each row of x (B, T): its last reach() tokens,
        left-padded where fewer exist (present = -1: the empty past). present: an int, or (B,) or (B, J) indices;
        returns (B, K, d) or (B, J, K, d). How DMT's labels, drift, evaluation and sampling read the teacher: from
        shared passes where shared_passes(T), else one encoder pass per memory."""
        present = torch.as_tensor(present, device=x.device)
        present = present.expand(x.size(0)) if present.dim() == 0 else present
        flat = present.reshape(x.size(0), -1)
        if self.shared_passes(x.size(1)):
            m = self._from_passes(x, flat)
        else:
            m = self._windows(x, torch.zeros_like(flat[:, 0]), flat)
        return m.view(*present.shape, self.cfg.n_mem, -1)

    def window_memories(self, ctx, start, positions, with_context=False):
        """The labels of a training window ctx (B, T) whose real past begins at index start[b] (0 <= start <= T): the
        memory at each label position p, positions (G,) for every row or (B, G) a row's own. Returns (B, G, K, d).
        causal: the memory of ctx[start..p] (the empty past where p < start), every label from one shared pass
        (encode_labels_raw). reference: the memory of the last Tc tokens of it, one bidirectional pass a label (SMT's
        m_t and the window slid by one). with_context (causal): also the pass's context states (B, T, d)."""
        if self.cfg.encoder_type == 'causal' and with_context:
            regs, h = self.encode_labels_raw(ctx, start, positions=positions, with_context=True)
            return to_state(regs, self.cfg.backbone), h
        if self.cfg.encoder_type == 'causal':
            return to_state(self.encode_labels_raw(ctx, start, positions=positions), self.cfg.backbone)
        assert not with_context, "context states need encoder_type='causal'"
        return self._windows(ctx, start, positions)

    # -------------------------------------------------------------------------

    def _windows(self, x, start, positions):
        """One encoder pass per memory: for each row b and position p (positions (G,) or (B, G)), the last Tc tokens
        of x[b, start[b]..p] as one window of encode_raw, left-padded. Returns (B, G, K, d)."""
        B, Tc = x.size(0), self.cfg.context_len
        p = positions.expand(B, -1) if positions.dim() == 1 else positions
        idx = p[..., None] + 1 + torch.arange(Tc, device=x.device)  # into x padded by Tc on the left
        pasts = F.pad(x, (Tc, 0)).gather(1, idx.flatten(1)).view(-1, Tc)
        n = torch.clamp(p + 1 - start[:, None], 0, Tc).flatten()
        return to_state(self.encode_raw(pasts, n), self.cfg.backbone).view(B, p.size(1), self.cfg.n_mem, -1)

    def _from_passes(self, x, present):
        """memory() from shared passes (shared_passes): the memories asked for (any row's) from passes
        (encode_labels_raw) over spans of x, each span's window holding every token its memories depend on (the last
        reach() tokens, or all from x[:, 0]), so a stream of any length fits the RoPE table.
        x (B, T), present (B, J) in [-1, T). Returns (B, J, K, d)."""
        B, T = x.shape
        K, R, n_pos = self.cfg.n_mem, self.reach(), self.encoder.cos.size(0)
        xp = F.pad(x, (1, 0))  # index 0: the empty past before x[:, 0] (the real past starts at index 1)
        if T + 1 + K <= n_pos:  # the whole sequence fits one window: each row's own memories from one pass
            ms = self.encode_labels_raw(xp, torch.ones(B, dtype=torch.long, device=x.device), positions=present + 1)
            return to_state(ms, self.cfg.backbone)
        want = torch.unique(present + 1)  # sorted indices into xp of the memories asked for (any row's)
        assert n_pos - K - (R - 1) >= 1, f"max_pos={n_pos} is too short for memories that reach {R} tokens"
        out, a = [], 0
        while a < len(want):
            w = max(0, int(want[a]) - R + 1)  # the memories from want[a] on never read tokens before w
            b = int(torch.searchsorted(want, w + n_pos - K))  # want[a:b]: those whose registers fit the RoPE table
            start = torch.full((B,), 1 if w == 0 else 0, device=x.device)
            out.append(self.encode_labels_raw(xp[:, w:int(want[b - 1]) + 1], start, positions=want[a:b] - w))
            a = b
        ms = torch.cat(out, dim=1)  # (B, len(want), K, d)
        return to_state(take(ms, torch.searchsorted(want, present + 1)), self.cfg.backbone)

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
    # the diagonal (i = j) drops out as exp(-inf) = 0; a fixed shape, where boolean indexing would graph-break
    on_diag = torch.eye(n, dtype=torch.bool, device=u.device)
    return torch.logsumexp((-2 * sq_dist).masked_fill(on_diag, -math.inf).flatten(), dim=0) - math.log(n * (n - 1))


def label_valid(n_ctx, n_labels):
    """(B, L) bool: which of a window's L labels are real. Label j sits at index p = Tc-L+j (the present is Tc-1);
    the real past starts at index Tc - n_ctx. A label is real when its next input x_{p+1} is: its memory is then
    the real past up to p (possibly empty) and both its decoder targets and its transition are real. Labels before
    that would repeat the empty memory with inputs from outside the real past: they are left out of every loss."""
    return n_ctx[:, None] >= n_labels - 1 - torch.arange(n_labels, device=n_ctx.device)


def uniformity_indices(n_ctx, n_labels, n_mem, max_tokens, generator, mem_idx=None):
    """Which memory tokens of the labels enter the uniformity loss: up to max_tokens, drawn from the real labels
    only (copies of the empty memory would count as a collapse). Indices into the B*L*K tokens of the window's L
    labels, or with mem_idx (B, N) (memory_plan) into the B*N*K tokens of the memories the encoder computed, each
    real label counted once. With one label per window this is randperm(B*K)[:max_tokens], as the reference draws
    it; with the plan of every label the same tokens as without one."""
    valid = label_valid(n_ctx, n_labels)
    if mem_idx is not None:  # the plan's slots that hold a real label (not its last m_{t+1}), first copies only
        first = torch.cat([torch.ones_like(mem_idx[:, :1], dtype=torch.bool), mem_idx[:, 1:] != mem_idx[:, :-1]], 1)
        valid = (mem_idx < n_labels) & first & valid.gather(1, mem_idx.clamp(max=n_labels - 1))
    cand = valid.repeat_interleave(n_mem, dim=1).flatten().nonzero()[:, 0]
    return cand[torch.randperm(len(cand), generator=generator)[:max_tokens]]


def future_targets(y, context_len, n_labels, future_len):
    """(B, L) bool: which of a window's L labels have a target in their decoder window y_p .. y_{p+Tf-1} (y: the
    windows' targets, -1 ignored). On text every label; on an episode only those within Tf of its few targets."""
    has = F.pad((y >= 0).long().cumsum(1), (1, 0))  # has[:, i] = targets before index i
    p = torch.arange(context_len - n_labels, context_len)
    return has[:, p + future_len] > has[:, p]


def draw_labels(k, prefer, generator):
    """k of each window's labels at random, in increasing order, every preferred one (prefer (B, L) bool) before any
    other: (B, k), or None for k = 0 (all labels)."""
    if k:
        rank = torch.rand(prefer.shape, generator=generator) + (~prefer).float()
        return rank.argsort(1)[:, :k].sort(1).values


def memory_plan(n_labels, batch, dec_idx=None, dyn_idx=None, dyn_steps=1):
    """Which of a causal window's L + 1 memories the encoder computes (label j's m_t is memory j, its m_{t+1} memory
    j + 1): (batch, N) sorted indices. Every one, unless the decoder's and the RNN's subsets of labels (dec_idx
    (B, D), dyn_idx (B, R)) need fewer: then each row's union of dec, dyn .. dyn + S (S = dyn_steps, the RNN's
    steps from each regressed label), padded to D + (S + 1)R by repeating its last index (a fixed shape). A memory
    costs K register tokens in every encoder layer, so with few labels read the encoder costs little more than its
    pass over the context."""
    L = n_labels
    n = None if dec_idx is None or dyn_idx is None else dec_idx.size(1) + (dyn_steps + 1) * dyn_idx.size(1)
    if n is None or n >= L + 1:
        return torch.arange(L + 1).expand(batch, -1).contiguous()
    need = torch.zeros(batch, L + 1, dtype=torch.bool)
    for idx in (dec_idx, *(dyn_idx + i for i in range(dyn_steps + 1))):
        need.scatter_(1, idx, True)
    j = torch.arange(L + 1)
    mem_idx = torch.where(need, j, L + 1).sort(1).values[:, :n]
    last = torch.where(need, j, -1).max(1, keepdim=True).values
    return torch.where(mem_idx > L, last, mem_idx)


def target_ce(logits, targets):
    """The mean next-token CE over the real targets (N,) of logits (N, V), -1 ignored; 0, not nan, where none is real
    (a sparse task's batch or rollout can hold no target: a retrieval episode has one, at its end)."""
    nll = F.cross_entropy(logits.float(), targets, ignore_index=-1, reduction='sum')
    return nll / (targets >= 0).sum().clamp(min=1)


def take(ms, idx):
    """Memories ms (B, N, K, d) at indices idx (B, R) along N: (B, R, K, d)."""
    return ms.gather(1, idx[:, :, None, None].expand(-1, -1, *ms.shape[2:]))


class SMTObjective(nn.Module):
    """The joint SMT loss (docs/method.md, SMT) over teacher and RNN, as one module so that DDP and
    torch.compile see a single forward:

        L = w_dec * CE(D(m_t, x_{t+1..t+Tf-1}), y_{t..t+Tf-1}) + w_dyn * MSE(f(m_t, x_{t+1}), m_{t+1}) + w_unif * L_unif

    with m_t = E(past up to x_t) and m_{t+1} = E(the same past slid by one). No stop-gradient: L_dyn trains the
    encoder through both memories, which makes them predictable one step ahead. The RNN takes one step from the
    teacher's memory: nothing unrolls.

    labels_per_window = L (causal encoder only): the L timesteps t = Tc-L .. Tc-1 of each window are labelled from
    one encoder pass (Teacher.window_memories): L+1 memories m_{Tc-L} .. m_{Tc} of the window's growing prefixes,
    L transitions for L_dyn, L decoder windows for L_dec, all L memories for L_unif. Losses average over the real
    labels (label_valid). The causal encoder's m_{t+1} is the past up to x_{t+1} from the same window start (one
    token longer), where the reference slides its window by one."""

    def __init__(self, teacher, rnn, w_dec=1.0, w_dyn=0.1, w_unif=0.001, labels_per_window=1, w_rnn_ce=0.0,
                 w_present=0.0, dyn_noise=0.0, w_context_lm=0.0, dyn_steps=1):
        super().__init__()
        if labels_per_window != 1 and teacher.cfg.encoder_type != 'causal':
            raise ValueError("labels_per_window > 1 needs encoder_type='causal'")
        assert 1 <= labels_per_window <= teacher.cfg.context_len
        assert 1 <= dyn_steps <= labels_per_window, "dyn_steps must be in [1, labels_per_window]"
        assert (w_present > 0) == (teacher.present is not None), "w_present > 0 needs TeacherConfig(present_head=True)"
        assert (w_context_lm > 0) == (teacher.context_lm is not None), \
            "w_context_lm > 0 needs TeacherConfig(context_head=True)"
        assert w_context_lm == 0 or teacher.cfg.encoder_type == 'causal', "w_context_lm needs encoder_type='causal'"
        self.teacher, self.rnn = teacher, rnn
        self.w_dec, self.w_dyn, self.w_unif, self.w_rnn_ce = w_dec, w_dyn, w_unif, w_rnn_ce
        self.w_present, self.dyn_noise, self.w_context_lm = w_present, dyn_noise, w_context_lm
        self.labels, self.dyn_steps = labels_per_window, dyn_steps

    def forward(self, x, y, n_ctx, unif_idx, dec_idx=None, dyn_idx=None, mem_idx=None, noise=None):
        """x, y (B, Tc+Tf): a window of inputs and their next-token targets (-1: ignored), with the present x_t at
        index Tc-1: the past x_{t-Tc+1..t}, then x_{t+1..}. n_ctx (B,): how much of the past is real (its last
        n_ctx[b] tokens); unif_idx: which of the labelled memory tokens enter the uniformity loss
        (uniformity_indices). Returns the weighted loss and its terms (dec, dyn, unif, dyn_rel, rnn_ce), detached, for
        logging: dyn_rel = L_dyn / mean square of the target memory, which a teacher cannot lower by shrinking its
        memories; rnn_ce = the decoder's next-token CE read from the RNN's one-step memory f(m_t, x_{t+1}) (what the
        RNN's readout will see), in the loss with weight w_rnn_ce (0: a diagnostic only).
        dec_idx (B, D): which of each window's L labels the decoder reads (D <= L; None: all). The decoder costs
        K + Tf - 1 tokens a label, several times the encoder's and the RNN's share, so decoding a subset buys
        more labelled transitions per second. dyn_idx (B, R): likewise, which of the L transitions the RNN regresses
        (None: all); neighbouring transitions of a window are much alike, and with a cheap teacher the RNN's step is
        the larger share. mem_idx (B, N): which of the window's L + 1 memories the encoder computes (memory_plan;
        None: all), unif_idx then indexing their tokens (uniformity_indices with the plan). rnn_ce reads the RNN's
        one-step memories of the regressed transitions. noise (B, R, K, d), standard normal (None: none): the RNN's
        step reads m_t + dyn_noise * rms(m_t) * noise and regresses the clean m_{t+1}, so it learns to pull a state
        that has drifted off the teacher's memories back onto them (time-parallel, where DMT corrects the drift on
        the RNN's own rollouts); rms(m_t) is each memory's, detached.
        dyn_steps = S > 1: from each regressed label j (j <= L - S: the chain ends within the window) the RNN takes S
        steps on x_{p+1..p+S} from its own states, gradients through them (a short unroll, still parallel over the
        labels), each step regressed onto the teacher's memory there: L_dyn is the mean over the S steps, so the
        RNN learns steps whose errors do not compound. rnn_ce reads the first step; dyn_rel is that L_dyn over the
        first step's target mean square.
        Extra terms, appended in this order where their weight is > 0: L_present, then L_context_lm: the encoder's
        context tokens x_0 .. x_Tc of the window, each state (a function of the real past up to it) predicting its
        target through the teacher's context head, over the real past and real targets: a dense next-token signal
        for the encoder, where L_dec reads only the decoded labels."""
        Tc, Tf, L = self.teacher.cfg.context_len, self.teacher.cfg.future_len, self.labels
        B, dev = x.size(0), x.device
        every = torch.arange(L, device=dev).expand(B, -1).contiguous()
        plan = torch.arange(L + 1, device=dev).expand(B, -1).contiguous() if mem_idx is None else mem_idx
        ms = self.teacher.window_memories(x[:, :Tc + 1], Tc - n_ctx, Tc - L + plan,
                                          with_context=self.w_context_lm > 0)  # (B, N, K, d)
        if self.w_context_lm > 0:
            ms, h_ctx = ms  # and the context tokens' states (B, Tc + 1, d)
        valid = label_valid(n_ctx, L)  # (B, L)

        def memories(j):  # the memories j (B, R) of the window (label j's m_t), from the computed ones
            return take(ms, torch.searchsorted(plan, j.contiguous()))

        dec = every if dec_idx is None else dec_idx
        m_dec, p_dec, valid_dec = memories(dec), Tc - L + dec, valid.gather(1, dec)
        D = dec.size(1)
        future = x.gather(1, (p_dec[..., None] + 1 + torch.arange(Tf - 1, device=dev)).view(B, -1))  # x_{p+1..}
        targets = y.gather(1, (p_dec[..., None] + torch.arange(Tf, device=dev)).view(B, -1)).view(B, D, Tf)
        targets = torch.where(valid_dec[..., None], targets, -1)  # y_p .. y_{p+Tf-1}, real labels only
        logits = self.teacher.decode(m_dec.flatten(0, 1), future.view(B * D, Tf - 1))
        l_dec = self.dec_loss(logits, targets.view(B * D, Tf))
        # one step from each regressed label, all in one updater call; MSE per transition, averaged over real ones
        S = self.dyn_steps  # each regressed label starts a chain of S steps, which must end within the window
        dyn = every[:, :L - S + 1] if dyn_idx is None else dyn_idx
        m_t, m_next, p_dyn, valid_dyn = memories(dyn), memories(dyn + 1), Tc - L + dyn, valid.gather(1, dyn)
        if noise is not None and self.dyn_noise > 0:
            rms = m_t.detach().pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()
            m_t = m_t + self.dyn_noise * rms * noise.to(m_t.dtype)
        m_pred = self.rnn.step(m_t.flatten(0, 1), x.gather(1, p_dyn + 1).flatten())
        err = (m_pred.float() - m_next.flatten(0, 1).float()).pow(2).mean(dim=(-2, -1))
        m, errs = m_pred, [err]
        for i in range(1, S):  # dyn_steps > 1: the RNN goes on from its own state, its gradient through the chain
            m = self.rnn.step(m, x.gather(1, p_dyn + 1 + i).flatten())
            errs.append((m.float() - memories(dyn + 1 + i).flatten(0, 1).float()).pow(2).mean(dim=(-2, -1)))
        err = torch.stack(errs).mean(0)  # each chain's mean over its S steps
        w = valid_dyn.flatten().float()
        l_dyn = (err * w).sum() / w.sum()
        l_unif = uniformity_loss((ms if mem_idx is not None else ms[:, :-1]).reshape(-1, ms.size(-1))[unif_idx])
        target_sq = (m_next.detach().float().pow(2).mean(dim=(-2, -1)).flatten() * w).sum() / w.sum()
        next_y = torch.where(valid_dyn, y.gather(1, p_dyn + 1), -1)  # the target after x_{p+1}
        loss, terms = self.combine(l_dec, l_dyn, l_unif, l_dyn.detach() / target_sq,
                                   self.rnn_ce(m_pred, next_y.flatten()))
        extra = []
        if self.w_present > 0:  # L_present: memory j's own present token x_{Tc-L+j} read back from it, where real
            pos = Tc - L + plan
            present = torch.where(n_ctx[:, None] >= L - plan, x.gather(1, pos), -1)
            l_present = target_ce(self.teacher.present(ms.flatten(2)).flatten(0, 1), present.flatten())
            loss, extra = loss + self.w_present * l_present, extra + [l_present]
        if self.w_context_lm > 0:  # L_context_lm: context token i predicts y_i, where it and its target are real
            i = torch.arange(Tc + 1, device=dev)
            y_ctx = torch.where(i[None, :] >= (Tc - n_ctx)[:, None], y[:, :Tc + 1], -1)
            l_ctx = target_ce(self.teacher.context_lm(h_ctx).flatten(0, 1), y_ctx.flatten())
            loss, extra = loss + self.w_context_lm * l_ctx, extra + [l_ctx]
        return loss, torch.cat([terms, torch.stack(extra).detach()]) if extra else terms

    def rnn_ce(self, m_pred, targets):
        """The decoder's next-token CE (its first slot) read from the RNN's one-step memories m_pred (N, K, d). With
        w_rnn_ce > 0 its gradient trains the RNN to step into memories the decoder (its future readout) reads well,
        and the decoder to read them; otherwise it is only logged, and costs no backward pass."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.w_rnn_ce > 0):
            logits = self.teacher.decode(m_pred, targets.new_zeros(m_pred.size(0), 0))[:, 0]
            return target_ce(logits, targets)

    def dec_loss(self, logits, targets):
        """L_dec: the decoder's mean CE over its Tf slots, logits (N, Tf, V), targets (N, Tf), -1 ignored. Slot 0
        predicts the next token from the memory alone, exactly what the RNN's readout will do."""
        return target_ce(logits.flatten(0, 1), targets.flatten())

    def combine(self, l_dec, l_dyn, l_unif, dyn_rel, rnn_ce):
        loss = self.w_dec * l_dec + self.w_dyn * l_dyn + self.w_unif * l_unif
        if self.w_rnn_ce > 0:
            loss = loss + self.w_rnn_ce * rnn_ce
        return loss, torch.stack([l_dec, l_dyn, l_unif, dyn_rel, rnn_ce.detach()]).detach()


def smt_flops_per_window(cfg, step_flops, labels_per_window=1, decoded_labels=0, dyn_labels=0, planned=True,
                         dyn_steps=1):
    """Training FLOPs (forward + backward) of one SMT window, for MFU: the matrix products the step computes,
    checked against torch's FlopCounterMode in tests/test_compile.py. The encoder; per decoded label one decoder pass
    over K + Tf - 1 tokens and its vocabulary head on Tf slots; dyn_steps RNN steps (step_flops: RNN.step_flops) per
    regressed label (0: every label that starts a chain); the rnn_ce diagnostic, a forward decoder pass (a third of
    a training pass) over the K tokens of each regressed one-step memory, with one head slot; w_present's head
    (causal encoder) on every memory computed; and w_context_lm's head on the Tc + 1 context tokens. The readout is
    not trained by SMT.
    reference: two full encoder passes over Tc + K tokens. causal: one pass over Tc + 1 context tokens (causal
    attention, half the scores) plus a group of K registers for each memory computed (memory_plan), each reading on
    average the context up to its label; only the unmasked query-key pairs count, though attention kernels may
    compute masked ones too."""
    n, d, K, Tc, Tf, L = cfg.n_enc_layer, cfg.d_model, cfg.n_mem, cfg.context_len, cfg.future_len, labels_per_window
    head = 6 * d * cfg.vocab_size  # one slot of the decoder's vocabulary head
    decode = transformer_flops(cfg.n_dec_layer, d, K + Tf - 1) + Tf * head  # one decoder window
    rnn_ce = (transformer_flops(cfg.n_dec_layer, d, K) + head) / 3
    if cfg.encoder_type == 'reference':
        return 2 * (transformer_flops(n, d, Tc + K) + 6 * d * d * Tc * cfg.token_shift) + decode + step_flops + rnn_ce
    D, R, S = decoded_labels or L, dyn_labels or L - dyn_steps + 1, dyn_steps
    sparse = planned and decoded_labels and dyn_labels and D + (S + 1) * R < L + 1
    N = D + (S + 1) * R if sparse else L + 1  # the memories the encoder computes (memory_plan; planned=False: all)
    present = 6 * K * d * cfg.vocab_size * cfg.present_head  # w_present's head on each computed memory
    context_lm = (Tc + 1) * head * cfg.context_head  # w_context_lm's head on each context token
    return (encoder_flops(cfg, Tc + 1, N) + D * decode + R * (S * step_flops + rnn_ce) + N * present
            + context_lm)


def encoder_flops(cfg, T, G):
    """Training FLOPs (forward + backward) of one causal-encoder pass over T context tokens labelling the last G of
    them (Teacher.window_memories): the linear layers over T + G*K tokens (and token_shift's over the T context
    tokens); causal attention over the context (half the scores), and each group of K registers reading on average
    the context up to its label."""
    n, d, K = cfg.n_enc_layer, cfg.d_model, cfg.n_mem
    scores = T ** 2 / 2 + G * K * (T - (G - 1) / 2 + K)  # query-key pairs that are not masked
    return 6 * 12 * n * d * d * (T + G * K) + 12 * n * d * scores + 6 * d * d * T * cfg.token_shift



def dmt_flops_per_rollout(cfg, step_flops, readout_flops, Tc, Td, n_labels, visited, trained, read, graph=False):
    """Training FLOPs of one DMT rollout of Td steps (train_dmt.py's MFU, bench.py's dmt rows): `visited` forward
    updater steps without a graph (a third of a training step each; Td for the step loop, more for parallel sweeps),
    `trained` transitions stepped again with the graph (forward + backward), the readout at `read` positions, and one
    forward pass of the teacher (a third of a training pass) over the Tc + Td tokens computing the start memory and
    n_labels labels. graph=True: the rollout itself ran with autograd (BPTT, or DMT's loop before the batched step),
    so each of its Td steps is a training step and nothing is stepped again."""
    steps = Td if graph else visited / 3 + trained
    return steps * step_flops + read * readout_flops + encoder_flops(cfg, Tc + Td, n_labels + 1) / 3

class DMTObjective(nn.Module):
    """The DMT loss (docs/method.md, DMT) over a batch of rollouts of the RNN on its own states. Holds only the RNN:
    the teacher's labels come from outside, without gradient, so the teacher stays out of the DDP wrapper.

        L = w_mse * MSE(m^_t, label_t)  (at the label steps)  +  w_ce * CE(readout(sg(m^_t)), y_t)

    bptt=False (the reference): the incoming state is detached at every step, so every gradient is one step deep,
    (m^_{t-1}, x_t) -> m^_t, and the loss is a sum of one-step terms on the visited states. So the rollout visits
    its states without a graph, then one batched step from the visited state before each trained transition carries
    the whole gradient. The visit is rnn.run, or with rollout='parallel' RNN.rollout's sweeps over all steps at once
    from the teacher's memories, to tolerance tol (at most max_sweeps; 0: no limit). bptt=True: rnn.run with the
    graph through the whole rollout. ce_through_state: the readout's CE also reaches the updater (one step back per
    state, or with bptt through the rollout). ce_at_labels: the readout reads the states at the label steps only
    (with a subset of labels, train_dmt.py's dyn_labels), else every state."""

    def __init__(self, rnn, w_mse=10.0, w_ce=1.0, bptt=False, ce_through_state=False, rollout='sequential', tol=1e-4,
                 max_sweeps=0, ce_at_labels=False):
        super().__init__()
        assert rollout in ('parallel', 'sequential'), rollout
        self.rnn, self.w_mse, self.w_ce, self.bptt, self.ce_through_state = rnn, w_mse, w_ce, bptt, ce_through_state
        self.rollout, self.tol, self.max_sweeps, self.ce_at_labels = rollout, tol, max_sweeps, ce_at_labels

    def visit(self, m_start, x, label_steps, labels):
        """The states the RNN visits from m_start over x (B, Td), no graph, and the sweeps that took (Td: the loop)."""
        if self.rollout == 'sequential':
            return self.rnn.run(m_start, x), x.size(1)
        # the guess: the teacher's memory at every step, each label held until the next (m_start before the first)
        held = torch.searchsorted(label_steps, torch.arange(x.size(1), device=x.device), right=True)
        guess = torch.cat([m_start[:, None], labels.to(m_start.dtype)], dim=1)[:, held]
        return self.rnn.rollout(m_start, x, guess, self.tol, self.max_sweeps)

    def forward(self, m_start, x, y, label_steps, labels):
        """m_start (B, K, d): the memory before x[:, 0]; x, y (B, Td): rollout inputs and next-token targets;
        label_steps (J,): increasing indices into the rollout; labels (B, J, K, d): the teacher's memories there.
        Returns the weighted loss and its terms (mse, ce, sweeps), detached, for logging."""
        if self.bptt:
            ms = self.rnn.run(m_start, x)  # (B, Td, K, d): the state after each input, with the graph through all
            m_label, m_read, sweeps = ms[:, label_steps], ms if self.ce_through_state else ms.detach(), x.size(1)
        else:
            with torch.no_grad():
                ms, sweeps = self.visit(m_start, x, label_steps, labels)
            trained = torch.arange(x.size(1), device=x.device) if self.ce_through_state else label_steps
            prev = torch.cat([m_start[:, None], ms[:, :-1]], dim=1)[:, trained]  # the state each transition read
            new = self.rnn.step(prev.flatten(0, 1), x[:, trained].flatten()).view_as(prev)
            m_label, m_read = (new[:, label_steps], new) if self.ce_through_state else (new, ms)
        l_mse = F.mse_loss(m_label.float(), labels.float())
        if self.ce_at_labels:
            m_read, y = m_read[:, label_steps], y[:, label_steps]
        logits = self.rnn.logits(m_read)
        l_ce = target_ce(logits.flatten(0, 1), y.flatten())
        terms = torch.stack([l_mse.detach(), l_ce.detach(), torch.tensor(float(sweeps), device=x.device)])
        return self.w_mse * l_mse + self.w_ce * l_ce, terms
