"""CUDA-only checks, skipped without a GPU (scripts/gpu_check.sh runs them on a lent machine): a bf16 autocast SMT
step is finite for both encoders, the compiled objective equals the eager one, and the many-label memories equal
the per-window ones under CUDA's attention kernels."""
import pytest
import torch

from conftest import per_window, tiny_models
from encoder import SMTObjective, uniformity_indices

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
CASES = [('reference', 1), ('causal', 1), ('causal', 8)]


def setup(encoder_type, n_labels, B=6, Tc=24, Tf=4, seed=0):
    teacher, rnn = tiny_models(context_len=Tc, future_len=Tf)
    teacher.cfg.encoder_type = encoder_type
    teacher.cuda(), rnn.cuda()
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, 16, (B, Tc + Tf + 1), generator=g)
    n_ctx = torch.tensor([Tc, Tc, 10, 3, 1, 0])[:B]
    idx = uniformity_indices(n_ctx, n_labels, teacher.cfg.n_mem, 512, g)
    args = [t.cuda() for t in (stream[:, :-1], stream[:, 1:], n_ctx, idx)]
    return SMTObjective(teacher, rnn, labels_per_window=n_labels), args


@pytest.fixture(autouse=True)
def exact_fp32():
    """Plain fp32 matmuls for the comparisons (the trainers turn TF32 on)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize('encoder_type, n_labels', CASES)
def test_bf16_autocast_step_is_finite(encoder_type, n_labels):
    objective, args = setup(encoder_type, n_labels)
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-3, fused=True)
    for _ in range(3):
        with torch.autocast('cuda', dtype=torch.bfloat16):
            loss, terms = objective(*args)
        loss.backward()
        grads = [p.grad for p in objective.parameters() if p.grad is not None]
        assert torch.isfinite(terms).all() and all(torch.isfinite(g).all() for g in grads)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize('encoder_type, n_labels', CASES)
def test_compiled_matches_eager(encoder_type, n_labels):
    objective, args = setup(encoder_type, n_labels)
    eager, eager_terms = objective(*args)
    eager.backward()
    want = [p.grad.clone() for p in objective.teacher.encoder.parameters()]
    objective.zero_grad()
    compiled, terms = torch.compile(objective)(*args)
    compiled.backward()
    torch.testing.assert_close(terms, eager_terms, atol=1e-4, rtol=1e-4)
    for a, b in zip([p.grad for p in objective.teacher.encoder.parameters()], want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_labels_equal_per_window_on_cuda():
    objective, (x, _, n_ctx, _) = setup('causal', 8)
    teacher, Tc = objective.teacher, 24
    start = Tc - n_ctx
    got = teacher.encode_labels_raw(x[:, :Tc + 1], start, 9)
    for j, p in enumerate(range(Tc + 1 - 9, Tc + 1)):
        torch.testing.assert_close(got[:, j], per_window(teacher, x, start, p), atol=1e-4, rtol=1e-4)
