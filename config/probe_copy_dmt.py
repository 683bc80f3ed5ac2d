# DMT through time on copy at L = 64 (python train_smt.py config/probe_copy.py first): config/probe_dmt.py's whole
# episodes from the RNN's initial memory, a teacher label at every step, with the paper's optional backpropagation
# through the rollout and the readout's CE through the states. The detached rollout does not bring back the string
# the RNN's own 64 steps lose; through time it does (docs/results.md, section 2.6). The teacher's labels kept (w_mse).
init_from = 'out-probe-copy/ckpt.pt'
out_dir = 'out-probe-copy-dmt'
batch_size = 32
rollout_len = 1024  # whole episodes
dyn_labels = 0  # every label step
bptt = True
ce_through_state = True
learning_rate = 2e-3  # the one rate measured at 65% (1e-3 reached 44% from another SMT run: results 2.6)
max_time = 480.0
eval_interval = 100
log_interval = 10
eval_seqs = 128
