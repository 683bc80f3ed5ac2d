# A synthetic credit-assignment probe at CPU size (docs/method.md, section 7): string copy at length 64.
# The teacher is causal and labels every transition of an episode from one pass (labels_per_window = context_len =
# the episode length + 1: each window is a whole episode and the empty past before it, so the first transition, from
# the initial memory, is labelled too). Reach: the whole episode (tests/test_reach.py). Other tasks and lengths:
#   python train_smt.py config/probe.py --dataset=synthetic:retrieval:128 --context_len=129 --labels_per_window=129
# (compare.py --task sets all three).
out_dir = 'out-probe'
dataset = 'synthetic:copy:64'
init_from = 'scratch'
eval_interval = 500
batch_size = 8  # episodes a step: few episodes, few labels each, many steps a second
band = 0  # no band: the memory is of the whole episode so far
context_len = 65
labels_per_window = 65
decoded_labels = 8  # the decoder reads 8 labels an episode, those with a target in their window first
dyn_labels = 8  # the RNN regresses 8 of its transitions; the encoder computes only the memories these read
n_enc_layer = 2
future_len = 16
w_unif = 0.1  # 100x the text default: a target every few tokens, or one an episode, does not hold the memory
# apart, and at the text's weight the memory collapses (docs/results.md)
max_iters = 2000
max_time = 0.0  # the iterations end the run
eval_seqs = 128  # whole episodes, run by the RNN alone from its initial memory (eval_seq_len is not used)
dtype = 'float32'  # not 'auto': the same arithmetic on every CPU
