"""Many labels per window: the causal encoder's batched memories equal its per-window computation (values and
gradients, fp32), short and empty pasts included, and the many-label SMT objective equals its per-label definition."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import causal_models, encode, per_window, tiny_models
from encoder import SMTObjective, label_valid, uniformity_indices, uniformity_loss


@pytest.mark.parametrize('token_shift', [False, True])
@pytest.mark.parametrize('band', [0, 3])  # 3: the band binds inside these windows
@pytest.mark.parametrize('n_labels, T', [(1, 9), (4, 9), (9, 9), (11, 20)])  # T=20: 3 label groups per chunk
def test_labels_equal_per_window_computation(n_labels, T, band, token_shift):
    teacher, _ = causal_models(token_shift=token_shift)
    teacher.cfg.band = band
    torch.manual_seed(1)
    B = 5
    ctx = torch.randint(0, 16, (B, T))
    start = torch.tensor([0, 3, T - 2, T, T - 1])  # full, short, a label with the empty past, all empty, one token
    weights = torch.randn(B, n_labels, 3, 16)  # a random linear loss, to compare gradients
    got = teacher.encode_labels_raw(ctx, start, n_labels)
    assert got.shape == (B, n_labels, 3, 16)
    (got * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in teacher.named_parameters() if p.grad is not None}
    assert 'registers' in grads and 'wte.weight' in grads and ('shift.weight' in grads) == token_shift
    teacher.zero_grad()
    total = 0
    for j, p in enumerate(range(T - n_labels, T)):
        want = per_window(teacher, ctx, start, p)
        torch.testing.assert_close(got[:, j], want, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(got[:, j], per_window(teacher, ctx, start, p, pad=3), atol=2e-5, rtol=1e-5)
        total = total + (want * weights[:, j]).sum()
    total.backward()
    for n, p in teacher.named_parameters():
        if n in grads:
            torch.testing.assert_close(grads[n], p.grad, atol=2e-5, rtol=1e-4, msg=n)
    # the empty past is one memory, the one sync_rnn copies into the RNN's initial memory
    empty = teacher.encode_raw(torch.zeros(1, T, dtype=torch.long), torch.zeros(1, dtype=torch.long))[0]
    torch.testing.assert_close(got[3, -1], empty, atol=2e-5, rtol=1e-5)


def test_causal_encoder_ignores_padding_and_the_future():
    teacher, _ = causal_models()
    ctx = torch.randint(0, 16, (2, 8))
    n = torch.tensor([8, 3])
    m = encode(teacher, ctx, n)
    other = ctx.clone()
    other[1, :5] = (other[1, :5] + 1) % 16  # padding of row 1 only
    torch.testing.assert_close(encode(teacher, other, n)[1], m[1])
    # the context states are causal: a label's memory does not change when later tokens do
    ms = teacher.encode_labels_raw(ctx, torch.zeros(2, dtype=torch.long), 4)
    later = ctx.clone()
    later[:, 6:] = (later[:, 6:] + 1) % 16
    ms2 = teacher.encode_labels_raw(later, torch.zeros(2, dtype=torch.long), 4)
    torch.testing.assert_close(ms[:, :2], ms2[:, :2])
    assert not torch.allclose(ms[:, 2:], ms2[:, 2:])


def batch(B=4, Tc=8, Tf=3, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, 16, (B, Tc + Tf + 1), generator=g)
    return stream[:, :-1], stream[:, 1:], torch.tensor([Tc, 5, 2, 0])[:B], g


@pytest.mark.parametrize('n_labels, Tf', [(1, 3), (5, 3), (8, 1)])
def test_many_label_objective_is_the_per_label_objective(n_labels, Tf):
    teacher, rnn = causal_models(future_len=Tf)
    Tc, K = 8, 3
    x, y, n_ctx, g = batch(Tf=Tf)
    idx = uniformity_indices(n_ctx, n_labels, K, 10_000, g)
    calls = []
    rnn.updater.register_forward_hook(lambda *a: calls.append(1))
    objective = SMTObjective(teacher, rnn, labels_per_window=n_labels)
    loss, terms = objective(x, y, n_ctx, idx)
    assert len(calls) == 1  # all B*L transitions in one updater application: nothing unrolls
    # the definition, label by label, from the per-window encoder
    start = Tc - n_ctx
    valid = label_valid(n_ctx, n_labels)
    nll, dyn, tokens = [], [], []
    for j, p in enumerate(range(Tc - n_labels, Tc)):
        m_p, m_next = per_window(teacher, x, start, p), per_window(teacher, x, start, p + 1)
        m_p, m_next = F.rms_norm(m_p, (16,)), F.rms_norm(m_next, (16,))
        logits = teacher.decode(m_p, x[:, p + 1:p + Tf])
        ce = F.cross_entropy(logits.flatten(0, 1), y[:, p:p + Tf].flatten(), reduction='none').view(-1, Tf)
        step_err = (rnn.step(m_p, x[:, p + 1]) - m_next).pow(2).mean(dim=(1, 2))
        nll.append(ce[valid[:, j]])
        dyn.append(step_err[valid[:, j]])
        tokens.append(m_p)
    want_dec, want_dyn = torch.cat(nll).flatten().mean(), torch.cat(dyn).mean()
    all_tokens = torch.stack(tokens, 1).reshape(-1, 16)  # (B*L*K, d), in the objective's order
    want_unif = uniformity_loss(all_tokens[idx])
    torch.testing.assert_close(terms[:3], torch.stack([want_dec, want_dyn, want_unif]).detach(), atol=2e-5, rtol=1e-5)
    # labels before the real past are out of the losses, the present's label always in
    assert valid.tolist()[3] == [False] * (n_labels - 1) + [True]
    assert (idx < len(all_tokens)).all() and valid.repeat_interleave(K, 1).flatten()[idx].all()


def test_one_label_uniformity_draw_is_the_references():
    n_ctx = torch.tensor([8, 0, 3])
    a = uniformity_indices(n_ctx, 1, 4, 7, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, torch.randperm(12, generator=torch.Generator().manual_seed(3))[:7])


def test_reference_encoder_refuses_many_labels():
    teacher, rnn = tiny_models()
    with pytest.raises(ValueError, match="encoder_type='causal'"):
        SMTObjective(teacher, rnn, labels_per_window=2)


@pytest.mark.slow
def test_compiled_labels_match_eager():
    teacher, rnn = causal_models()
    x, y, n_ctx, g = batch()
    objective = SMTObjective(teacher, rnn, labels_per_window=6)
    idx = uniformity_indices(n_ctx, 6, 3, 512, g)
    eager, _ = objective(x, y, n_ctx, idx)
    compiled, _ = torch.compile(objective)(x, y, n_ctx, idx)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('token_shift', [False, True])
def test_banded_memory_is_stationary(token_shift):
    """With a band of b tokens and n layers, a memory depends on the last n*(b-1)+1 tokens only (one more with
    token_shift), at relative positions: the label deep inside a long stream equals the memory of just those tokens,
    wherever they sit."""
    teacher, _ = causal_models(n_enc_layer=2, token_shift=token_shift)
    teacher.cfg.band = 3
    R = teacher.reach()
    assert R == 2 * (3 - 1) + 1 + token_shift
    torch.manual_seed(2)
    ctx = torch.randint(0, 16, (2, 20))
    zero = torch.zeros(2, dtype=torch.long)
    labels = teacher.encode_labels_raw(ctx, zero, 8)  # the pasts ctx[0..12] .. ctx[0..19]
    for j, p in enumerate(range(12, 20)):
        alone = teacher.encode_raw(ctx[:, p + 1 - R:p + 1], torch.full((2,), R))
        torch.testing.assert_close(labels[:, j], alone, atol=2e-5, rtol=1e-5)
    # the oldest token in reach changes the memory; a token just out of reach changes nothing, without the band it would
    ctx1 = ctx.clone()
    ctx1[:, 20 - R] = (ctx1[:, 20 - R] + 1) % 16
    assert not torch.allclose(teacher.encode_labels_raw(ctx1, zero, 1)[:, 0], labels[:, -1])
    ctx2 = ctx.clone()
    ctx2[:, 19 - R] = (ctx2[:, 19 - R] + 1) % 16
    torch.testing.assert_close(teacher.encode_labels_raw(ctx2, zero, 1)[:, 0], labels[:, -1], atol=2e-5, rtol=1e-5)
    teacher.cfg.band = 0
    assert not torch.allclose(teacher.encode_labels_raw(ctx2, zero, 1)[:, 0], teacher.encode_labels_raw(ctx, zero, 1)[:, 0])


@pytest.mark.parametrize('encoder_type, band, token_shift', [('causal', 3, False), ('causal', 0, False),
                                                            ('reference', 0, False), ('causal', 3, True)])
def test_memory_along_a_stream(encoder_type, band, token_shift):
    """Teacher.memory, the labels DMT, drift and evaluation read, is the memory of the last reach() tokens for
    any stream length and any present, the empty past (-1) included; the banded teacher computes a long stream in
    chunks (max_pos is 64 here) from shared passes, and must agree with the per-window encoder."""
    teacher, _ = causal_models(n_enc_layer=2, token_shift=token_shift)
    teacher.cfg.encoder_type, teacher.cfg.band = encoder_type, band
    torch.manual_seed(3)
    T = 100
    x = torch.randint(0, 16, (2, T))
    pos = torch.tensor([[0, 5, T - 1, -1], [T - 1, 63, 3, 60]])
    got = teacher.memory(x, pos)
    R = teacher.reach()
    for b in range(2):
        for j, p in enumerate(pos[b].tolist()):
            w = max(0, p + 1 - R)
            want = encode(teacher, F.pad(x[b:b + 1, w:p + 1], (R - (p + 1 - w), 0)), torch.tensor([p + 1 - w]))
            torch.testing.assert_close(got[b, j], want[0], atol=2e-5, rtol=1e-5)


def subset_setup():
    """A 6-label objective on a batch, and its full terms: the reference for the label-subset tests."""
    teacher, rnn = causal_models(future_len=3)
    x, y, n_ctx, g = batch()
    L = 6
    idx = uniformity_indices(n_ctx, L, 3, 10_000, g)
    objective = SMTObjective(teacher, rnn, labels_per_window=L)
    return teacher, rnn, objective, (x, y, n_ctx, idx), objective(x, y, n_ctx, idx)[1], L


def test_decoding_a_subset_of_labels():
    """dec_idx: L_dec over the chosen labels only (all of them: the full objective); L_dyn and rnn_ce, which read the
    regressed transitions, do not change."""
    teacher, rnn, objective, (x, y, n_ctx, idx), full, L = subset_setup()
    _, same = objective(x, y, n_ctx, idx, torch.arange(L).expand(4, -1))
    torch.testing.assert_close(same, full)
    sub = torch.tensor([[0, 5], [1, 2], [4, 5], [3, 5]])
    _, part = objective(x, y, n_ctx, idx, sub)
    torch.testing.assert_close(part[1:], full[1:])  # dyn, unif, dyn_rel, rnn_ce: every regressed transition
    ms = F.rms_norm(teacher.encode_labels_raw(x[:, :9], 8 - n_ctx, L + 1), (16,))
    valid = label_valid(n_ctx, L)
    ce = []
    for b in range(4):
        for j in sub[b].tolist():
            p = 8 - L + j
            if valid[b, j]:
                logits = teacher.decode(ms[b:b + 1, j], x[b:b + 1, p + 1:p + 3])
                ce.append(F.cross_entropy(logits[0], y[b, p:p + 3], reduction='none'))
    torch.testing.assert_close(part[0], torch.cat(ce).mean())


def test_regressing_a_subset_of_transitions():
    """dyn_idx: L_dyn (and dyn_rel, rnn_ce) over the chosen transitions only, each the MSE of one RNN step from the
    label's memory to the next one; all of them gives the full objective; L_dec and L_unif do not change."""
    teacher, rnn, objective, (x, y, n_ctx, idx), full, L = subset_setup()
    _, same = objective(x, y, n_ctx, idx, None, torch.arange(L).expand(4, -1))
    torch.testing.assert_close(same, full)
    sub = torch.tensor([[0, 5], [1, 2], [4, 5], [3, 5]])
    _, part = objective(x, y, n_ctx, idx, None, sub)
    torch.testing.assert_close(part[[0, 2]], full[[0, 2]])  # dec, unif: every label
    ms = F.rms_norm(teacher.encode_labels_raw(x[:, :9], 8 - n_ctx, L + 1), (16,))
    valid = label_valid(n_ctx, L)
    err, sq, ce = [], [], []
    for b in range(4):
        for j in sub[b].tolist():
            p = 8 - L + j
            if valid[b, j]:
                m_pred = rnn.step(ms[b:b + 1, j], x[b:b + 1, p + 1])
                err.append(F.mse_loss(m_pred, ms[b:b + 1, j + 1]))
                sq.append(ms[b, j + 1].pow(2).mean())
                logits = teacher.decode(m_pred, x[b:b + 1, :0])[:, 0]
                ce.append(F.cross_entropy(logits, y[b:b + 1, p + 1]))
    l_dyn = torch.stack(err).mean()
    torch.testing.assert_close(part[1], l_dyn)
    torch.testing.assert_close(part[3], l_dyn / torch.stack(sq).mean())
    torch.testing.assert_close(part[4], torch.stack(ce).mean())
    assert not torch.allclose(part[1], full[1])


