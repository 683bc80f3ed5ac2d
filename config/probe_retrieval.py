# Retrieval at L = 64 as SMT -> DMT learns it on a CPU (docs/results.md, section 2: 100% on two seeds of three, where
# the teacher finds the needle). config/probe.py's episodes and batch, with a teacher that can find the needle
# (token_shift, Tf = 1, the text's uniformity weight), memories that hold what the RNN's step needs (w_present, every
# transition regressed) and a one-layer GRU, whose step reads the whole memory. Reach: the whole episode. Then
#   python train_dmt.py config/probe_dmt.py --init_from=out-probe-retrieval/ckpt.pt --max_time=60 --max_iters=100000
out_dir = 'out-probe-retrieval'
dataset = 'synthetic:retrieval:64'
init_from = 'scratch'
eval_interval = 400
batch_size = 8
band = 0
context_len = 65
labels_per_window = 65
decoded_labels = 8
dyn_labels = 0  # every transition: the one that writes the needle's value is one in 64
n_enc_layer = 2
token_shift = True
future_len = 1
w_unif = 0.001
w_dyn = 1.0
w_present = 1.0
backbone = 'gru'
n_rnn_layer = 1
max_iters = 1200
max_time = 0.0
eval_seqs = 128
dtype = 'float32'
seed = 2  # seed 1337's teacher did not find the needle in 1,200 steps
