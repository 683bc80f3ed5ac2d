# SMT on Fashion-MNIST pixels (raster scan, 784 tokens per image, vocabulary 256) at CPU size: the recipe of
# config/shakespeare.py on pixels. The banded causal teacher reads the last 64 pixels per attention, so a memory is a
# fixed function of the last 2 * 63 + 1 = 127 pixels (4.5 rows): the RNN is taught to carry what 4.5 rows say.
# Then `python train_dmt.py config/fashion_mnist_dmt.py`; BPTT of the same RNN: config/fashion_mnist_bptt.py.
out_dir = 'out-fashion'
init_from = 'auto'
dataset = 'fashion_mnist'
eval_interval = 250
log_interval = 25
batch_size = 4  # windows; x 196 labels = 784 transitions a step
encoder_type = 'causal'
band = 64
labels_per_window = 196
decoded_labels = 32
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 2
n_dec_layer = 2
n_rnn_layer = 2
context_len = 196
future_len = 16
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 360.0
lr_decay = 'cosine'
eval_windows = 128
eval_seqs = 16
eval_seq_len = 784  # whole images: eval sequences start at an image's first pixel
dtype = 'float32'  # its results were measured in float32 (docs/results.md)
