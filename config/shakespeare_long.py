# The CPU recipe of config/shakespeare.py with a teacher that reaches 257 bytes instead of 64 (docs/results.md,
# "Long memory"): one banded layer over a window of 384 bytes whose last 128 are labelled.
out_dir = 'out-shakespeare-long'
init_from = 'auto'  # a second `python train_smt.py` resumes out-shakespeare/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
eval_interval = 250
log_interval = 25
batch_size = 4  # windows; x 128 labels = 512 labelled memories a step, 128 transitions regressed (dyn_labels)
encoder_type = 'causal'
band = 257  # the attention reads the last 257 bytes: with one layer a memory is of the last 257 (reach)
labels_per_window = 128
decoded_labels = 48  # the decoder reads 48 of each window's 128 labels
dyn_labels = 32  # the RNN regresses 32 of them: 47% more steps a second, and a better teacher (docs/results.md)
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 1  # one layer with a band of 257 costs a third of two layers with 129, for the same reach
n_dec_layer = 1  # the RNN's readout: the same 1-layer readout as config/shakespeare_bptt.py's baseline
n_rnn_layer = 2
context_len = 384  # 256 bytes of past before the first label, so every label sees its whole reach
future_len = 8  # Tf: 8 learned faster than 16 or 4 (docs/results.md, "A faster teacher")
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 420.0  # seconds of training (evaluations excluded); the cosine schedule anneals over them
lr_decay = 'cosine'
dtype = 'auto'  # bf16 autocast where the CPU has fast bf16 matrix products (AVX512), else float32
eval_windows = 128
eval_seqs = 16
eval_seq_len = 256
