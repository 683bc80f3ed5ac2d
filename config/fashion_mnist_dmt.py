# DMT on the RNN of config/fashion_mnist.py (python train_smt.py config/fashion_mnist.py first): rollouts of
# 128 pixels (4.6 rows) from the teacher's memory or from the RNN's initial memory, a label at every pixel.
init_from = 'out-fashion/ckpt.pt'
out_dir = 'out-fashion-dmt'
overwrite = True
max_iters = 100000
max_time = 120.0  # with SMT's 360: 8 minutes of training
batch_size = 16
rollout_len = 128
label_every = 1
learning_rate = 2e-4
eval_interval = 25
log_interval = 5
eval_seqs = 16
eval_seq_len = 784
dtype = 'float32'  # bf16 made DMT's step no faster (docs/results.md)
