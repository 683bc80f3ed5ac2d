# DMT on the RNN of the default SMT run (python train_smt.py && python train_dmt.py): the teacher is frozen, the RNN
# rolls out on its own states, a teacher label at every step (one banded-encoder pass labels a whole rollout), and
# its readout learns from the states it really sees. Architecture and data come from the SMT checkpoint.
init_from = 'out-shakespeare/ckpt.pt'
out_dir = 'out-shakespeare-dmt'
overwrite = True  # a second run starts DMT again from out-shakespeare/ckpt.pt, replacing out-shakespeare-dmt/ckpt.pt
max_iters = 100000  # the time budget ends the run
max_time = 60.0  # seconds of training (evaluations excluded): with SMT's 420, the recipe's 8 minutes
batch_size = 16
rollout_len = 128
label_every = 1
learning_rate = 2e-4  # 5e-4 blew the trained updater up in its first steps (docs/results.md)
eval_interval = 25
log_interval = 5
eval_seqs = 16
eval_seq_len = 256
dtype = 'float32'  # bf16 made DMT's step no faster (docs/results.md)
