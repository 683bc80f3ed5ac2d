# SMT on Fashion-MNIST pixels (raster scan, 784 tokens per image) at CPU size: the past is the last 196 pixels
# (7 rows), so the memory must carry the rest of the image.
out_dir = 'out-fashion'
dataset = 'fashion_mnist'
eval_interval = 500
log_interval = 25
batch_size = 32
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 2
n_dec_layer = 1
n_rnn_layer = 2
context_len = 196
future_len = 8
learning_rate = 2e-3
max_iters = 1500
lr_decay = 'cosine'
eval_windows = 128
eval_seqs = 16
eval_seq_len = 784
