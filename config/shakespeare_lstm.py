# The classic baseline, as a user would train it: a one-layer LSTM(512) byte model by stateful truncated BPTT over
# windows of 256 bytes, the classic head (one matrix on h) and a forget-gate bias of 1 (model.py's LSTM init), for
# the recipe's 8 minutes (train_bptt.py's defaults otherwise). Only h is computed at every step (RNN.run_logits);
# (h, c) carry across windows.
# python train_bptt.py config/shakespeare_lstm.py          (the GRU: config/shakespeare_gru.py)
out_dir = 'out-shakespeare-lstm'
wandb_run_name = 'lstm-shakespeare'
eval_interval = 50
log_interval = 10
block_size = 256  # BPTT unrolls this far; the gradient stops at the window boundary
backbone = 'lstm'
hidden = 512  # one layer of 512: h and c of 512 each
n_rnn_layer = 1
d_model = 64  # the byte embedding's width (the memory stores h and c as tokens of this width)
readout = 'linear'  # the classic head: logits = W h + b
learning_rate = 4e-3  # the best of a short sweep at 8 minutes (docs/results.md, section 1.3)
batch_size = 4  # few windows a step, many steps: at this budget more steps beat larger batches (section 1.3)
