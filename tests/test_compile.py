"""torch.compile on the CPU: the SMT step and the RNN step compile as one graph each (fullgraph=True raises on any
graph break) for every backbone, and the compiled step equals the eager one, loss and gradients. The default run uses
the aot_eager backend (Dynamo's capture and AOTAutograd's joint graph, in seconds); the slow-marked test runs
Inductor's generated code (about 20-40 s a backbone on 2 cores). Also: the FLOPs formula behind MFU against
torch's FlopCounterMode."""
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from conftest import causal_models, tiny_models
from encoder import (DMTObjective, SMTObjective, dmt_flops_per_rollout, encoder_flops, memory_plan,
                     smt_flops_per_window, uniformity_indices)
from model import BACKBONES, compile_regions

TOL = dict(atol=1e-5, rtol=1e-4)  # fp32; aot_eager reorders nothing, Inductor fuses (reassociated sums)


def smt_case(backbone, encoder_type='causal', n_labels=8, subsets=True, B=6, Tc=24, Tf=4, seed=0, vocab_size=16,
             token_shift=False, w_present=0.0, w_context_lm=0.0):
    """An SMT objective and one batch of its inputs, short pasts included; with subsets, the decoder reads 3 and the
    RNN regresses 4 of each window's labels, as train_smt.py's decoded_labels / dyn_labels draw them."""
    teacher, rnn = (causal_models if encoder_type == 'causal' else tiny_models)(
        backbone=backbone, context_len=Tc, future_len=Tf, vocab_size=vocab_size, token_shift=token_shift,
        present_head=w_present > 0, context_head=w_context_lm > 0)
    rnn.readout.requires_grad_(False)
    objective = SMTObjective(teacher, rnn, labels_per_window=n_labels, w_present=w_present, w_context_lm=w_context_lm)
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, 16, (B, Tc + Tf + 1), generator=g)
    n_ctx = torch.tensor([Tc, Tc, 10, 3, 1, 0])[:B]
    args = [stream[:, :-1], stream[:, 1:], n_ctx, uniformity_indices(n_ctx, n_labels, teacher.cfg.n_mem, 512, g)]
    if subsets:
        args += [torch.stack([torch.randperm(n_labels, generator=g)[:k] for _ in range(B)]) for k in (3, 4)]
    return objective, args


def with_plan(objective, args, n_dec, n_dyn):
    """args with the decoder's and the RNN's subsets cut to n_dec and n_dyn labels, and the memories the encoder
    computes planned for them (memory_plan), as train_smt.py passes them."""
    n_labels, K = objective.labels, objective.teacher.cfg.n_mem
    dec, dyn = args[4][:, :n_dec], args[5][:, :n_dyn]
    plan = memory_plan(n_labels, dec.size(0), dec, dyn)
    unif = uniformity_indices(args[2], n_labels, K, 512, torch.Generator().manual_seed(1), plan)
    return args[:3] + [unif, dec, dyn, plan]


