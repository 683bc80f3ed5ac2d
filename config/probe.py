# A synthetic credit-assignment probe at CPU size (docs/method.md, section 7): string copy at length 64.
# Other tasks and lengths: --dataset=synthetic:<task>:<L>, e.g. synthetic:retrieval:128. Keep context_len >= L:
# the teacher must see the whole episode to label it (the run prints a note when it cannot).
out_dir = 'out-probe'
dataset = 'synthetic:copy:64'
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
future_len = 16
learning_rate = 2e-3
max_iters = 2000
lr_decay = 'cosine'
eval_windows = 128
eval_seqs = 128  # whole episodes, run by the RNN alone from its initial memory (eval_seq_len is not used)
