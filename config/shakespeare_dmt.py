# DMT on the RNN of the default SMT run (python train_smt.py && python train_dmt.py): the teacher is frozen, the RNN
# rolls out on its own states (every step visited, without a graph), a random subset of the steps is regressed onto
# the teacher's memories in one batched step, and its readout learns from the states it really sees there. Architecture and data come from the SMT checkpoint.
init_from = 'out-shakespeare/ckpt.pt'
out_dir = 'out-shakespeare-dmt'
overwrite = True  # a second run starts DMT again from out-shakespeare/ckpt.pt, replacing out-shakespeare-dmt/ckpt.pt
max_iters = 100000  # the time budget ends the run
max_time = 60.0  # seconds of training (evaluations excluded): with SMT's 420, the recipe's 8 minutes
batch_size = 16
rollout_len = 128
label_every = 1
dyn_labels = 16  # a step regresses 16 of a rollout's 128 labelled transitions and reads out there: more steps a minute
learning_rate = 2e-4  # 5e-4 blew the trained updater up in its first steps (docs/results.md)
eval_interval = 25
log_interval = 5
eval_seqs = 16
eval_seq_len = 256
dtype = 'float32'  # bf16 made DMT's step no faster (docs/results.md)
