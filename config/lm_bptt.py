# BPTT of the RNN of the paper's reference LM run (config/lm.py): K=16 x d=256, an 8-layer Transformer updater,
# a 4-layer decoder readout; stateless windows of 256 bytes of TinyStories, batch 128, 150k steps at 3e-4.
out_dir = 'out-lm-bptt'
init_from = 'scratch'
eval_interval = 2000
log_interval = 10
wandb_run_name = 'bptt-lm'
dataset = 'tinystories'
batch_size = 128
block_size = 256
stateful = False
n_mem = 16
d_model = 256
n_head = 8
n_dec_layer = 4
n_rnn_layer = 8
learning_rate = 3e-4
max_iters = 150000
max_time = 0.0
lr_decay = 'constant'
eval_seqs = 32
eval_seq_len = 1024
dtype = 'auto'
