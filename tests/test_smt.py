"""The SMT objective: one RNN step per transition, gradients everywhere they should be, compile parity."""
import torch

import pytest

from conftest import causal_models, encode, tiny_models
from encoder import SMTObjective


def batch(B=4, Tc=8, Tf=3, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, 16, (B, Tc + Tf + 1), generator=g)
    n_ctx = torch.tensor([Tc, Tc, 2, 0])[:B]
    return stream[:, :-1], stream[:, 1:], n_ctx, torch.randperm(B * K, generator=g)


def test_dyn_gradient_reaches_the_rnn_through_one_step_only():
    teacher, rnn = tiny_models()
    calls = []
    rnn.updater.register_forward_hook(lambda *a: calls.append(1))
    objective = SMTObjective(teacher, rnn, w_dec=0.0, w_dyn=1.0, w_unif=0.0)
    x, y, n_ctx, idx = batch()
    loss, terms = objective(x, y, n_ctx, idx)
    loss.backward()
    assert len(calls) == 1  # one updater application for the whole batch of transitions: no unrolling
    got = [p.grad.clone() for p in rnn.updater.parameters()]
    # the same gradient from one step on detached teacher memories: nothing else reaches the RNN
    rnn.zero_grad()
    with torch.no_grad():
        m_t = encode(teacher, x[:, :8], n_ctx)
        m_next = encode(teacher, x[:, 1:9], torch.clamp(n_ctx + 1, max=8))
    torch.nn.functional.mse_loss(rnn.step(m_t, x[:, 8]), m_next).backward()
    for a, b in zip(got, [p.grad for p in rnn.updater.parameters()]):
        torch.testing.assert_close(a, b)
    # no stop-gradient: L_dyn also trains the encoder (through m_t and m_{t+1}) and the registers
    assert teacher.registers.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in teacher.encoder.parameters())
    assert abs(terms[1].item() - loss.item()) < 1e-6


def test_all_terms_are_finite_and_decoder_trained_by_dec():
    teacher, rnn = tiny_models()
    loss, terms = SMTObjective(teacher, rnn)(*batch())
    assert torch.isfinite(terms).all() and terms[0] > 0 and terms[1] > 0 and terms[2] <= 0
    loss.backward()
    assert teacher.decoder.head.weight.grad.abs().sum() > 0
    assert rnn.readout.head.weight.grad is None  # the readout is copied from the decoder, not trained by SMT


def test_future_len_one():
    teacher, rnn = tiny_models(future_len=1)
    loss, _ = SMTObjective(teacher, rnn)(*batch(Tf=1))
    assert torch.isfinite(loss)


def test_decoder_targets_are_the_next_tokens():
    teacher, rnn = tiny_models()
    x, y, n_ctx, idx = batch()
    loss, terms = SMTObjective(teacher, rnn, w_dec=1.0, w_dyn=0.0, w_unif=0.0)(x, y, n_ctx, idx)
    # on a stream y_t = x_{t+1}: the decoder reading x_{t+1..t+Tf-1} must predict x_{t+1..t+Tf}
    logits = teacher.decode(encode(teacher, x[:, :8], n_ctx), x[:, 8:10])
    want = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 8:11].flatten())
    torch.testing.assert_close(loss, want)


def test_relative_dyn_loss_is_scale_free():
    """dyn_rel = L_dyn / mean square of the target memory: a tanh-space teacher that shrinks its memories lowers L_dyn
    without the RNN learning anything; dyn_rel sees through that."""
    teacher, rnn = tiny_models(backbone='gru')
    x, y, n_ctx, idx = batch()
    _, terms = SMTObjective(teacher, rnn)(x, y, n_ctx, idx)
    with torch.no_grad():
        m_next = encode(teacher, x[:, 1:9], torch.clamp(n_ctx + 1, max=8))
    torch.testing.assert_close(terms[3], terms[1] / m_next.pow(2).mean())
    assert m_next.pow(2).mean() < 0.9  # tanh memories: the ratio is not the loss itself


def test_dec_loss_is_the_mean_over_every_real_target():
    """L_dec is the plain mean CE over every real target of the decoder's Tf slots (the paper's), ignored ones left
    out."""
    teacher, rnn = tiny_models()
    x, y, n_ctx, idx = batch()
    y = y.clone()
    y[0, 9] = -1  # an ignored target in a later slot
    logits = teacher.decode(encode(teacher, x[:, :8], n_ctx), x[:, 8:10])
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[:, 7:10].flatten(), ignore_index=-1,
                                           reduction='none').view(4, 3)
    _, plain = SMTObjective(teacher, rnn)(x, y, n_ctx, idx)
    torch.testing.assert_close(plain[0], ce[y[:, 7:10] >= 0].mean())


