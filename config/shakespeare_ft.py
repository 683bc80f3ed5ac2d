# BPTT fine-tuning of the CPU recipe's RNN in place of DMT (python train_smt.py first): SMT as pretraining, then the
# default BPTT (train_bptt.py's globals: stateful windows of 64 bytes) from the SMT checkpoint's RNN for the recipe's
# last minute. It beat DMT from the same SMT checkpoint at both seeds measured (docs/results.md, section 1.10).
init_from = 'out-shakespeare/ckpt.pt'  # the SMT run's RNN (its readout the teacher's decoder); a fresh optimizer
out_dir = 'out-shakespeare-ft'
max_time = 60.0  # with SMT's 420: 8 minutes of training
learning_rate = 1e-3  # half the from-scratch rate, as for pixels (config/fashion_mnist_ft.py)
