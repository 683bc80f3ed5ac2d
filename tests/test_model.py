"""The teacher and the RNN: shapes, masks, the memory's state space, and the readout/decoder correspondence."""
import torch
import torch.nn.functional as F

from conftest import encode, tiny_models
from encoder import uniformity_loss


def test_memory_is_rms_normed_per_token():
    teacher, rnn = tiny_models()
    ctx = torch.randint(0, 16, (4, 8))
    m = encode(teacher, ctx, torch.tensor([8, 5, 1, 0]))
    assert m.shape == (4, 3, 16)
    torch.testing.assert_close(m.pow(2).mean(-1), torch.ones(4, 3), atol=1e-4, rtol=0)
    m2 = rnn.step(m, torch.tensor([1, 2, 3, 4]))
    torch.testing.assert_close(m2.pow(2).mean(-1), torch.ones(4, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(rnn.initial_memory(2).pow(2).mean(-1), torch.ones(2, 3), atol=1e-4, rtol=0)


def test_padding_is_ignored_and_short_contexts_work():
    teacher, _ = tiny_models()
    torch.manual_seed(1)
    ctx = torch.randint(0, 16, (3, 8))
    n = torch.tensor([8, 3, 0])
    other = ctx.clone()
    other[:, :5] = torch.randint(0, 16, (3, 5))  # change only positions that are padding for rows 1 and 2
    m, m_other = encode(teacher, ctx, n), encode(teacher, other, n)
    torch.testing.assert_close(m[1:], m_other[1:])  # padding does not leak into short contexts
    assert not torch.allclose(m[0], m_other[0])  # but it is real past for the full context
    # the empty past: one memory, whatever the tokens
    empty = encode(teacher, torch.randint(0, 16, (2, 8)), torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(empty[0], empty[1])
    assert torch.isfinite(empty).all()
    # a context of length 3 sees exactly its last 3 tokens: moving them in a shorter window changes nothing
    short = encode(teacher, torch.cat([torch.zeros(1, 5, dtype=torch.long), ctx[1:2, 5:]], 1), torch.tensor([3]))
    torch.testing.assert_close(short[0], m[1])


def test_decoder_is_causal_and_readout_is_its_first_slot():
    teacher, rnn = tiny_models()
    m = encode(teacher, torch.randint(0, 16, (2, 8)), torch.tensor([8, 4]))
    fut = torch.randint(0, 16, (2, 2))
    logits = teacher.decode(m, fut)
    assert logits.shape == (2, 3, 16)  # Tf = 3 predictions: y_t and the two after it
    logits_b = teacher.decode(m, torch.randint(0, 16, (2, 2)))
    torch.testing.assert_close(logits[:, 0], logits_b[:, 0])  # the next-token slot cannot see the future inputs
    rnn.readout.load_state_dict(teacher.decoder.state_dict())
    torch.testing.assert_close(rnn.logits(m), logits[:, 0])
    assert rnn.logits(m[None].expand(5, -1, -1, -1)).shape == (5, 2, 16)


def test_uniformity_loss_prefers_spread_memories():
    collapsed = torch.ones(8, 4, 16)
    spread = F.normalize(torch.randn(8, 4, 16), dim=-1)
    assert abs(uniformity_loss(collapsed).item()) < 1e-5  # log mean exp(0) = 0
    assert uniformity_loss(spread).item() < -1.0
    g = torch.Generator().manual_seed(0)
    assert torch.isfinite(uniformity_loss(torch.randn(200, 4, 16), max_tokens=64, generator=g))


def test_linear_readout_reads_the_cell_output():
    """readout='linear' (BPTT baselines): one matrix on the output state as it is, the classic head; for the LSTM that
    is the h half of the memory, so its cell state c does not reach the logits."""
    from model import RNN, RNNConfig
    rnn = RNN(RNNConfig(vocab_size=16, n_mem=2, d_model=16, n_head=2, backbone='lstm', n_rnn_layer=1, readout='linear'))
    m = rnn.run(rnn.initial_memory(3), torch.randint(0, 16, (3, 5)))[:, -1]
    other = m.clone()
    other[:, 1] += 1.0  # the second memory token: the c half of a one-layer LSTM with K=2
    torch.testing.assert_close(rnn.logits(other), rnn.logits(m))
    h = m.flatten(-2)[:, :16]
    torch.testing.assert_close(rnn.logits(m), rnn.readout(h))
    other[:, 0] += 1.0
    assert not torch.allclose(rnn.logits(other), rnn.logits(m))
