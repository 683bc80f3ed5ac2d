# A synthetic credit-assignment probe at CPU size (docs/method.md, section 7): string copy at length 64.
# The teacher is causal and labels every transition of an episode from one pass (labels_per_window = context_len =
# the episode length: each window is a whole episode). Other tasks and lengths:
#   python train_smt.py config/probe.py --dataset=synthetic:retrieval:128 --context_len=128 --labels_per_window=128
# (compare.py --task sets all three).
out_dir = 'out-probe'
dataset = 'synthetic:copy:64'
eval_interval = 500
log_interval = 25
batch_size = 16  # episodes; x 64 labels = 1024 transitions a step
encoder_type = 'causal'
labels_per_window = 64
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 2
n_dec_layer = 1
n_rnn_layer = 2
context_len = 64
future_len = 16
w_unif = 0.1  # 100x the text default: a target every few tokens, or one an episode, does not hold the memory
# apart; at 0.001 it collapsed within 100 steps (retrieval:32: L_dyn 1e-5, L_unif -0.001; at 0.1: 0.027, -3.07)
learning_rate = 2e-3
max_iters = 2000
lr_decay = 'cosine'
eval_windows = 128
eval_seqs = 128  # whole episodes, run by the RNN alone from its initial memory (eval_seq_len is not used)
dtype = 'float32'  # its results were measured in float32 (docs/results.md)
