"""Long memory: what a teacher's memory reaches, stated by each config and checked here (a token just inside the reach
changes the memory, one just outside a bounded reach does not); whole-episode and whole-image windows; the memories
the encoder computes for a subset of labels (memory_plan) and the labels the decoder reads (future_targets)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import causal_models, encode
import configurator
from data.stream import TokenStream
from encoder import (SMTObjective, Teacher, TeacherConfig, draw_labels, future_targets, memory_plan, rope_len,
                     uniformity_indices)

# each config's teacher and the reach its comment states: tokens (bytes, pixels, episode tokens) it must hold
STATED = {'': 64, 'config/shakespeare_long.py': 256, 'config/fashion_mnist.py': 784,
          'config/shakespeare_smt_gru.py': 64, 'config/probe.py': 64, 'config/probe_retrieval.py': 64,
          'config/probe_copy.py': 64}


def config_teacher(path):
    """The config's teacher ('': train_smt.py's defaults) at a tiny width: the reach depends on its layers, band
    and context only."""
    cfg = configurator.load(configurator.defaults_of('train_smt.py'), [path] if path else [])
    Tc, band = cfg['context_len'], cfg['band']
    torch.manual_seed(0)
    return Teacher(TeacherConfig(vocab_size=16, n_mem=2, d_model=16, n_head=2, encoder_type=cfg['encoder_type'],
                                 n_enc_layer=cfg['n_enc_layer'], n_dec_layer=1, context_len=Tc, future_len=2, band=band,
                                 token_shift=cfg['token_shift'], max_pos=rope_len(Tc, 2, 2))), cfg


@pytest.mark.parametrize('path', sorted(STATED))
def test_each_config_reaches_what_it_states(path):
    teacher, cfg = config_teacher(path)
    R = teacher.reach()
    assert R >= STATED[path], (path, R)
    T = R + 8 if cfg['band'] else min(R, cfg['context_len'] - 1)  # a stream longer than the reach, or one episode
    x = torch.randint(0, 16, (1, T), generator=torch.Generator().manual_seed(1))
    last = torch.tensor([T - 1])
    with torch.no_grad():
        m = teacher.memory(x, last)

        def changed(i):  # the memory at the last token after token i changes
            x2 = x.clone()
            x2[0, i] = (x2[0, i] + 1) % 16
            return not torch.allclose(teacher.memory(x2, last), m, atol=1e-6)
        assert changed(T - R if cfg['band'] else 0)  # the oldest token inside the reach (an episode: its first)
        if cfg['band']:
            assert not changed(T - R - 1)  # just outside a bounded reach


def test_whole_image_windows():
    """An image stream's many-label windows are images whole, from the first pixel; the empty past is label 0 when
    context_len = pixels + 1, and nothing after the image's last pixel is a target."""
    S = 12
    images = np.arange(5 * S, dtype=np.uint16) % 200
    data = TokenStream(images, images, {'vocab_size': 256, 'image_shape': [3, 4]})
    assert data.episode_len == S
    x, y, n_ctx = data.smt_windows('train', 6, S + 1, 3, 0.0, torch.Generator().manual_seed(0), S + 1)
    assert x.shape == (6, S + 4) and (n_ctx == S).all()
    first = x[:, 1]
    assert (first % S == 0).all()  # every window's real past starts at an image's first pixel
    torch.testing.assert_close(x[:, 1:S + 1], first[:, None] + torch.arange(S))
    torch.testing.assert_close(y[:, 1:S], x[:, 2:S + 1])  # targets: the next pixel within the image
    assert (y[:, S:] == -1).all() and (y[:, 0] == -1).all()  # none after the image, none from the padding
    xa, ya = data.aligned('val', 4, torch.Generator().manual_seed(1))
    assert (xa[:, 0] % S == 0).all() and (ya[:, -1] == -1).all() and (ya[:, :-1] == xa[:, 1:]).all()
    # one label per window: a random window of the stream, as before
    xr, _, _ = data.smt_windows('train', 64, 5, 2, 0.0, torch.Generator().manual_seed(2))
    assert (xr[:, 0] % S != 0).any()


def test_memory_of_episodes_from_one_pass():
    """Without a band, memories of presents within the first Tc tokens all start at the sequence's first token:
    Teacher.memory takes them from one shared pass, each row its own presents, equal to the per-window encoder."""
    teacher, _ = causal_models(n_enc_layer=2, context_len=20)
    assert teacher.shared_passes(20) and not teacher.shared_passes(21)
    torch.manual_seed(6)
    x = torch.randint(0, 16, (3, 20))
    pos = torch.tensor([[19, -1, 4], [0, 7, 7], [12, 3, 18]])
    got = teacher.memory(x, pos)
    for b in range(3):
        for j, p in enumerate(pos[b].tolist()):
            want = encode(teacher, F.pad(x[b:b + 1, :p + 1], (20 - p - 1, 0)), torch.tensor([p + 1]))
            torch.testing.assert_close(got[b, j], want[0], atol=2e-5, rtol=1e-5)


