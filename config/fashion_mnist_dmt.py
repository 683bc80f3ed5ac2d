# DMT on the RNN of config/fashion_mnist.py (python train_smt.py config/fashion_mnist.py first): rollouts of 128 pixels
# (4.6 rows) within an image, half from the RNN's initial memory at its first pixel, half from the teacher's memory
# of the image up to a random pixel (train_dmt.py, episodic data); 32 of the 128 steps regressed onto the teacher.
init_from = 'out-fashion/ckpt.pt'
out_dir = 'out-fashion-dmt'
overwrite = True
max_iters = 100000
max_time = 180.0  # with SMT's 300: 8 minutes of training
batch_size = 16
rollout_len = 128
label_every = 1
dyn_labels = 32
learning_rate = 2e-4
eval_interval = 25
log_interval = 5
eval_seqs = 16
eval_seq_len = 784
dtype = 'float32'  # bf16 made DMT's step no faster (docs/results.md)
