#!/usr/bin/env bash
# The GPU checks, for a lent machine (one H100/H200, torch installed, no internet), run from anywhere:
#
#     OUT=/path/to/results bash scripts/gpu_check.sh
#
# 9 minutes at most (the step limits add up to 550 s, plus start-up). Every step runs under `timeout`, so a slow
# step costs its own budget only and the later ones still run; bench.py prints each row as soon as it is measured.
# Writes to $OUT (default out-gpu-check/):
#   env.txt          GPU, torch, commit
#   tests.txt        the CUDA-only tests (bf16 SMT step finite, compiled == eager, labels == per-window) and the
#                    label-equality tests (CPU tensors), on this machine
#   train.txt        100 compiled bf16 iterations of train_smt.py at the reference sizes, causal encoder with 64
#                    labels per window, on a random-token dataset written here (nothing to download or install)
#   bench_T*.txt     bench.py at the reference sizes (docs/method.md), one file per length; 256 and 1024
#                    compiled, 4096 eager (compiling three 4096-long graphs would not fit the budget)
#   summary.txt      all tables together (also printed at the end)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
T0=$(date +%s)
step() {  # step NAME SECONDS CMD...: run CMD under a timeout into $OUT/NAME.txt, note how it ended
    local name=$1 limit=$2; shift 2
    echo "== $name ($(($(date +%s) - T0)) s in; limit ${limit} s): $*"
    timeout -k 5 "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    [ $rc -eq 124 ] && echo "TIMED OUT after ${limit} s" >> "$OUT/$name.txt"
    echo "== $name: exit $rc after $(($(date +%s) - T0)) s" | tee -a "$OUT/$name.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  git log -1 --oneline 2>/dev/null || true; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. tests
step tests 80 python -m pytest -q tests/test_cuda.py tests/test_labels.py

# 2. a short compiled bf16 training run on random tokens (byte vocabulary; learning is not the point here)
DATA=${TMPDIR:-/tmp}/smt_gpu_check_data
python - "$DATA" <<'EOF'
import os, pickle, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
rng.integers(0, 256, 2_000_000, dtype=np.uint16).tofile(os.path.join(d, 'train.bin'))
rng.integers(0, 256, 200_000, dtype=np.uint16).tofile(os.path.join(d, 'val.bin'))
pickle.dump({'vocab_size': 256, 'tokenizer': 'bytes'}, open(os.path.join(d, 'meta.pkl'), 'wb'))
EOF
step train 90 python train_smt.py config/lm.py --dataset="$DATA" --out_dir="${TMPDIR:-/tmp}/smt_gpu_check_out" \
    --encoder_type=causal --labels_per_window=64 --batch_size=32 --max_iters=100 --eval_interval=100 \
    --log_interval=20 --eval_windows=64 --eval_seqs=8 --eval_seq_len=256 --compile=True --dtype=bfloat16 \
    --overwrite=True

# 3. the other trainers on the GPU: BPTT with the cuDNN GRU (compile_parts keeps cuDNN eager), and DMT from the
#    SMT checkpoint just written (eager: a rollout of Td sequential steps)
step bptt_gru 60 python train_bptt.py --dataset="$DATA" --out_dir="${TMPDIR:-/tmp}/smt_gpu_check_bptt" --backbone=gru \
    --batch_size=64 --max_iters=60 --eval_interval=60 --log_interval=20 --eval_seqs=8 --eval_seq_len=256 \
    --compile=True --dtype=bfloat16 --overwrite=True
step dmt 60 python train_dmt.py --init_from="${TMPDIR:-/tmp}/smt_gpu_check_out/ckpt.pt" \
    --out_dir="${TMPDIR:-/tmp}/smt_gpu_check_dmt" --max_iters=20 --batch_size=32 --rollout_len=256 --label_every=16 \
    --learning_rate=3e-5 --eval_interval=20 --log_interval=5 --eval_seqs=8 --eval_seq_len=512 --dtype=bfloat16 \
    --overwrite=True

# 4. bench.py at the reference sizes
step bench_T256 60 python bench.py --sizes=reference --lengths=256 --warmup=2 --iters=3 --compile=True
step bench_T1024 90 python bench.py --sizes=reference --lengths=1024 --warmup=2 --iters=3 --compile=True
step bench_T4096 110 python bench.py --sizes=reference --lengths=4096 --warmup=1 --iters=2 --compile=False

{ cat "$OUT/env.txt"; tail -n 3 "$OUT/tests.txt"; grep -E '^(eval|SMT on)|exit|TIMED' "$OUT/train.txt"; grep '^iter' "$OUT/train.txt" | tail -n 2
  grep -E '^(iter 60|eval)|exit|TIMED' "$OUT/bptt_gru.txt"; grep -E '^(iter 20|eval 20)|exit|TIMED' "$OUT/dmt.txt"
  for T in 256 1024 4096; do echo; grep -vE '^(override|config):' "$OUT/bench_T$T.txt"; done
  echo "total $(($(date +%s) - T0)) s"; } > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
