# The paper's reference LM scale (docs/method.md, sections 1-3): TinyStories as ASCII bytes, one GPU.
# d=256, K=16, 8 encoder + 4 decoder layers, 8-layer Transformer updater, Tc=256, Tf=64, batch 128, 150k steps.
out_dir = 'out-lm'
dataset = 'tinystories'
wandb_run_name = 'smt-lm'
