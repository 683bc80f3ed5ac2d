# Copy at L = 64 with the teacher that comes closest on a CPU (docs/results.md, section 2, run c33dl32: its teacher
# answers 50% of the targets, the RNN alone 6%). config/probe_retrieval.py's keys (token_shift, w_present, every
# transition regressed, one GRU layer) with a decoder that reaches the string still to come (a copy memory must hold
# it, which Tf = 1 does not ask) and reads 32 labels an episode. Reach: the whole episode. Then
#   python train_dmt.py config/probe_dmt.py --init_from=out-probe-copy/ckpt.pt --max_time=60 --max_iters=100000
out_dir = 'out-probe-copy'
dataset = 'synthetic:copy:64'
init_from = 'scratch'
eval_interval = 400
batch_size = 8
band = 0
context_len = 65
labels_per_window = 65
decoded_labels = 32
dyn_labels = 0
n_enc_layer = 2
token_shift = True
future_len = 33
w_unif = 0.001
w_dyn = 1.0
w_present = 1.0
backbone = 'gru'
n_rnn_layer = 1
max_iters = 2400
max_time = 0.0
eval_seqs = 128
dtype = 'float32'
seed = 2
