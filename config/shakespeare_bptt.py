# The BPTT baseline for the default recipe: exactly the SMT RNN (K=4 x d=128, 2 Transformer-updater layers, a 1-layer
# readout), the same data and the recipe's 8 minutes of training: stateful truncated BPTT over consecutive windows of
# 64 bytes (it sees pasts longer than a window), annealed over its time budget. A 2-layer readout (the previous
# recipe's SMT RNN) makes BPTT learn far slower (3.86 against 2.90 after 8 minutes, one thread; docs/results.md).
# Stateless windows (--stateful=False) were not measured side by side with it at this budget (docs/results.md).
# Any backbone: python train_bptt.py config/shakespeare_bptt.py --backbone=gru
out_dir = 'out-shakespeare-bptt'
init_from = 'auto'  # a second run resumes out-shakespeare-bptt/ckpt.pt (--overwrite=True: start over)
dataset = 'shakespeare'
wandb_run_name = 'bptt-shakespeare'
eval_interval = 100
log_interval = 25
batch_size = 32
block_size = 64
stateful = True
n_mem = 4
d_model = 128
n_head = 4
n_dec_layer = 1  # the readout: the recipe's teacher has a 1-layer decoder, which SMT copies in
n_rnn_layer = 2
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 480.0
lr_decay = 'cosine'
dtype = 'float32'  # even where bf16 is fast: bf16 autocast made BPTT worse (docs/results.md)
eval_seqs = 16
eval_seq_len = 256
