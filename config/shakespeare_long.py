# The CPU recipe (train_smt.py's defaults) with a teacher that reaches 257 bytes instead of 64: one banded layer
# over a window of 384 bytes whose last 128 are labelled.
out_dir = 'out-shakespeare-long'
band = 257  # the attention reads the last 257 bytes: with one layer a memory is of the last 257 (its reach)
n_enc_layer = 1  # one layer with a band of 257: the reach of two layers of 129 at one layer's cost
context_len = 384  # 256 bytes of past before the first label, so every label sees its whole reach
