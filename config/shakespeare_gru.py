# The classic GRU baseline: config/shakespeare_lstm.py with a one-layer GRU(512) (its h is its whole memory), the same
# data, windows, head and budget.
# python train_bptt.py config/shakespeare_gru.py
from config.shakespeare_lstm import *  # noqa: F401,F403 (every setting of the LSTM's; the differences follow)

out_dir = 'out-shakespeare-gru'
wandb_run_name = 'gru-shakespeare'
backbone = 'gru'
