# SMT on Fashion-MNIST pixels (raster scan, 784 tokens per image, vocabulary 256) at CPU size. Every window is an image
# whole (data.stream: an image stream's many-label windows): the causal teacher, without a band, reads the image
# from its first pixel, so the memory at pixel t is of every pixel read so far, as eval.py reads an image.
# Reach: the whole image (context_len = 785 = the empty past + 784 pixels; tests/test_reach.py).
# Then `python train_dmt.py config/fashion_mnist_dmt.py`; BPTT of the same memory and updater:
# config/fashion_mnist_bptt.py.
out_dir = 'out-fashion'
init_from = 'auto'
dataset = 'fashion_mnist'
eval_interval = 250
log_interval = 25
batch_size = 4  # images a step
encoder_type = 'causal'
band = 0  # no band: the memory at pixel t is of the whole image so far
context_len = 785
labels_per_window = 785  # every pixel's transition is a label, from the empty past's on
dyn_labels = 32  # the RNN regresses 32 of an image's transitions
decoded_labels = 32  # the decoder reads 32: the encoder then computes only the 96 memories these read
n_mem = 4
d_model = 128
n_head = 4
n_enc_layer = 1  # at 4 minutes one layer made a better teacher than two (docs/results.md)
n_dec_layer = 1  # the RNN's readout: the 1-layer readout of config/fashion_mnist_bptt.py's baseline
n_rnn_layer = 2
future_len = 8
learning_rate = 2e-3
max_iters = 100000  # the time budget ends the run
max_time = 300.0  # with DMT's 180: 8 minutes of training
lr_decay = 'cosine'
eval_windows = 64
eval_seqs = 16
eval_seq_len = 784  # whole images: eval sequences start at an image's first pixel
dtype = 'float32'  # its results were measured in float32 (docs/results.md)
