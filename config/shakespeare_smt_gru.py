# The CPU recipe (train_smt.py's defaults) with a one-layer GRU(512) as the RNN: its h is the whole memory (4 tokens
# of 128), so each step reads all of it, and every teacher label is a state one GRU step can reach from the last.
# python train_smt.py config/shakespeare_smt_gru.py && python train_dmt.py --init_from=out-shakespeare-smt-gru/ckpt.pt --out_dir=out-shakespeare-smt-gru-dmt
out_dir = 'out-shakespeare-smt-gru'
backbone = 'gru'
hidden = 512
n_rnn_layer = 1
