# DMT on a probe's SMT checkpoint (python train_smt.py config/probe.py first): every rollout is a whole episode from
# the RNN's initial memory, a teacher label at every step (one causal-teacher pass labels the episode).
init_from = 'out-probe/ckpt.pt'
out_dir = 'out-probe-dmt'
batch_size = 32
rollout_len = 1024  # Td = min(this, the episode's length): episodes up to 1,024 tokens are rolled out whole (at
# the default 128 a longer episode's rollout would miss the targets at its end)
dyn_labels = 0  # every label step
learning_rate = 5e-4
max_iters = 300
max_time = 0.0  # the iterations end the run
eval_interval = 100
log_interval = 10
eval_seqs = 128
