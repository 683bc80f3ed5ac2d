#!/usr/bin/env bash
# The GPU checks, for a lent machine (one H100/H200, torch installed, no internet), run from anywhere:
#
#     OUT=/path/to/results bash scripts/gpu_check.sh
#
# 8 minutes at most (the step limits add up to 425 s, plus start-up). Every step runs under `timeout`, so a slow
# step costs its own budget only and the later ones still run; bench.py prints each row as soon as it is measured.
# Writes to $OUT (default out-gpu-check/):
#   env.txt               GPU, torch, commit
#   tests.txt             the CUDA-only tests (bf16 SMT step finite, compiled == eager, labels == per-window)
#   bench_regional.txt    bench.py at the reference sizes (docs/method.md), Tc = 256, many labels (64 windows x 256
#                         labels), compile='regional': compile seconds (the first step), transitions/s and MFU; with
#                         every label decoded, then 64 of 256 decoded; the first also checks the FLOPs formula
#                         against FlopCounterMode and prints the profiler's kernel table
#   bench_whole.txt       the same step compiled whole (compile=True): its compile time and its speed (on an H200 the
#                         compile alone took over 110 s)
#   bench_bptt_lstm.txt   BPTT of the reference-size LSTM (cuDNN), T = 256
#   summary.txt           all tables together (also printed at the end)
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
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  git log -1 --oneline 2>/dev/null || true; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

REF="--sizes=reference --lengths=256 --warmup=2 --iters=5 --label_batch=16384"
step tests 100 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
step bench_regional 110 python3 bench.py $REF --modes=smt-many --compile=regional --profile=True
step bench_regional_d64 45 python3 bench.py $REF --modes=smt-many --compile=regional --decoded_labels=64
step bench_whole 130 python3 bench.py $REF --modes=smt-many --compile=True
step bench_bptt_lstm 40 python3 bench.py $REF --modes=bptt --backbone=lstm --compile=True

{ cat "$OUT/env.txt"; tail -n 3 "$OUT/tests.txt"
  for f in bench_regional bench_regional_d64 bench_whole bench_bptt_lstm; do
    echo; echo "# $f"; grep -E '^bench:|^ +T mode|^ +256 |FLOPs per step|exit|TIMED' "$OUT/$f.txt"; done
  echo; echo "# the profiler's kernels (regional, every label decoded)"
  sed -n '/Self CUDA %/,/Self CUDA time total/p' "$OUT/bench_regional.txt" | head -n 20
  echo "total $(($(date +%s) - T0)) s"; } > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
