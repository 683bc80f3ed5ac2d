#!/usr/bin/env bash
# The GPU checks, for a lent machine (one H100/H200, torch installed, no internet), run from anywhere:
#
#     OUT=/path/to/results bash scripts/gpu_check.sh            # the SMT step: compile, throughput, MFU (8 min at most)
#     OUT=/path/to/results bash scripts/gpu_check.sh quality    # the trainers end to end: time to quality (9 min)
#     OUT=/path/to/results bash scripts/gpu_check.sh dmt        # DMT's step against its step loop (5 min)
#
# Every step runs under `timeout`, so a slow step costs its own budget only and the later ones still run.
#
# Default mode (the step limits add up to 425 s, plus start-up; bench.py prints each row as soon as it is measured).
# Writes to $OUT (default out-gpu-check/):
#   env.txt               GPU, torch, commit
#   tests.txt             the CUDA-only tests (bf16 SMT step finite, compiled == eager, labels == per-window)
#   bench_regional.txt    bench.py at the reference sizes (docs/method.md), Tc = 256, many labels (64 windows x 256
#                         labels), compile='regional': compile seconds (the first step), transitions/s and MFU; with
#                         every label decoded, then 64 of 256 decoded; the first also checks the FLOPs formula
#                         against FlopCounterMode and prints the profiler's kernel table
#   bench_whole.txt       the same step compiled whole (compile=True): its compile time and its speed (it compiles
#                         every layer again, so its limit is the longest)
#   bench_bptt_lstm.txt   BPTT of the reference-size LSTM (cuDNN), T = 256
#   summary.txt           all tables together (also printed at the end)
#
# `quality` mode (the step limits add up to 540 s; needs data/shakespeare/ prepared): the recipe's RNN (K=4 x d=128,
# 2 Transformer-updater layers) on Shakespeare bytes on CUDA (bf16 autocast, eager), at GPU batch sizes: SMT for
# $SMT_S s then DMT for $DMT_S s, against BPTT of the same RNN and the one-layer LSTM(512) for their sum; then
# eval.py --L=1024 on every checkpoint. Writes smt.txt, dmt.txt, bptt.txt, lstm.txt (the trainers' logs) and eval.txt.
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

if [ "${1:-}" = dmt ]; then
    D="--modes=dmt --lengths=128 --iters=10"
    step dmt_seq 60 python3 bench.py $D --compile=False
    step dmt_par 60 python3 bench.py $D --compile=False --dmt_rollout=parallel
    step dmt_seq_compiled 90 python3 bench.py $D --compile=regional
    step dmt_par_compiled 90 python3 bench.py $D --compile=regional --dmt_rollout=parallel
    { cat "$OUT/env.txt"; for f in dmt_seq dmt_par dmt_seq_compiled dmt_par_compiled; do
        echo; echo "# $f"; grep -E '^bench:|^ +T mode|^ +128 |exit|TIMED|Error' "$OUT/$f.txt"; done
      echo "total $(($(date +%s) - T0)) s"; } > "$OUT/summary.txt" 2>&1
    cat "$OUT/summary.txt"
    exit 0
fi

if [ "${1:-}" = quality ]; then
    SMT_S=${SMT_S:-60} DMT_S=${DMT_S:-20} EVAL=${EVAL:---L=1024}  # (a CPU dry run: SMT_S=3 DMT_S=2 EVAL="--L=64 --n_seqs=4")
    ALL_S=$((SMT_S + DMT_S))
    # fresh runs; one evaluation, at the end; eager: at these sizes compiling costs more of a short budget than it
    # gains (docs/results.md, GPU)
    R="--overwrite=True --eval_interval=100000 --compile=False"
    step smt 130 python3 train_smt.py $R --out_dir="$OUT/smt" --max_time=$SMT_S --batch_size=32 --log_interval=100
    step dmt 70 python3 train_dmt.py $R --init_from="$OUT/smt/ckpt.pt" --out_dir="$OUT/dmt" --max_time=$DMT_S \
        --batch_size=64 --log_interval=10
    step bptt 150 python3 train_bptt.py $R --out_dir="$OUT/bptt" --max_time=$ALL_S \
        --batch_size=256 --log_interval=25
    step lstm 100 python3 train_bptt.py config/shakespeare_lstm.py $R --out_dir="$OUT/lstm" --max_time=$ALL_S \
        --batch_size=256 --log_interval=25
    ckpts=$(ls "$OUT"/{smt,dmt,bptt,lstm}/ckpt.pt 2>/dev/null | paste -sd, -)
    step eval 90 python3 eval.py $EVAL --ckpt="$ckpts"
    { cat "$OUT/env.txt"; for f in smt dmt bptt lstm; do
        echo; echo "# $f"; grep -E '^iter [0-9]+:' "$OUT/$f.txt" | sed -n '1p;$p'
        grep -E '^eval|exit|TIMED|Error' "$OUT/$f.txt" | tail -n 3; done
      echo; echo "# eval"; grep -E '^\||^RNN alone|exit|TIMED' "$OUT/eval.txt"
      echo "total $(($(date +%s) - T0)) s"; } > "$OUT/summary.txt" 2>&1
    cat "$OUT/summary.txt"
    exit 0
fi

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