def loss_and_grads(fn, module, args):
    module.zero_grad(set_to_none=True)
    loss, terms = fn(*args)
    loss.backward()
    return loss.detach(), terms, {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def assert_compiled_equals_eager(objective, args, backend):
    eager = loss_and_grads(objective, objective, args)
    torch._dynamo.reset()
    compiled = loss_and_grads(torch.compile(objective, backend=backend, fullgraph=True), objective, args)
    torch.testing.assert_close(compiled[0], eager[0], **TOL)
    torch.testing.assert_close(compiled[1], eager[1], **TOL)
    assert compiled[2].keys() == eager[2].keys() and len(eager[2]) > 10  # the teacher's and the RNN's parameters
    for name in eager[2]:
        torch.testing.assert_close(compiled[2][name], eager[2][name], **TOL, msg=name)


@pytest.mark.parametrize('backbone', BACKBONES)
def test_smt_step_compiles_without_graph_breaks_and_equals_eager(backbone):
    assert_compiled_equals_eager(*smt_case(backbone), backend='aot_eager')


def test_regional_compilation_equals_eager():
    """compile='regional': every region (blocks, register attention, the updater) compiles as one graph, and the
    step equals the eager one. (A recurrent updater's region is its step, compiled whole by the RNN-step test below.)"""
    objective, args = smt_case('transformer')
    eager = loss_and_grads(objective, objective, args)
    torch._dynamo.reset()
    compile_regions(objective, backend='aot_eager', fullgraph=True)
    compiled = loss_and_grads(objective, objective, args)
    compiled_methods = [m for m in objective.modules() for name in getattr(m, 'regions', ()) if name in vars(m)]
    assert len(compiled_methods) == sum(len(getattr(m, 'regions', ())) for m in objective.modules()) > 3
    for got, want in zip(compiled, eager):
        torch.testing.assert_close(got, want, **TOL)


def test_reference_smt_step_compiles_without_graph_breaks():
    assert_compiled_equals_eager(*smt_case('transformer', 'reference', n_labels=1, subsets=False), backend='aot_eager')


@pytest.mark.parametrize('backbone', BACKBONES)
def test_rnn_step_and_readout_compile_without_graph_breaks(backbone):
    """What train_bptt.py and train_dmt.py compile (RNN.compile_parts): one updater step and the readout."""
    _, rnn = tiny_models(backbone=backbone)
    m, x = torch.randn(5, 3, 16), torch.randint(0, 16, (5,))
    m.requires_grad_(True)
    want_m, want_logits = rnn.step(m, x), rnn.logits(m)
    torch._dynamo.reset()
    step, logits = (torch.compile(f, backend='aot_eager', fullgraph=True) for f in (rnn.step, rnn.logits))
    torch.testing.assert_close(step(m, x), want_m, **TOL)
    torch.testing.assert_close(logits(m), want_logits, **TOL)


@pytest.mark.slow
@pytest.mark.parametrize('backbone', BACKBONES)
def test_inductor_smt_step_equals_eager(backbone):
    assert_compiled_equals_eager(*smt_case(backbone), backend='inductor')


def counted_flops(objective, args):
    """FLOPs of one forward + backward by FlopCounterMode, attention through the math kernel (matrix products that
    the counter sees; it computes every query-key pair, masked ones too)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        objective(*args)[0].backward()
    return counter.get_total_flops()


@pytest.mark.parametrize('backbone, token_shift', [('transformer', False), ('mlp', False), ('transformer', True)])
def test_flops_formula_matches_the_counter_for_the_reference_encoder(backbone, token_shift):
    """Every attention of the reference step reads every pair, so the formula must match the counter (within 0.5%:
    the formula leaves out a few vector-sized products); a vocabulary of 500 makes the heads count."""
    objective, args = smt_case(backbone, 'reference', n_labels=1, subsets=False, Tc=16, vocab_size=500,
                               token_shift=token_shift)
    B = args[0].size(0)
    formula = smt_flops_per_window(objective.teacher.cfg, objective.rnn.step_flops()) * B
    assert counted_flops(objective, args) == pytest.approx(formula, rel=5e-3)


def test_flops_formula_for_many_labels():
    """The causal encoder's formula counts unmasked query-key pairs only, so the counter (which also counts the
    masked ones the math kernel computes) may exceed it, here by under 15%; what each decoded label and each regressed
    transition adds must match the counter exactly (the encoder's share is the same in both runs)."""
    def both(n_dec, n_dyn):
        objective, args = smt_case('transformer', Tc=16, vocab_size=500)
        args = with_plan(objective, args, n_dec, n_dyn)
        formula = smt_flops_per_window(objective.teacher.cfg, objective.rnn.step_flops(), 8, n_dec, n_dyn)
        return formula * args[0].size(0), counted_flops(objective, args)

    # D + 2R >= L + 1 = 9: the encoder computes every memory in all three, so only the decoder and the RNN differ
    (f34, c34), (f14, c14), (f33, c33) = both(3, 4), both(1, 4), both(3, 3)
    assert f34 <= c34 < 1.15 * f34
    assert c34 - c14 == pytest.approx(f34 - f14, rel=5e-3)  # two decoded labels a window
    assert c34 - c33 == pytest.approx(f34 - f33, rel=5e-3)  # one regressed transition (and its rnn_ce) a window
    # D + 2R = 5 < 9: the encoder computes 5 memories, not 9, and both counts fall by more than the decoder's share
    f12, c12 = both(1, 2)
    assert f12 <= c12 < 1.15 * f12
    assert c14 - c12 > 1.5 * (c34 - c33) and f14 - f12 > 1.5 * (f34 - f33)



@pytest.mark.parametrize('head', ['w_present', 'w_context_lm'])
def test_flops_formula_counts_the_heads(head):
    """w_present's head reads every memory the encoder computes (memory_plan), w_context_lm's every context token of
    the window: what each adds must match the counter."""
    def both(w):
        objective, args = smt_case('transformer', Tc=16, vocab_size=500, **{head: w})
        args = with_plan(objective, args, 1, 2)
        formula = smt_flops_per_window(objective.teacher.cfg, objective.rnn.step_flops(), 8, 1, 2)
        return formula * args[0].size(0), counted_flops(objective, args)

    (f0, c0), (f1, c1) = both(0.0), both(1.0)
    assert f1 > f0 and c1 - c0 == pytest.approx(f1 - f0, rel=5e-3)


def test_flops_formula_counts_dyn_steps():
    """dyn_steps = 2: two RNN steps a regressed label; with every memory computed (no plan, so the encoder's share
    is the same) what the second step adds must match the counter."""
    def both(S):
        objective, args = smt_case('transformer', Tc=16, vocab_size=500)
        objective.dyn_steps = S
        args = args[:5] + [args[5][:, :2].clamp(max=6)]
        formula = smt_flops_per_window(objective.teacher.cfg, objective.rnn.step_flops(), 8, 3, 2, planned=False,
                                       dyn_steps=S)
        return formula * args[0].size(0), counted_flops(objective, args)

    (f1, c1), (f2, c2) = both(1), both(2)
    assert f2 > f1 and c2 - c1 == pytest.approx(f2 - f1, rel=5e-3)


@pytest.mark.parametrize('backbone', ['transformer', 'mlp'])
def test_dmt_flops_formula_matches_the_counter(backbone):
    """DMT's step without its teacher pass (encoder_flops, checked above): the visit of Td forward steps, the labelled
    transitions stepped again with the graph, the readout at those steps: the counter's count must match the
    formula's (within 0.5%, as the reference encoder's)."""
    teacher, rnn = tiny_models(backbone=backbone, vocab_size=500)
    B, Td, n = 4, 12, 3
    x, y = torch.randint(0, 500, (B, Td)), torch.randint(0, 500, (B, Td))
    steps = torch.tensor([2, 5, 11])
    with torch.no_grad():
        labels = rnn.run(rnn.initial_memory(B), x)[:, steps] + 0.1
    args = (rnn.initial_memory(B).detach(), x, y, steps, labels)
    counted = counted_flops(DMTObjective(rnn, ce_at_labels=True), args)
    formula = B * (dmt_flops_per_rollout(teacher.cfg, rnn.step_flops(), rnn.readout_flops(), 8, Td, n, Td, n, n)
                   - encoder_flops(teacher.cfg, 8 + Td, n + 1) / 3)
    assert counted == pytest.approx(formula, rel=5e-3)
