# DMT on the RNN of the default SMT run (run `python train_smt.py` first): the teacher is frozen, the RNN rolls out
# on its own states and learns from teacher labels every k steps. Architecture and data come from the checkpoint.
init_from = 'out-shakespeare/ckpt.pt'
out_dir = 'out-shakespeare-dmt'
max_iters = 0  # no further SMT steps
dmt_iters = 200
dmt_batch_size = 16
dmt_rollout_len = 64
dmt_label_every = 8
dmt_learning_rate = 1e-4
eval_interval = 50
log_interval = 10
eval_seqs = 16
eval_seq_len = 256
