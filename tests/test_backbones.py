"""Every updater backbone: its fast whole-sequence path equals repeated `step` (values and BPTT gradients), its
states stay in its state space, and the defining difference of SMT and BPTT: under BPTT the loss at the last
position reaches the first input, under SMT it does not."""
import pytest
import torch
import torch.nn.functional as F

from conftest import encode, tiny_models
from encoder import SMTObjective
from model import BACKBONES, RNN, RNNConfig, cell_memory_tokens, linear_scan, to_state


def models(backbone, n_rnn_layer=2, readout='decoder'):
    """A tiny teacher and RNN; two updater layers, so stacked cells hand states from layer to layer."""
    teacher, _ = tiny_models(backbone=backbone)
    torch.manual_seed(0)
    rnn = RNN(RNNConfig(vocab_size=16, n_mem=3, d_model=16, n_head=2, backbone=backbone, n_rnn_layer=n_rnn_layer,
                        n_dec_layer=1, readout=readout, max_pos=64))
    return teacher, rnn


def step_loop(rnn, m, xs):
    ms = []
    for t in range(xs.size(1)):
        m = rnn.step(m, xs[:, t])
        ms.append(m)
    return torch.stack(ms, dim=1)


# transformer and mlp have no fast path: their run is the step loop itself
@pytest.mark.parametrize('backbone', [b for b in BACKBONES if hasattr(BACKBONES[b], 'run')])
def test_fast_path_equals_repeated_step(backbone):
    _, rnn = models(backbone)
    g = torch.Generator().manual_seed(1)
    xs = torch.randint(0, 16, (3, 37), generator=g)  # 37: more than two scan chunks, not a multiple of one
    m = to_state(torch.randn(3, 3, 16, generator=g), backbone)  # not the initial memory: every row differs
    fast, slow = rnn.run(m, xs), step_loop(rnn, m, xs)
    torch.testing.assert_close(fast, slow, atol=2e-6, rtol=1e-5)
    # the BPTT gradient through the fast path is the step loop's, for every parameter (m0 included)
    grads = []
    for unroll in (lambda m0: rnn.run(m0, xs), lambda m0: step_loop(rnn, m0, xs)):
        rnn.zero_grad()
        ms = unroll(rnn.initial_memory(3))
        F.cross_entropy(rnn.logits(ms).flatten(0, 1), xs.roll(-1, 1).flatten()).backward()
        grads.append({n: p.grad.clone() for n, p in rnn.named_parameters()})
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-4, msg=n)


@pytest.mark.parametrize('readout', ['linear', 'decoder'])
@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_run_logits_equals_the_step_loop(backbone, readout):
    """run_logits, what BPTT and evaluation call (with a linear readout a cell computes only its h at every step, the
    LSTM no c): the logits after every input and the last memory equal the step loop's, and so do the BPTT
    gradients of every parameter through both (the last memory is what a stateful window carries on). The last
    memory is run's last state: to the bit where both come from one computation, and for the LSTM's c (cuDNN's c_n
    against the scan's) to rounding."""
    _, rnn = models(backbone, readout=readout)
    g = torch.Generator().manual_seed(3)
    xs = torch.randint(0, 16, (3, 37), generator=g)
    m = to_state(torch.randn(3, 3, 16, generator=g), backbone)
    w = torch.randn(3, 3, 16, generator=g)  # a random loss on the last memory

    def step_loop_logits(m0):
        ms = step_loop(rnn, m0, xs)
        return rnn.logits(ms), ms[:, -1]
    with torch.no_grad():
        (fast, last), (slow, want) = rnn.run_logits(m, xs), step_loop_logits(m)
        torch.testing.assert_close(fast, slow, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(last, want, atol=2e-6, rtol=1e-5)
        run_last = rnn.run(m, xs)[:, -1]
    if backbone == 'lstm' and readout == 'linear':
        h = m[0].numel() // 2
        assert torch.equal(last.flatten(1)[:, :h], run_last.flatten(1)[:, :h])
        torch.testing.assert_close(last, run_last, atol=2e-6, rtol=1e-5)
    else:
        assert torch.equal(last, run_last)
    grads = []
    for unroll in (lambda m0: rnn.run_logits(m0, xs), step_loop_logits):
        rnn.zero_grad()
        logits, last = unroll(rnn.initial_memory(3))
        (F.cross_entropy(logits.flatten(0, 1), xs.roll(-1, 1).flatten()) + (w * last).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in rnn.named_parameters()})
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-4, msg=n)


def test_lstm_forget_gate_bias_starts_at_one():
    """Every LSTM layer's forget gate starts at bias 1 (b_ih + b_hh, as PyTorch adds them), the other gates at
    nn.LSTM's own init: c keeps its past from the first step."""
    _, rnn = models('lstm')
    for cell in rnn.updater.cells:
        H, b = cell.hidden_size, cell.bias_ih_l0 + cell.bias_hh_l0
        assert torch.equal(b[H:2 * H], torch.ones(H))
        assert (b[:H] != 1).all() and (b[2 * H:] != 1).all()


