# The tests' base config for train_dmt.py (iteration schedule, every label step), independent of its CPU defaults.
init_from = 'out-shakespeare/ckpt.pt'
out_dir = 'out-shakespeare-dmt'
overwrite = True  # a second run starts DMT again from out-shakespeare/ckpt.pt, replacing out-shakespeare-dmt/ckpt.pt
max_iters = 200
max_time = 0.0
batch_size = 16
rollout_len = 64
label_every = 8
dyn_labels = 0
learning_rate = 1e-4
eval_interval = 50
log_interval = 10
eval_seqs = 16
eval_seq_len = 256
