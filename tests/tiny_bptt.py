# The tests' base config for train_bptt.py (stateless, iteration schedule), independent of its CPU defaults.
out_dir = 'out-shakespeare-bptt'
init_from = 'auto'  # a second run resumes out-shakespeare-bptt/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
wandb_run_name = 'bptt-shakespeare'
eval_interval = 500
log_interval = 25
batch_size = 32
block_size = 64
stateful = False
n_mem = 4
d_model = 128
n_head = 4
n_dec_layer = 1
n_rnn_layer = 2
learning_rate = 2e-3
max_iters = 2000
max_time = 0.0
lr_decay = 'cosine'
eval_seqs = 16
eval_seq_len = 256
