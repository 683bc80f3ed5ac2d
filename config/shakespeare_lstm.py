# The classic baseline, as a user would train it: a one-layer LSTM(512) byte model by stateful truncated BPTT over
# windows of 256 bytes, the classic head (one matrix on h) and a forget-gate bias of 1 (model.py's LSTM init), for
# the recipe's 8 minutes. Only h is computed at every step (RNN.run_logits); (h, c) carry across windows.
# python train_bptt.py config/shakespeare_lstm.py          (the GRU: config/shakespeare_gru.py)
out_dir = 'out-shakespeare-lstm'
init_from = 'auto'  # a second run resumes out-shakespeare-lstm/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
wandb_run_name = 'lstm-shakespeare'
eval_interval = 50
log_interval = 10
batch_size = 32
block_size = 256  # BPTT unrolls this far; the gradient stops at the window boundary
stateful = True  # each window starts from the (h, c) its lane's last window ended in, so pasts outgrow a window
backbone = 'lstm'
hidden = 512  # one layer of 512: h and c of 512 each
n_rnn_layer = 1
d_model = 64  # the byte embedding's width (the memory stores h and c as tokens of this width)
readout = 'linear'  # the classic head: logits = W h + b
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 480.0
lr_decay = 'cosine'  # annealed over the time budget
eval_seqs = 16
eval_seq_len = 256
dtype = 'float32'  # BPTT trains worse in bf16 autocast (docs/results.md)
