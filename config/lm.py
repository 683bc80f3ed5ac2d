# The paper's reference LM run (docs/method.md, sections 1-3), on one GPU: TinyStories as ASCII bytes; the
# bidirectional reference encoder (one labelled transition per window, two passes); d=256, K=16, 8 encoder and
# 4 decoder layers, an 8-layer Transformer updater; Tc=256, Tf=64; batch 128; 150k steps at a constant 3e-4.
# torchrun --standalone --nproc_per_node=8 train_smt.py config/lm.py     (then train_dmt.py config/lm_dmt.py)
out_dir = 'out-lm'
init_from = 'scratch'
eval_interval = 2000
log_interval = 10
wandb_run_name = 'smt-lm'
dataset = 'tinystories'
batch_size = 128
encoder_type = 'reference'
labels_per_window = 1
decoded_labels = 0
dyn_labels = 0
band = 0
n_mem = 16
d_model = 256
n_head = 8
n_enc_layer = 8
n_dec_layer = 4
n_rnn_layer = 8
context_len = 256
future_len = 64
learning_rate = 3e-4
max_iters = 150000
max_time = 0.0
lr_decay = 'constant'
eval_windows = 256
eval_seqs = 32
eval_seq_len = 1024
