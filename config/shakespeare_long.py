# The CPU recipe of config/shakespeare.py with a teacher that reaches 257 bytes instead of 64 (docs/results.md,
# "Long memory"): one banded layer over a window of 384 bytes whose last 128 are labelled. Everything else is
# config/shakespeare.py's, read here so the two cannot drift apart.
from configurator import REPO as _REPO

exec(open(f"{_REPO}/config/shakespeare.py").read())
out_dir = 'out-shakespeare-long'
band = 257  # the attention reads the last 257 bytes: with one layer a memory is of the last 257 (reach)
n_enc_layer = 1  # one layer with a band of 257: the same reach as two layers of 129, one layer's cost
context_len = 384  # 256 bytes of past before the first label, so every label sees its whole reach
