# BPTT on a synthetic probe with the RNN of config/probe.py: whole episodes (block_size is not used by episodes).
out_dir = 'out-probe-bptt'
dataset = 'synthetic:copy:64'
eval_interval = 500
log_interval = 25
batch_size = 32
n_mem = 4
d_model = 128
n_head = 4
n_dec_layer = 1
n_rnn_layer = 2
learning_rate = 2e-3
max_iters = 2000
lr_decay = 'cosine'
eval_seqs = 128
dtype = 'float32'  # BPTT trains worse in bf16 autocast (docs/results.md)
