# The classic GRU baseline: config/shakespeare_lstm.py with a one-layer GRU(512) (its h is its whole memory), the same
# data, windows, head, learning rate and budget, its own batch.
# python train_bptt.py config/shakespeare_gru.py
from config.shakespeare_lstm import *  # noqa: F401,F403 (every setting of the LSTM's; the differences follow)

out_dir = 'out-shakespeare-gru'
wandb_run_name = 'gru-shakespeare'
backbone = 'gru'
batch_size = 32  # the GRU's best measured (at the LSTM's batch of 4 it was not run; section 1.3)
