# The CPU-sized default (what `python train_smt.py` runs): byte-level Shakespeare, 7 minutes of SMT on 2 cores, then
# `python train_dmt.py` (config/shakespeare_dmt.py) for 1 more: the recipe, 8 minutes of training in all. DMT makes
# most of its gain in its first minute, so the 8th minute buys more as SMT (a better teacher; docs/results.md).
# The teacher is the banded causal encoder (docs/method.md section 2): 128 labelled memories per window, all of
# them stationary memories of the stream, so the RNN is taught to forget as well as to remember.
out_dir = 'out-shakespeare'
init_from = 'auto'  # a second `python train_smt.py` resumes out-shakespeare/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
eval_interval = 250
log_interval = 25
batch_size = 4  # windows; x 128 labels = 512 labelled memories a step, 128 transitions regressed (dyn_labels)
encoder_type = 'causal'
band = 64  # the attention reads the last 64 bytes: with one layer, a memory is a function of the last 64
labels_per_window = 128
decoded_labels = 48  # the decoder reads 48 of each window's 128 labels
dyn_labels = 32  # the RNN regresses 32 of them: 47% more steps a second, and a better teacher (docs/results.md)
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 1  # a shallow, cheap teacher makes more steps: at this budget it learns faster than 2 or 4 layers
n_dec_layer = 1  # the RNN's readout: the same 1-layer readout as config/shakespeare_bptt.py's baseline
n_rnn_layer = 2
context_len = 128
future_len = 8  # Tf: 8 learned faster than 16 or 4 (docs/results.md, "A faster teacher")
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 420.0  # seconds of training (evaluations excluded); the cosine schedule anneals over them
lr_decay = 'cosine'
dtype = 'auto'  # bf16 autocast where the CPU has fast bf16 matrix products (AVX512), else float32
eval_windows = 128
eval_seqs = 16
eval_seq_len = 256