def test_hidden_sizes_a_cell_as_users_do():
    """One layer of 512: the LSTM's h and c (1024 numbers) are the memory, 16 tokens of a 64-wide embedding; a GRU
    holds its h alone; each layer's cell is 512 wide. A backbone that is no cell, or a d_model that does not divide
    the states into whole tokens, is refused with the fix."""
    assert cell_memory_tokens('lstm', 512, 1, 64) == 16 and cell_memory_tokens('gru', 512, 2, 64) == 16
    for backbone, cell in (('lstm', torch.nn.LSTM), ('gru', torch.nn.GRU)):
        rnn = RNN(RNNConfig(backbone=backbone, d_model=64, n_mem=cell_memory_tokens(backbone, 512, 1, 64),
                            n_rnn_layer=1, readout='linear'))
        assert [(type(c), c.input_size, c.hidden_size) for c in rnn.updater.cells] == [(cell, 64, 512)]
        assert rnn.readout.in_features == 512
    with pytest.raises(ValueError, match='sizes a recurrent cell'):
        cell_memory_tokens('transformer', 512, 1, 64)
    with pytest.raises(ValueError, match='use a d_model that divides 1000'):
        cell_memory_tokens('lstm', 500, 1, 64)


@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_states_stay_in_the_state_space(backbone):
    teacher, rnn = models(backbone)
    m_enc = encode(teacher, torch.randint(0, 16, (4, 8)), torch.tensor([8, 5, 1, 0]))
    states = [m_enc, rnn.initial_memory(2), rnn.run(m_enc, torch.randint(0, 16, (4, 20)))[:, -1]]
    for m in states:
        assert torch.isfinite(m).all()
        if backbone in ('transformer', 'mlp'):  # RMS-normed per memory token
            torch.testing.assert_close(m.pow(2).mean(-1), torch.ones(m.shape[:-1]), atol=1e-4, rtol=0)
        else:  # squashed: h (all of the memory, or the LSTM's first half) in (-1, 1)
            h = m.flatten(-2)[..., :m[0].numel() // 2] if backbone == 'lstm' else m
            assert h.abs().max() < 1


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        RNN(RNNConfig(backbone='rwkv'))
    assert all(b in str(e.value) for b in BACKBONES)
    with pytest.raises(ValueError, match='divide'):
        RNN(RNNConfig(backbone='lstm', n_mem=3, d_model=5, n_rnn_layer=2))


def test_linear_scan_is_stable_at_extreme_gates():
    g = torch.Generator().manual_seed(0)
    log_a = torch.cat([torch.full((2, 40, 3), -30.0), torch.full((2, 40, 3), -1e-7)], dim=1)  # a ~ 0, then a ~ 1
    b = torch.randn(2, 80, 3, generator=g)
    h0 = torch.randn(2, 3, generator=g)
    h, want = h0, []
    for t in range(80):
        h = log_a[:, t].exp() * h + b[:, t]
        want.append(h)
    torch.testing.assert_close(linear_scan(log_a, b, h0), torch.stack(want, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_bptt_reaches_the_first_input_and_smt_does_not(backbone):
    """Token 15 stands only at position 0. Under BPTT the loss at the last position reaches its embedding through
    every step; under SMT the RNN takes one step from a teacher memory, so its first input gets no gradient."""
    teacher, rnn = models(backbone)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 15, (4, 12), generator=g)
    x[:, 0] = 15
    rnn.zero_grad()
    last = rnn.logits(rnn.run(rnn.initial_memory(4), x)[:, -1])
    F.cross_entropy(last, torch.randint(0, 16, (4,), generator=g)).backward()
    assert rnn.wte.weight.grad[15].abs().sum() > 0
    assert rnn.m0.grad.abs().sum() > 0  # and it reaches the initial memory
    # SMT on the same window (Tc = 8, Tf = 3): the RNN steps from m_t on x[:, 8] only
    rnn.zero_grad()
    loss, _ = SMTObjective(teacher, rnn)(x[:, :11], x[:, 1:12], torch.tensor([8, 8, 8, 8]), torch.randperm(12))
    loss.backward()
    assert rnn.wte.weight.grad[x[:, 8]].abs().sum() > 0  # the transition's input is trained
    assert rnn.wte.weight.grad[15].abs().sum() == 0  # the first input is not reached
    assert teacher.wte.weight.grad[15].abs().sum() > 0  # (it reaches the teacher, which reads the whole past)


@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_parallel_rollout_equals_run(backbone):
    """RNN.rollout's sweeps give run's states: from any guess within T sweeps (sweep k makes state k-1 exact), from
    the exact states in one sweep, and a truncated solve has its first max_sweeps states exact."""
    _, rnn = models(backbone)
    g = torch.Generator().manual_seed(2)
    xs = torch.randint(0, 16, (3, 20), generator=g)
    m = to_state(torch.randn(3, 3, 16, generator=g), backbone)
    want = rnn.run(m, xs).detach()
    guess = to_state(torch.randn(3, 20, 3, 16, generator=g), backbone)
    got, sweeps = rnn.rollout(m, xs, guess, tol=0.0)
    assert 1 <= sweeps <= 20
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    assert not torch.equal(guess, got)  # the guess is not written over
    _, sweeps = rnn.rollout(m, xs, want, tol=1e-5)
    assert sweeps == 1
    part, sweeps = rnn.rollout(m, xs, guess, tol=0.0, max_sweeps=5)
    assert sweeps == 5
    torch.testing.assert_close(part[:, :5], want[:, :5], atol=2e-5, rtol=1e-4)
    assert (part[:, 5:] - want[:, 5:]).abs().max() > 1e-3  # the rest still carries the guess's error
