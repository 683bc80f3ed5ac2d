# BPTT of the RNN of config/fashion_mnist.py (exactly the SMT RNN: the same memory, updater and 1-layer readout) on
# Fashion-MNIST pixels for the recipe's 8 minutes: stateful truncated BPTT over consecutive windows of 196 pixels (a
# quarter image; the memory carries across windows and images).
out_dir = 'out-fashion-bptt'
dataset = 'fashion_mnist'
batch_size = 16
block_size = 196
eval_seq_len = 784  # whole images: eval sequences start at an image's first pixel
