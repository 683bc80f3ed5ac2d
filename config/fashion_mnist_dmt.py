# DMT on the RNN of config/fashion_mnist.py (python train_smt.py config/fashion_mnist.py first): rollouts of 128 pixels
# (4.6 rows; 256 at the same pixels a step lost at six seeds of six: docs/results.md, section 3.0) within an image,
# half from the RNN's initial memory at its first pixel, half from the teacher's memory of the image up to a random
# pixel (train_dmt.py, episodic data); 32 of the 128 steps regressed onto the teacher.
# Through time: the paper's optional backpropagation through the rollout, the readout's CE through the states, the
# teacher's labels kept (w_mse); from the same six SMT checkpoints it beat the detached rollout at five seeds
# (docs/results.md, section 3.0), at the rate measured there (the detached step's default is 2e-4).
init_from = 'out-fashion/ckpt.pt'
out_dir = 'out-fashion-dmt'
max_time = 180.0  # with SMT's 300: 8 minutes of training
dyn_labels = 32
bptt = True
ce_through_state = True
learning_rate = 1e-3
eval_seq_len = 784
