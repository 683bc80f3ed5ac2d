# BPTT fine-tuning of the RNN of config/fashion_mnist.py in place of DMT (python train_smt.py config/fashion_mnist.py
# first): SMT as pretraining, then config/fashion_mnist_bptt.py's BPTT from the SMT checkpoint's RNN, the readout's
# CE through every step of a window. 3 minutes after SMT's 5: the recipe's 8 minutes.
out_dir = 'out-fashion-ft'
init_from = 'out-fashion/ckpt.pt'  # the SMT run's RNN (its readout the teacher's decoder); a fresh optimizer
dataset = 'fashion_mnist'
batch_size = 16
block_size = 196
max_time = 180.0
learning_rate = 1e-3  # half the from-scratch rate; DMT's 2e-4 did worse from the same checkpoint (docs/results.md)
eval_seq_len = 784