def test_rnn_ce_reads_the_rnn_one_step_memory():
    """rnn_ce: the decoder's next-token CE from f(m_t, x_{t+1}); logged always, trained only with w_rnn_ce > 0."""
    teacher, rnn = tiny_models()
    x, y, n_ctx, idx = batch()
    _, terms = SMTObjective(teacher, rnn)(x, y, n_ctx, idx)
    with torch.no_grad():
        m_pred = rnn.step(encode(teacher, x[:, :8], n_ctx), x[:, 8])
        want = torch.nn.functional.cross_entropy(teacher.decode(m_pred, x[:, :0])[:, 0], y[:, 8])
    torch.testing.assert_close(terms[4], want)
    for w, trained in ((0.0, False), (1.0, True)):
        rnn.zero_grad()
        loss, _ = SMTObjective(teacher, rnn, w_dec=0.0, w_dyn=0.0, w_unif=0.0, w_rnn_ce=w)(x, y, n_ctx, idx)
        if trained:
            loss.backward()
            assert rnn.wte.weight.grad.abs().sum() > 0
        else:
            assert not loss.requires_grad or loss.grad_fn is None or loss.item() == 0.0


def test_present_loss_reads_each_memory_s_own_token():
    """L_present: the present token x_p of every computed memory (the past up to p), read back by the teacher's
    linear head, over the memories whose present is real (p at or after the window's real past); it trains the
    encoder; without the head the objective refuses a weight."""
    teacher, rnn = causal_models(present_head=True)
    x, y, n_ctx, _ = batch()  # n_ctx 8, 8, 2, 0 of Tc = 8
    L, Tc = 4, 8
    objective = SMTObjective(teacher, rnn, w_dec=0.0, w_dyn=0.0, w_unif=0.0, labels_per_window=L, w_present=1.0)
    idx = torch.arange(4)
    loss, terms = objective(x, y, n_ctx, idx)
    pos = torch.arange(Tc - L, Tc + 1)  # memories 0..L: the pasts up to x_4 .. x_8
    with torch.no_grad():
        ms = teacher.window_memories(x[:, :Tc + 1], Tc - n_ctx, pos.expand(4, -1))
        logits = teacher.present(ms.flatten(2))
    real = pos[None] >= Tc - n_ctx[:, None]
    assert real.sum(1).tolist() == [5, 5, 3, 1]
    want = torch.nn.functional.cross_entropy(logits[real], x[:, pos][real])
    torch.testing.assert_close(terms[5], want)
    loss.backward()
    assert teacher.present.weight.grad.abs().sum() > 0 and teacher.registers.grad.abs().sum() > 0
    with pytest.raises(AssertionError, match='present_head'):
        SMTObjective(*tiny_models(), w_present=1.0)


def test_context_lm_predicts_each_real_token_s_target_from_its_past_alone():
    """L_context_lm: the encoder's context token i of the window x_0 .. x_Tc predicts y_i through the context head,
    over the real past (i at or after the window's real start) and real targets. Against an independent reference:
    a plain causal pass of the encoder over each row's real tokens alone (RoPE is relative, so the positions'
    offset does not matter); it trains the encoder and the head; without the head the objective refuses a weight."""
    teacher, rnn = causal_models(context_head=True)
    x, y, n_ctx, _ = batch()  # n_ctx 8, 8, 2, 0 of Tc = 8
    Tc, L = 8, 4
    y = y.clone()
    y[1, 5] = -1  # an ignored target inside the real past: out of the term
    objective = SMTObjective(teacher, rnn, w_dec=0.0, w_dyn=0.0, w_unif=0.0, labels_per_window=L, w_context_lm=1.0)
    loss, terms = objective(x, y, n_ctx, torch.arange(4))
    logits, targets = [], []
    with torch.no_grad():
        for b in range(4):
            s = Tc - int(n_ctx[b])  # the real past starts here; x_Tc (the next input) is always real
            h = teacher.encoder(teacher.embed_context(x[b:b + 1, s:Tc + 1], torch.zeros(1, dtype=torch.long)),
                                is_causal=True)[0]
            keep = y[b, s:Tc + 1] >= 0
            logits.append(teacher.context_lm(h)[keep])
            targets.append(y[b, s:Tc + 1][keep])
    assert [len(t) for t in targets] == [9, 8, 3, 1]
    want = torch.nn.functional.cross_entropy(torch.cat(logits), torch.cat(targets))
    torch.testing.assert_close(terms[5], want)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert teacher.context_lm.weight.grad.abs().sum() > 0 and teacher.wte.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in teacher.encoder.blocks[0].parameters())
    with pytest.raises(AssertionError, match='context_head'):
        SMTObjective(*causal_models(), w_context_lm=1.0)
    # after w_present's term when both are on
    teacher, rnn = causal_models(context_head=True, present_head=True)
    _, both = SMTObjective(teacher, rnn, labels_per_window=L, w_present=1.0, w_context_lm=0.5)(x, y, n_ctx,
                                                                                             torch.arange(4))
    assert both.shape == (7,)