def test_memory_plan():
    dec = torch.tensor([[0, 5], [2, 3]])
    dyn = torch.tensor([[1, 2], [3, 6]])
    plan = memory_plan(9, 2, dec, dyn)  # 2 + 2 * 2 = 6 < 10 memories
    assert plan.tolist() == [[0, 1, 2, 3, 5, 5], [2, 3, 4, 6, 7, 7]]
    assert memory_plan(4, 2, dec[:, :1] % 4, dyn % 3).tolist() == [[0, 1, 2, 3, 4]] * 2  # 5 >= 5: every one
    assert memory_plan(9, 2, None, dyn).shape == (2, 10)
    # dyn_steps = 2: each regressed label's chain reads dyn .. dyn + 2; 2 + 3 * 2 = 8 < 10 memories
    assert memory_plan(9, 2, dec, dyn, dyn_steps=2).tolist() == [[0, 1, 2, 3, 4, 5, 5, 5], [2, 3, 4, 5, 6, 7, 8, 8]]
    n_ctx = torch.tensor([9, 4])
    idx = uniformity_indices(n_ctx, 9, 1, 100, torch.Generator().manual_seed(0), plan)
    # the distinct labels the plan computed that are real: row 0 all five (slot 5 repeats slot 4), row 1 those with a
    # real past (j >= 9 - 1 - 4 = 4: memories 4, 6, 7 in slots 2, 3, 4 of row 1, flat 6 + 2 ..)
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4, 8, 9, 10]


def test_planned_memories_give_the_same_losses():
    """With a plan the encoder computes only the memories the decoder's and the RNN's labels read; the decoder,
    regression and rnn_ce terms are those of every memory computed, and the uniformity term covers real labels."""
    teacher, rnn = causal_models(future_len=3, context_len=12)
    g = torch.Generator().manual_seed(0)
    B, Tc, L = 4, 12, 10
    stream = torch.randint(0, 16, (B, Tc + 4), generator=g)
    x, y, n_ctx = stream[:, :-1], stream[:, 1:], torch.tensor([12, 6, 3, 0])
    objective = SMTObjective(teacher, rnn, labels_per_window=L)
    dec = torch.stack([torch.randperm(L, generator=g)[:2].sort().values for _ in range(B)])
    dyn = torch.stack([torch.randperm(L, generator=g)[:3].sort().values for _ in range(B)])
    plan = memory_plan(L, B, dec, dyn)
    assert plan.shape == (B, 8)
    calls = []
    teacher.encoder.blocks[0].heads = (lambda f: lambda x, c, s: calls.append(x.size(1)) or f(x, c, s))(
        teacher.encoder.blocks[0].heads)
    _, full = objective(x, y, n_ctx, uniformity_indices(n_ctx, L, 3, 512, g), dec, dyn)
    _, planned = objective(x, y, n_ctx, uniformity_indices(n_ctx, L, 3, 512, g, plan), dec, dyn, plan)
    assert calls == [Tc + 1 + (L + 1) * 3, Tc + 1 + 8 * 3]  # context + K register tokens per memory computed
    torch.testing.assert_close(planned[[0, 1, 3, 4]], full[[0, 1, 3, 4]], atol=2e-5, rtol=1e-5)
    assert torch.isfinite(planned[2]) and planned[2] < 0


def test_decoder_reads_labels_with_targets_first():
    """future_targets: a label has a target in y_p .. y_{p+Tf-1}; on an episode with one target at its end only
    the last Tf labels have one, and train_smt.py draws the decoded labels among them first."""
    Tc, L, Tf = 10, 10, 3
    y = torch.full((2, Tc + Tf), -1)
    y[0, 8] = 4  # one target, after x_8
    y[1] = 1  # every position
    has = future_targets(y, Tc, L, Tf)
    assert has[0].nonzero()[:, 0].tolist() == [6, 7, 8] and has[1].all()
    g = torch.Generator().manual_seed(0)
    for k in (2, 3, 5):
        idx = draw_labels(k, has, g)
        assert idx.shape == (2, k) and (idx.diff(1) > 0).all()
        assert set(idx[0].tolist()) <= {6, 7, 8} or set(idx[0].tolist()) >= {6, 7, 8}  # preferred ones first
    assert draw_labels(0, has, g) is None
