# SMT on Fashion-MNIST pixels (raster scan, 784 tokens per image, vocabulary 256), with the CPU recipe's model and
# schedule. Every window is an image whole (data.stream: an image stream's many-label windows): the causal teacher,
# without a band, reads the image from its first pixel, so the memory at pixel t is of every pixel read so far, as
# eval.py reads an image. Reach: the whole image (tests/test_reach.py).
# Then `python train_dmt.py config/fashion_mnist_dmt.py`; BPTT of the same RNN: config/fashion_mnist_bptt.py.
out_dir = 'out-fashion'
dataset = 'fashion_mnist'
band = 0  # no band: the memory at pixel t is of the whole image so far
context_len = 785  # the empty past and the 784 pixels
labels_per_window = 785  # every pixel's transition is a label, from the empty past's on
decoded_labels = 32  # the decoder reads 32 of them, the RNN regresses dyn_labels of them: the encoder computes only
# the memories these read
dyn_noise = 0.05  # L_dyn's step from a noisy memory: the RNN learns to pull drifted states back (a small gain after
# DMT, one side-by-side pair; 0.2 is too much: docs/results.md, section 3.4)
w_rnn_ce = 0.3  # the decoder's next-token CE on the RNN's one-step memory: the RNN's step is judged by what its readout
# loses, not only by L_dyn's distance (0.3 beat 1 and 0 side by side, at one seed each; 1 beat 0 at three seeds of
# three, with a worse teacher: docs/results.md, section 3.2)
max_time = 300.0  # with DMT's 180: 8 minutes of training
eval_windows = 64
eval_seq_len = 784  # whole images: eval sequences start at an image's first pixel
dtype = 'float32'  # not 'auto': the same arithmetic on every CPU