def test_dyn_steps_chain_the_rnn_s_own_steps_with_gradients_through_them():
    """dyn_steps = 2: from each label j <= L - 2 the RNN steps twice, the second from its own first state, and
    L_dyn is the mean of the two steps' MSE onto the teacher's memories j + 1, j + 2 over real labels; loss and
    gradients match a hand-written chain (the second step's gradient reaching the first through the state)."""
    teacher, rnn = causal_models()
    x, y, n_ctx, _ = batch()  # n_ctx 8, 8, 2, 0 of Tc = 8
    Tc, L, S = 8, 4, 2
    dyn = torch.tensor([[0, 2], [1, 2], [0, 1], [2, 2]])
    objective = SMTObjective(teacher, rnn, w_dec=0.0, w_dyn=1.0, w_unif=0.0, labels_per_window=L, dyn_steps=S)
    loss, terms = objective(x, y, n_ctx, torch.arange(4), None, dyn)
    loss.backward()
    got = [p.grad.clone() for p in rnn.updater.parameters()]
    teacher.zero_grad()
    rnn.zero_grad()
    ms = teacher.window_memories(x[:, :Tc + 1], Tc - n_ctx, torch.arange(Tc - L, Tc + 1))  # (B, L + 1, K, d)
    errs, weights = [], []
    for b in range(4):
        for j in dyn[b].tolist():
            p = Tc - L + j
            m1 = rnn.step(ms[b, j][None], x[b, p + 1][None])
            m2 = rnn.step(m1, x[b, p + 2][None])
            errs.append(((m1 - ms[b, j + 1]).pow(2).mean() + (m2 - ms[b, j + 2]).pow(2).mean()) / 2)
            weights.append(float(p + 1 >= Tc - int(n_ctx[b])))  # a real label: its next input is real
    w = torch.tensor(weights)
    want = (torch.stack(errs) * w).sum() / w.sum()
    torch.testing.assert_close(loss, want)
    want.backward()
    for a, b in zip(got, [p.grad for p in rnn.updater.parameters()]):
        torch.testing.assert_close(a, b)
    # every label by default: those whose chain ends within the window (L - S + 1 of them)
    full, _ = objective(x, y, n_ctx, torch.arange(4))
    chosen, _ = objective(x, y, n_ctx, torch.arange(4), None, torch.arange(L - S + 1).expand(4, -1))
    torch.testing.assert_close(full, chosen)


def test_dyn_noise_steps_from_a_noisy_memory_onto_the_clean_next_one():
    """dyn_noise: L_dyn's step reads m_t + dyn_noise * rms(m_t) * noise (each transition's own rms) and regresses
    the clean m_{t+1}; without noise (the eval's call) or at dyn_noise 0 the objective is the clean one."""
    teacher, rnn = causal_models()
    x, y, n_ctx, idx = batch()
    L, K, d = 4, teacher.cfg.n_mem, teacher.cfg.d_model
    noise = torch.randn(4, L, K, d, generator=torch.Generator().manual_seed(3))
    noisy = SMTObjective(teacher, rnn, w_dec=0.0, w_unif=0.0, labels_per_window=L, dyn_noise=0.5)
    clean = SMTObjective(teacher, rnn, w_dec=0.0, w_unif=0.0, labels_per_window=L)
    _, t_noisy = noisy(x, y, n_ctx, idx, noise=noise)
    for terms in (noisy(x, y, n_ctx, idx)[1], clean(x, y, n_ctx, idx, noise=noise)[1]):
        torch.testing.assert_close(terms, clean(x, y, n_ctx, idx)[1])
    pos = torch.arange(8 - L, 8 + 1)  # memories of the pasts up to x_4 .. x_8
    with torch.no_grad():
        ms = teacher.window_memories(x[:, :9], 8 - n_ctx, pos.expand(4, -1))
        m_t, m_next = ms[:, :-1], ms[:, 1:]
        m_in = m_t + 0.5 * m_t.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt() * noise
        err = (rnn.step(m_in.flatten(0, 1), x[:, pos[1:]].flatten()).view_as(m_next) - m_next).pow(2).mean((-2, -1))
    real = pos[None, 1:] >= 8 - n_ctx[:, None]  # transitions whose input x_{p+1} is real (label_valid)
    torch.testing.assert_close(t_noisy[1], err[real].mean())
    assert t_noisy[1] > clean(x, y, n_ctx, idx)[1][1]
