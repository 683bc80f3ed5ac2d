# DMT on the paper's reference LM run (python train_smt.py config/lm.py first): rollouts of 256 steps, a teacher
# label every 16th, 2000 steps at 3e-5.
init_from = 'out-lm/ckpt.pt'
out_dir = 'out-lm-dmt'
overwrite = False
eval_interval = 200
log_interval = 10
batch_size = 32
rollout_len = 256
label_every = 16
dyn_labels = 0
learning_rate = 3e-5
max_iters = 2000
max_time = 0.0
eval_seqs = 32
eval_seq_len = 1024
dtype = 'auto'
