# BPTT of the RNN of config/fashion_mnist.py on Fashion-MNIST pixels for the recipe's 8 minutes: stateful truncated
# BPTT over consecutive windows of 196 pixels (a quarter image; the memory carries across windows and images).
# Exactly the SMT RNN: the same memory, updater and 1-layer readout (a 2-layer readout made BPTT weaker, docs/results.md).
out_dir = 'out-fashion-bptt'
init_from = 'auto'
dataset = 'fashion_mnist'
eval_interval = 100
log_interval = 25
batch_size = 16
block_size = 196
stateful = True
n_mem = 4
d_model = 128
n_head = 4
n_dec_layer = 1
n_rnn_layer = 2
learning_rate = 2e-3
max_iters = 100000
max_time = 480.0
lr_decay = 'cosine'
eval_seqs = 16
eval_seq_len = 784
dtype = 'float32'  # BPTT trains worse in bf16 autocast (docs/results.md)