def test_eval_teacher_ce_of_the_banded_teacher():
    """eval.py's teacher CE with a banded teacher (whole sequences from shared passes) equals the decoder's first
    output from the per-window memory of each scored position."""
    from contextlib import nullcontext
    from metrics import gap_nll
    teacher, rnn = causal_models(n_enc_layer=2)
    teacher.cfg.band = 3
    torch.manual_seed(4)
    x, y = torch.randint(0, 16, (3, 20)), torch.randint(0, 16, (3, 20))
    nll = gap_nll(rnn, teacher, x, y, nullcontext(), every=3, batch_size=8)['teacher'][0]
    R, want = teacher.reach(), []
    for b in range(3):
        for p in range(0, 20, 3):
            w = max(0, p + 1 - R)
            m = encode(teacher, F.pad(x[b:b + 1, w:p + 1], (R - (p + 1 - w), 0)), torch.tensor([p + 1 - w]))
            logits = teacher.decode(m, x[:1, :0])[:, 0]
            want.append(F.cross_entropy(logits, y[b, p:p + 1]))
    torch.testing.assert_close(nll, torch.stack(want), atol=2e-5, rtol=1e-5)


def test_eval_teacher_ce_scores_only_the_targets():
    """eval.py's teacher CE without a band (a pass per position) runs only where there is a target (a probe has
    a few an episode) and equals the decoder's first output from the memory of that position's past."""
    from contextlib import nullcontext
    from metrics import gap_nll
    teacher, rnn = causal_models(n_enc_layer=2)
    torch.manual_seed(5)
    x, y = torch.randint(0, 16, (3, 12)), torch.randint(0, 16, (3, 12))
    y[:, :7] = -1  # targets only at the end, as in a probe
    y[1, 9] = -1
    nll, t_y = gap_nll(rnn, teacher, x, y, nullcontext(), every=1, batch_size=4)['teacher'][0], y.flatten()
    assert (nll[t_y < 0] == 0).all() and (nll[t_y >= 0] > 0).all()
    with torch.no_grad():
        for b, p in (y >= 0).nonzero().tolist():
            m = teacher.memory(x[b:b + 1], torch.tensor([p]))
            want = F.cross_entropy(teacher.decode(m, x[:1, :0])[:, 0], y[b, p:p + 1])
            torch.testing.assert_close(nll[b * 12 + p], want, atol=2e-5, rtol=1e-5)


