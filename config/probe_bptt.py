# BPTT on a synthetic probe with the RNN of config/probe.py: whole episodes, each from the initial memory.
out_dir = 'out-probe-bptt'
dataset = 'synthetic:copy:64'
init_from = 'scratch'
stateful = False  # episodes are read whole (block_size is not used by episodes)
eval_interval = 500
max_iters = 2000
max_time = 0.0  # the iterations end the run
eval_seqs = 128
