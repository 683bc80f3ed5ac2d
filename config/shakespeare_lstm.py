# The strongest classic baseline we know at this budget: a one-layer LSTM (h = c = 512, so memory K*d = 1024) with
# the classic linear head, trained by BPTT on windows of 256 bytes for the recipe's 8 minutes.
# python train_bptt.py config/shakespeare_lstm.py
out_dir = 'out-shakespeare-lstm'
init_from = 'auto'
dataset = 'shakespeare'
wandb_run_name = 'lstm-shakespeare'
eval_interval = 50
log_interval = 10
batch_size = 32
block_size = 256
backbone = 'lstm'
n_mem = 4
d_model = 256
n_head = 4
n_rnn_layer = 1
readout = 'linear'
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 480.0
lr_decay = 'cosine'
eval_seqs = 16
eval_seq_len = 256
dtype = 'float32'  # BPTT trains worse in bf16 autocast (docs/results.md)