def test_gap_nll_reads_the_teachers_memories_and_one_step_from_them():
    """eval.py's gap: at each scored position t, the RNN's readout on the teacher's memory of the past up to x_t,
    and on one RNN step from the teacher's memory of the past before x_t (the empty past at t = 0) reading x_t."""
    from contextlib import nullcontext
    from metrics import gap_nll
    teacher, rnn = causal_models(n_enc_layer=2)
    teacher.cfg.band = 3
    torch.manual_seed(6)
    x, y = torch.randint(0, 16, (3, 14)), torch.randint(0, 16, (3, 14))
    y[2, 6] = -1
    gap = gap_nll(rnn, teacher, x, y, nullcontext(), every=3, batch_size=8)
    t_y = y[:, ::3].flatten()
    with torch.no_grad():
        for i, (b, p) in enumerate((b, p) for b in range(3) for p in range(0, 14, 3)):
            before, now = teacher.memory(x[b:b + 1], torch.tensor([[p - 1, p]]))[0]
            for name, m in (('readout', now[None]), ('one_step', rnn.step(before[None], x[b, p:p + 1]))):
                logits = rnn.logits(m)
                nll, hit = gap[name][0][i], gap[name][1][i]
                if t_y[i] < 0:
                    assert nll == 0 and not hit
                    continue
                torch.testing.assert_close(nll, F.cross_entropy(logits, y[b, p:p + 1]), atol=2e-5, rtol=1e-5)
                assert hit == (logits.argmax(-1) == y[b, p]).item()
    assert not torch.allclose(gap['readout'][0], gap['one_step'][0])


