# The tests' base config for train_smt.py: the reference encoder, one label a window, so the tests do not depend on
# the recipe in train_smt.py's defaults; TINY (conftest.py) shrinks the model on top.
out_dir = 'out-shakespeare'
init_from = 'auto'  # a second `python train_smt.py` resumes out-shakespeare/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
eval_interval = 500
log_interval = 25
batch_size = 32
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 2
n_dec_layer = 1
n_rnn_layer = 2
context_len = 64
future_len = 8
encoder_type = 'reference'
labels_per_window = 1
decoded_labels = 0
dyn_labels = 0
band = 0
learning_rate = 2e-3
max_iters = 2000
max_time = 0.0
lr_decay = 'cosine'
eval_windows = 128
eval_seqs = 16
eval_seq_len = 256
