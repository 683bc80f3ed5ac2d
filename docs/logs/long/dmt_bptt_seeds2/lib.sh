# shared by q1.sh and q2.sh: one thread a run, each run beside one other; a pair starts together (barrier) and the
# queue that ends first runs a discarded filler (BPTT, seed 99) until the other ends, so no run ever runs alone.
cd /work/main
export OMP_NUM_THREADS=1
R=/work/runs/e6
barrier() { touch $R/bar_$1_$2; while [ ! -f $R/bar_$1_$3 ]; do sleep 2; done; }
filler_until() {  # filler_until PAIR ME FILE: a discarded filler on this core until FILE exists
  if [ ! -f $3 ]; then
    python train_bptt.py config/fashion_mnist_bptt.py --seed=99 --max_time=3000 --out_dir=$R/filler_$2 > $R/filler_$2.log 2>&1 &
    fp=$!; echo "$(date -u +%T) pair $1: filler on $2 (pid $fp)" >> $R/fillers.txt
    while [ ! -f $3 ]; do sleep 2; done
    kill $fp; wait $fp 2>/dev/null; echo "$(date -u +%T) pair $1: filler on $2 stopped" >> $R/fillers.txt
  fi
}
finish() { touch $R/end_$1_$2; filler_until $1 $2 $R/end_$1_$3; }  # finish PAIR ME OTHER
run() { local name=$1; shift; echo "$(date -u +%T) start $name" >> $R/queue.txt; python "$@" --out_dir=$R/$name > $R/$name.log 2>&1; echo "$(date -u +%T) end $name rc=$?" >> $R/queue.txt; }