def test_trainers_teacher_bits_on_whole_windows_score_a_random_target():
    """The trainers' teacher CE (metrics.teacher_window_bits) on whole episode windows scores a random input with a
    target in each window, the same at any batch size and every call, and is the decoder's first output from the
    memory of that input's past; on other windows it scores the last input with a target."""
    from contextlib import nullcontext
    from data.stream import windows
    from metrics import teacher_window_bits
    teacher, _ = causal_models(context_len=11, future_len=2)
    torch.manual_seed(6)
    L, n = 10, 24
    z, y = torch.randint(0, 16, (n, L + 1)), torch.randint(0, 16, (n, L))
    y[:, :3] = -1  # the first inputs have no target
    win = windows(z.numpy(), y.numpy(), torch.full((n,), L - 1).numpy(), 11, 2)
    sys_ = {'rank': 0, 'world_size': 1, 'ddp': False, 'device': 'cpu'}
    for whole in (True, False):
        seen = []
        real = teacher.window_memories
        def spy(x, start, p):
            seen.append(p[:, 0].clone())
            return real(x, start, p)
        teacher.window_memories = spy
        bits = [teacher_window_bits(teacher, win, sys_, nullcontext(), bs, whole) for bs in (5, 24, 5)]
        del teacher.window_memories
        pos = torch.cat(seen[:5])  # the first call's positions (batches of 5)
        assert torch.equal(pos, seen[5]) and torch.equal(pos, torch.cat(seen[6:]))  # any batch size, every call
        assert bits[0] == pytest.approx(bits[1], abs=1e-5) and bits[0] == bits[2]
        x_ep, t = win[0][:, :11], pos - 1  # window input p is episode token p - 1 (one token of left padding)
        assert (y.gather(1, t[:, None]) >= 0).all()  # every scored input has a target
        if whole:
            assert len(set(pos.tolist())) >= 5  # spread over the episode, not its last input
        else:
            assert (pos == 10).all()
        with torch.no_grad():
            want = [F.cross_entropy(teacher.decode(teacher.memory(x_ep[b:b + 1, 1:], t[b:b + 1]), x_ep[:1, :0])[:, 0],
                                    y[b, t[b]:t[b] + 1]) for b in range(n)]
        assert bits[0] == pytest.approx(torch.stack(want).mean().item() / math.log(2), rel=1e-4)
